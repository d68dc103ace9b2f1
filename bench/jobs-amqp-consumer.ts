/**
 * A consumer child for the kill -9 run of bench/jobs-amqp.ts: takes `hold`
 * jobs, says which it started, and never finishes them.
 */

import { createJobQueue } from '@shardwork/jobs';

const jobs = createJobQueue(process.env.BENCH_AMQP_URL, { concurrency: 20 });
jobs.on('error', () => undefined);
jobs.register('hold', (_args, ctx) => {
  process.stdout.write(`${JSON.stringify({ started: ctx.id })}\n`);
  return new Promise(() => undefined);
});
await jobs.start();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
