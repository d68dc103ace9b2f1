/**
 * Running the built `shardwork` binary from tests.
 *
 * @module
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The built executable. */
export const BIN = join(ROOT, 'packages/cli/dist/bin.js');

let built: Promise<void> | undefined;

/**
 * Build the CLI and the backend packages it loads by URL (the binary runs
 * under plain Node, i.e. from `dist`). Once per test process; incremental, so
 * cheap when nothing changed.
 */
export function buildOnce(): Promise<void> {
  built ??= (async () => {
    // The binary runs under plain Node, from `dist`: build it and everything
    // it loads (the backends load by URL scheme). Incremental, so cheap after
    // the suite's `pnpm build`.
    await tsc([
      '-b',
      'packages/core',
      'packages/jobs',
      'packages/discovery-redis',
      'packages/discovery-etcd',
      'packages/discovery-postgres',
      'packages/jobs-redis',
      'packages/jobs-postgres',
      'packages/cli',
    ]);
    if (!existsSync(BIN)) throw new Error(`build did not produce ${BIN}`);
  })();
  return built;
}

function tsc(args: readonly string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    execFile('pnpm', ['exec', 'tsc', ...args], { cwd: ROOT, timeout: 180_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`tsc ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

/** A stream that says it is a terminal `columns` wide and keeps what is written (for in-process `main()`). */
export function fakeTty(columns = 100): Writable & { isTTY: true; columns: number; text(): string } {
  let buffer = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      buffer += chunk.toString();
      callback();
    },
  });
  return Object.assign(stream, { isTTY: true as const, columns, text: () => buffer });
}

/** Outcome of one run. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Run `shardwork ...args` to completion (killed after `timeoutMs`). */
export function run(
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
        timeout: options.timeoutMs ?? 30_000,
        env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...options.env },
      },
      (_error, stdout, stderr) => {
        resolve({ code: child.exitCode, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

/** A long-running `shardwork` process whose output lines are collected. */
export interface Spawned {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolve with the first line (index ≥ `from`) matching `re`. */
  waitFor(re: RegExp, withinMs: number, from?: number): Promise<string>;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolve with stderr once it matches `re`. */
  waitForStderr(re: RegExp, withinMs: number): Promise<string>;
  /** SIGINT it and wait for the exit code. */
  stop(): Promise<number | null>;
}

/** Spawn `shardwork ...args` and collect stdout lines. */
export function spawnCli(args: readonly string[]): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // 'close', not 'exit': by then both pipes are drained, so stderr() holds everything the process wrote.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    lines,
    async waitFor(re, withinMs, from = 0) {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const hit = lines.slice(from).find((l) => re.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(
            `no line matching ${re} within ${withinMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stderr: () => stderr,
    async waitForStderr(re, withinMs) {
      const deadline = Date.now() + withinMs;
      for (;;) {
        if (re.test(stderr)) return stderr;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`stderr did not match ${re} within ${withinMs} ms:\n${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}
