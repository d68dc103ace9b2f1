/**
 * The private test kit for child processes, shared by the fault tests, the
 * chaos runs and the benchmarks: spawn a TypeScript entry point the way the
 * workspace runs its sources (tsx, the `@shardwork/source` export condition),
 * and split a child's output into lines.
 *
 * @module
 */

import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

/** The Node flags that run workspace sources directly (see vitest.config.ts for the same condition). */
export const SOURCE_FLAGS = ['--conditions=@shardwork/source', '--import', 'tsx'] as const;

/**
 * Spawn `main` (a .ts file) with this Node and {@link SOURCE_FLAGS}, plus the
 * Node flags in `SHARDWORK_CHILD_NODE_FLAGS` (space-separated; e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile benchmark hosts, which
 * `NODE_OPTIONS` does not allow).
 */
export function spawnSource(main: string, options: SpawnOptions, args: readonly string[] = []): ChildProcess {
  const extra = (process.env.SHARDWORK_CHILD_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
  return spawn(process.execPath, [...extra, ...SOURCE_FLAGS, main, ...args], options);
}

/** Call `onLine` for every complete line the stream produces (without the newline). */
export function onLines(stream: Readable | null | undefined, onLine: (line: string) => void): void {
  let buffer = '';
  stream?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      onLine(line);
    }
  });
}
