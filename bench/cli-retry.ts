/**
 * `shardwork jobs retry --all` on 100,000 dead jobs of a Redis queue: the
 * built binary, timed from process start to exit (run `pnpm build` first).
 *
 *   node --conditions=@shardwork/source --import tsx bench/cli-retry.ts
 */

import { execFileSync } from 'node:child_process';
import { NonRetryableError } from '@shardwork/core';
import { createJobQueue } from '@shardwork/jobs';
import { startRedisServer } from '@shardwork/testkit';

const redis = await startRedisServer();
const url = `${redis.url}?prefix=d100k:&partitions=4&leaseTtlMs=1000`;
const q = createJobQueue(url, { concurrency: 200 });
q.on('job:dead', () => undefined);
q.on('job:failed', () => undefined);
q.register('fragile', () => {
  throw new NonRetryableError('broken');
});
await q.start();
const N = 100_000;
const t0 = performance.now();
for (let i = 0; i < N; i += 1000)
  await q.performMany(Array.from({ length: 1000 }, (_, j) => ({ handler: 'fragile', args: { n: i + j } })));
for (;;) {
  const s = await q.stats();
  if (s.total.dead === N) break;
  await new Promise((r) => setTimeout(r, 200));
}
console.log(`100k dead after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
await q.stop();
const t1 = performance.now();
const out = execFileSync(process.execPath, ['packages/cli/dist/bin.js', 'jobs', 'retry', '--all', '--jobs', url], {
  encoding: 'utf8',
});
console.log(out.trim(), `in ${((performance.now() - t1) / 1000).toFixed(2)} s`);
const stats = execFileSync(process.execPath, ['packages/cli/dist/bin.js', 'jobs', 'stats', '--json', '--jobs', url], {
  encoding: 'utf8',
});
console.log(JSON.stringify(JSON.parse(stats).total ?? JSON.parse(stats)));
await redis.stop();
