/**
 * The README's demos, run as a user runs them: each must exit 0 by itself and
 * print what the README says it shows.
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const node = (script: string) =>
  run(process.execPath, ['--conditions=@shardwork/source', '--import', 'tsx', script], {
    cwd: new URL('..', import.meta.url).pathname,
    timeout: 60_000,
  });

describe('examples', () => {
  it('pnpm demo:jobs performs now, in and at, retries, dead-sets, refuses a duplicate, keeps per-key order, exits 0', async () => {
    const { stdout } = await node('examples/jobs.ts');
    expect(stdout).toMatch(/reminder for user 42, due 300 ms after enqueue/);
    expect(stdout).toMatch(/report for tenant-7 \(performAt\)/);
    expect(stdout).toMatch(/webhook .* delivered on attempt 2/);
    expect(stdout).toMatch(/charge_card .* is dead \(non-retryable\)/);
    expect(stdout).toMatch(/refused as a duplicate of [A-Za-z0-9_-]{21}/);
    expect(stdout).toMatch(/ledger acct-A applied in order 1, 2, 3, 4/);
    expect(stdout).toMatch(/ledger acct-B applied in order 1, 2, 3, 4/);
    expect(stdout).toMatch(/done: 14 enqueued, 1 duplicate refused, 13 completed/);
  });

  it('pnpm demo shares the shards, recovers from a stop, a crash and a join, exits 0', async () => {
    const { stdout } = await node('examples/demo.ts');
    expect(stdout).toMatch(/\[stop\] .*every shard owned again/);
    expect(stdout).toMatch(/\[crash\] .*every shard was owned again/);
    expect(stdout).toMatch(/\[join\] .*holds its fair share/);
    expect(stdout).toMatch(/every replica stopped/);
  });
});
