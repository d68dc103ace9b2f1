/**
 * A consumer process of bench/jobs-follow.ts: handler `stamp` returns the
 * monotonic ms at its return (the result a waiter gets), handler `hold` waits
 * for its signal and prints `{ type: 'aborted', id, t }` when it aborts (a
 * cancel), `{ type: 'running', id }` when it starts. shardwork on Redis, or
 * BullMQ (`stamp` only) as the baseline. Configured by BENCH_FOLLOW (JSON).
 */

import { createJobQueue } from '@shardwork/jobs';
import { Worker as BullWorker } from 'bullmq';

const config = JSON.parse(process.env.BENCH_FOLLOW ?? '{}') as {
  system: 'shardwork' | 'bullmq';
  url: string;
  port: number;
  queue: string;
};
/** Monotonic ms, comparable across processes on one machine (CLOCK_MONOTONIC). */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const say = (message: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(message)}\n`);
process.stdout.on('error', () => process.exit(0));

if (config.system === 'shardwork') {
  const jobs = createJobQueue(config.url, { concurrency: 20, adapter: { partitions: 4, leaseTtlMs: 2000 } });
  jobs.register('stamp', () => monotonicMs());
  jobs.register('hold', async (_args, ctx) => {
    say({ type: 'running', id: ctx.id });
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener('abort', () => {
        say({ type: 'aborted', id: ctx.id, t: monotonicMs() });
        resolve();
      }),
    );
  });
  jobs.on('error', () => undefined);
  await jobs.start();
} else {
  const worker = new BullWorker(config.queue, async () => monotonicMs(), {
    connection: { host: '127.0.0.1', port: config.port },
    concurrency: 20,
  });
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
}
say({ type: 'ready' });
