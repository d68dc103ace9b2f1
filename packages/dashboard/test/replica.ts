/**
 * One replica of a test service, run as a child process so that a test can
 * kill it with SIGKILL. Configured by SHARDWORK_TEST_SERVICE and
 * SHARDWORK_TEST_DISCOVERY; prints `ready <instance>` once registered.
 *
 * Run: node --conditions=@shardwork/source --import tsx packages/dashboard/test/replica.ts
 */
import { sleep, Worker } from '@shardwork/core';

const worker = new Worker({
  service: process.env.SHARDWORK_TEST_SERVICE ?? 'workers',
  shards: Number(process.env.SHARDWORK_TEST_SHARDS ?? 6),
  discovery: process.env.SHARDWORK_TEST_DISCOVERY ?? '',
  leaseTtlMs: 1000,
  handleSignals: true,
  startTimeoutMs: 60_000,
  handler: {
    async do(ctx) {
      while (!ctx.signal.aborted) await sleep(100, ctx.signal).catch(() => undefined);
    },
  },
});
worker.on('state', ({ to }) => {
  if (to === 'stopped') process.exit(0);
});
await worker.start();
process.stdout.write(`ready ${worker.status().instance}\n`);
