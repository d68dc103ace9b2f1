/**
 * A consumer process of the PostgreSQL job benchmarks (bench/jobs-postgres.ts):
 * shardwork's PostgreSQL adapter, pg-boss or graphile-worker, with no-op
 * handlers (or handlers that sleep, for the crash-recovery run). Configured by
 * BENCH_CONSUMER (JSON); prints JSON lines on stdout: `ready`, `first`
 * (monotonic ms of the first start), `count` (completions so far, every 100 ms),
 * `start` of each job when `report` is set.
 */

import { createJobQueue } from '@shardwork/jobs';
import { Logger, run as runGraphile } from 'graphile-worker';
import { PgBoss } from 'pg-boss';

/** Configuration of one consumer. */
export interface PgConsumerConfig {
  readonly system: 'shardwork' | 'pgboss' | 'graphile';
  /** postgres://… of the private server. */
  readonly url: string;
  /** The queue (shardwork: its schema; pg-boss: its queue; graphile-worker: its schema). */
  readonly queue: string;
  readonly concurrency: number;
  /** ms each job sleeps (0: a no-op). */
  readonly sleepMs: number;
  /** Print a `start` line per job. */
  readonly report: boolean;
  /** shardwork adapter options (discovery, partitions, leaseTtlMs…). */
  readonly adapter?: Record<string, unknown>;
}

/** Monotonic ms, comparable across processes on one machine (CLOCK_MONOTONIC). */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const config = JSON.parse(process.env.BENCH_CONSUMER ?? '{}') as PgConsumerConfig;
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
process.stdout.on('error', () => process.exit(0));
setInterval(() => say({ type: 'count', n: completed, t: monotonicMs() }), 100);

if (config.system === 'shardwork') {
  const jobs = createJobQueue(`${config.url}?schema=${config.queue}`, {
    concurrency: config.concurrency,
    keepCompleted: false,
    ...(config.adapter === undefined ? {} : { adapter: config.adapter }),
  });
  jobs.register('noop', async (_args, ctx) => {
    started(ctx.id);
    await work();
  });
  jobs.on('job:completed', () => void completed++);
  jobs.on('error', () => undefined);
  await jobs.start();
} else if (config.system === 'pgboss') {
  // As pg-boss's docs recommend for throughput: batches, a burst while batches come back full, NOTIFY.
  const boss = new PgBoss({ connectionString: config.url, schema: 'pgboss', useListenNotify: true });
  boss.on('error', () => undefined);
  await boss.start();
  const batchSize = Math.max(1, Math.round(config.concurrency / 5));
  await boss.work(
    config.queue,
    { batchSize, localConcurrency: 5, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (batch) => {
      await Promise.all(
        batch.map(async (job) => {
          started(job.id);
          await work();
        }),
      );
      completed += batch.length;
    },
  );
} else {
  // As graphile-worker's performance docs recommend: a local queue of concurrency + 1, batched completions.
  const runner = await runGraphile({
    connectionString: config.url,
    schema: config.queue,
    concurrency: config.concurrency,
    noHandleSignals: true,
    pollInterval: 500,
    logger: new Logger(() => () => undefined),
    preset: { worker: { localQueue: { size: config.concurrency + 1 }, completeJobBatchDelay: 0 } },
    taskList: {
      noop: async (_payload, helpers) => {
        started(helpers.job.id);
        await work();
        completed++;
      },
    },
  });
  runner.events.on('pool:listen:error', () => undefined);
}
say({ type: 'ready', t: monotonicMs() });
