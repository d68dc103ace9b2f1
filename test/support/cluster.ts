/**
 * Replicas as child processes, for crash (SIGKILL), pause (SIGSTOP) and
 * graceful (SIGTERM) tests. Each child runs test/support/replica-main.ts.
 */

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onLines, spawnSource } from '@shardwork/testkit';

/** Configuration of one replica child. */
export interface ReplicaSpec {
  /** Discovery URL (loopback only). */
  readonly discovery: string;
  readonly service: string;
  readonly shards: number;
  readonly leaseTtlMs: number;
  /** JSON-lines file the child appends ownership records to. */
  readonly recordFile: string;
  readonly revokeTimeoutMs?: number;
  readonly resyncIntervalMs?: number;
  /** Ms between recorded side effects per owned shard. @defaultValue 10 */
  readonly effectIntervalMs?: number;
}

const MAIN = fileURLToPath(new URL('./replica-main.ts', import.meta.url));

/** One replica child process. */
export class Replica {
  readonly spec: ReplicaSpec;
  readonly #child: ChildProcess;
  /** Every member id this replica registered, in order (a lost lease adds one). */
  readonly instances: string[] = [];
  /** Lines the child printed (JSON messages) and its stderr, for failure messages. */
  readonly log: string[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #ready: Promise<void>;

  private constructor(spec: ReplicaSpec) {
    this.spec = spec;
    this.#child = spawnSource(MAIN, {
      env: { ...process.env, SHARDWORK_REPLICA: JSON.stringify(spec) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', (code, signal) => resolve({ code, signal })));
    this.#ready = new Promise((resolve, reject) => {
      onLines(this.#child.stdout, (line) => {
        this.log.push(line);
        try {
          const msg = JSON.parse(line) as { type: string; instance?: string };
          if (msg.type === 'lease' && msg.instance !== undefined) this.instances.push(msg.instance);
          if (msg.type === 'ready') resolve();
        } catch {
          // not one of ours
        }
      });
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`replica exited before ready (code ${code}, signal ${signal}):\n${this.log.join('\n')}`)),
      );
    });
    this.#ready.catch(() => undefined);
    this.#child.stderr?.on('data', (chunk: Buffer) => this.log.push(chunk.toString()));
  }

  /** Spawn a replica and wait until its worker has started. */
  static async start(spec: ReplicaSpec, timeoutMs = 30_000): Promise<Replica> {
    const replica = new Replica(spec);
    await replica.ready(timeoutMs);
    return replica;
  }

  /** Spawn without waiting (for simultaneous starts); await {@link ready} later. */
  static spawn(spec: ReplicaSpec): Replica {
    return new Replica(spec);
  }

  /** Wait until the worker inside has started. */
  async ready(timeoutMs = 30_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#ready,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`replica not ready in ${timeoutMs} ms:\n${this.log.join('\n')}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Process id. */
  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** The current (latest) member id. */
  get instance(): string | undefined {
    return this.instances.at(-1);
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Send a signal (SIGKILL, SIGSTOP, SIGCONT, …). */
  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.#child.kill(signal);
  }

  /** Graceful stop via SIGTERM; SIGKILL if it takes longer than `timeoutMs`. Returns the exit code. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (!this.alive) return (await this.exited).code;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** kill -9 and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** Kill every replica that is still alive (for afterEach). */
export async function killAll(replicas: Iterable<Replica>): Promise<void> {
  await Promise.all(
    [...replicas].map(async (r) => {
      r.signal('SIGCONT');
      await r.kill();
    }),
  );
}
