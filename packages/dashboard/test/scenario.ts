import { NonRetryableError, sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { type Dashboard, startDashboard } from '../src/index.js';
import { killReplica, type Replica, randomName, startReplica } from './support.js';

/**
 * The browser tests' and the screenshot script's setup: a real Redis, three
 * replica processes of one service (6 shards, lease 1 s), a Redis job queue
 * run in this process with a handler that fails for good while `failing` is set
 * and one (`export-report`) that reports its progress in `args.steps` steps of
 * `args.stepMs` and returns a result, and a dashboard over both.
 */
export interface Scenario {
  readonly redis: RedisTestServer;
  readonly service: string;
  readonly replicas: Replica[];
  readonly jobs: JobQueue;
  /** The job queue's Redis key prefix (`<prefix>{<queue>}:…` are its keys). */
  readonly jobsPrefix: string;
  readonly dashboard: Dashboard;
  readonly completed: string[];
  failing: boolean;
  close(): Promise<void>;
}

/** Start everything; `close()` stops it all. */
export async function startScenario(options: { refreshMs?: number } = {}): Promise<Scenario> {
  const redis = await startRedisServer();
  const service = randomName('workers');
  const replicas = await Promise.all([0, 1, 2].map(() => startReplica(service, redis.url)));
  const jobsPrefix = `${randomName('jobs')}:`;
  const jobs = createJobQueue(`${redis.url}?prefix=${jobsPrefix}&partitions=2&leaseTtlMs=1000`);
  const scenario: Scenario = {
    redis,
    service,
    replicas,
    jobs,
    jobsPrefix,
    dashboard: undefined as unknown as Dashboard,
    completed: [],
    failing: true,
    async close() {
      await scenario.dashboard?.close();
      await jobs.stop();
      await Promise.all(replicas.map((r) => killReplica(r, 'SIGKILL')));
      await redis.stop();
    },
  };
  jobs.register('send-invoice', (args) => {
    if (scenario.failing) throw new NonRetryableError(`payment provider rejected invoice ${String(args.invoice)}`);
  });
  jobs.register('export-report', async (args, ctx) => {
    const steps = Number(args.steps ?? 4);
    for (let step = 1; step <= steps; step++) {
      await sleep(Number(args.stepMs ?? 100), ctx.signal);
      ctx.progress(Math.round((step * 100) / steps));
    }
    return { rows: 18_423, file: `s3://reports/${String(args.month)}.csv`, bytes: 7_340_032 };
  });
  jobs.on('job:completed', ({ job }) => {
    scenario.completed.push(job.id);
  });
  await jobs.start();
  (scenario as { dashboard: Dashboard }).dashboard = await startDashboard({
    discovery: redis.url,
    jobs,
    services: [service],
    port: 0,
    refreshMs: options.refreshMs ?? 500,
  });
  return scenario;
}
