/**
 * A consumer process of the job benchmarks (bench/jobs.ts): shardwork's Redis
 * adapter, BullMQ or bee-queue, with no-op handlers (or handlers that sleep,
 * for the crash-recovery run). Configured by BENCH_CONSUMER (JSON); prints
 * JSON lines on stdout: `ready`, `first` (monotonic ms of the first start),
 * `count` (completions so far, every 100 ms and at the end), `start` of each
 * job when `report` is set.
 */

import { createRequire } from 'node:module';
import { createJobQueue } from '@shardwork/jobs';
import { Worker as BullWorker } from 'bullmq';

/** Configuration of one consumer. */
export interface ConsumerConfig {
  readonly system: 'shardwork' | 'bullmq' | 'bee';
  readonly redisPort: number;
  readonly queue: string;
  readonly concurrency: number;
  /** ms each job sleeps (0: a no-op). */
  readonly sleepMs: number;
  /** Print a `start` line per job. */
  readonly report: boolean;
  /** shardwork adapter options. */
  readonly adapter?: Record<string, unknown>;
  /** shardwork's `keepCompleted` (its default when absent). */
  readonly keepCompleted?: false | { readonly count?: number; readonly ageMs?: number };
}

/** Monotonic ms, comparable across processes on one machine (CLOCK_MONOTONIC). */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const config = JSON.parse(process.env.BENCH_CONSUMER ?? '{}') as ConsumerConfig;
const say = (message: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`);
};
let completed = 0;
let first = 0;
const started = (id: string): void => {
  if (first === 0) {
    first = monotonicMs();
    say({ type: 'first', t: first });
  }
  if (config.report) say({ type: 'start', id, t: monotonicMs() });
};
const work = (): Promise<void> | undefined =>
  config.sleepMs > 0 ? new Promise((resolve) => setTimeout(resolve, config.sleepMs)) : undefined;
// The driver may kill us or go away first: a closed pipe is not an error here.
process.stdout.on('error', () => process.exit(0));
setInterval(() => say({ type: 'count', n: completed, t: monotonicMs() }), 100);

if (config.system === 'shardwork') {
  const jobs = createJobQueue(`redis://127.0.0.1:${config.redisPort}?prefix=${config.queue}:`, {
    concurrency: config.concurrency,
    ...(config.adapter === undefined ? {} : { adapter: config.adapter }),
    ...(config.keepCompleted === undefined ? {} : { keepCompleted: config.keepCompleted }),
  });
  jobs.register('noop', async (_args, ctx) => {
    started(ctx.id);
    await work();
  });
  jobs.on('job:completed', () => void completed++);
  jobs.on('error', () => undefined);
  await jobs.start();
} else if (config.system === 'bullmq') {
  const worker = new BullWorker(
    config.queue,
    async (job) => {
      started(String(job.id));
      await work();
    },
    { connection: { host: '127.0.0.1', port: config.redisPort }, concurrency: config.concurrency },
  );
  worker.on('completed', () => void completed++);
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
} else {
  const require = createRequire(import.meta.url);
  const BeeQueue = require('bee-queue') as new (
    name: string,
    settings: Record<string, unknown>,
  ) => {
    process(concurrency: number, handler: (job: { id: string }) => Promise<void>): void;
    on(event: string, fn: () => void): void;
    ready(): Promise<unknown>;
  };
  const queue = new BeeQueue(config.queue, {
    redis: { host: '127.0.0.1', port: config.redisPort },
    removeOnSuccess: true,
    getEvents: false,
    sendEvents: false,
  });
  queue.on('succeeded', () => void completed++);
  queue.on('error', () => undefined);
  await queue.ready();
  queue.process(config.concurrency, async (job) => {
    started(job.id);
    await work();
  });
}
say({ type: 'ready', t: monotonicMs() });
