/**
 * What every command of the `shardwork` CLI runs with: where it reads and
 * writes ({@link CliIo}), the global options resolved against the environment
 * ({@link Context}: timeout, width, colour, the backends), and the small
 * helpers the commands share.
 *
 * @module
 */

import { type DiscoveryClient, type JobsClient, openDiscovery, openJobs } from './backend.js';
import { UsageError } from './errors.js';
import { integer } from './format.js';

/** A stream the CLI writes to. */
export interface CliStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  /** Width of the terminal (a TTY's `columns`): tables and long lines are fitted to it. */
  readonly columns?: number | undefined;
}

/** Where the CLI reads and writes; defaults to the process's. */
export interface CliIo {
  readonly stdout: CliStream;
  readonly stderr: CliStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Aborted to stop a long-running command (`watch`, `dashboard`); by default
   * SIGINT/SIGTERM of the process.
   */
  readonly signal?: AbortSignal;
}

/** Options every command takes (after commander parsed them). */
export interface GlobalOptions {
  discovery?: string;
  jobs?: string;
  json?: boolean;
  timeout: string;
  color?: boolean;
}

/** A per-run context: options resolved against the environment. */
export class Context {
  constructor(
    readonly io: CliIo,
    readonly opts: GlobalOptions,
  ) {}

  get json(): boolean {
    return this.opts.json === true;
  }

  get timeoutMs(): number {
    try {
      return integer('--timeout', this.opts.timeout, 1);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }

  /**
   * Width to fit tables and lines to: the terminal's, so that its own
   * wrapping never cuts a number; `undefined` in a pipe (full lines).
   */
  get width(): number | undefined {
    const columns = this.io.stdout.columns;
    return this.io.stdout.isTTY === true && columns !== undefined && columns > 0 ? columns : undefined;
  }

  get color(): boolean {
    if (this.opts.color === false || this.io.env.NO_COLOR !== undefined) return false;
    return this.io.stdout.isTTY === true;
  }

  discovery(): DiscoveryClient {
    const option = this.opts.discovery;
    return openDiscovery(option ?? this.io.env.SHARDWORK_DISCOVERY, this.timeoutMs, option === undefined);
  }

  jobs(): JobsClient {
    const option = this.opts.jobs;
    return openJobs(option ?? this.io.env.SHARDWORK_JOBS, this.timeoutMs, option === undefined);
  }

  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }
}

/** Run `fn` with a jobs client and always release it. */
export async function withJobs<T>(ctx: Context, fn: (client: JobsClient) => Promise<T>): Promise<T> {
  const client = ctx.jobs();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** A commander option parser for an integer of at least `min`; bad input is a usage error. */
export function parseIntOption(name: string, min = 0): (value: string) => number {
  return (value) => {
    try {
      return integer(name, value, min);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  };
}

/** The abort signal for long-running commands: the io's, else SIGINT/SIGTERM. */
export function stopSignal(io: CliIo): { signal: AbortSignal; dispose(): void } {
  if (io.signal !== undefined) return { signal: io.signal, dispose: () => undefined };
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
