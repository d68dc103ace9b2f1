/**
 * The job consumer the Kubernetes example deploys beside the worker: jobs
 * from `SHARDWORK_JOBS` (a `redis://` URL), metrics, `/healthz` and `/readyz`
 * on port 9464, and a graceful stop on SIGTERM (`handleSignals`): running
 * jobs get `stopTimeoutMs` to finish, and whatever is still running then is
 * put back for another pod.
 *
 *   SHARDWORK_JOBS=redis://127.0.0.1:6379 node --import tsx examples/kubernetes/jobs.ts
 */

import { createJobQueue } from '@shardwork/jobs';
import { ShardworkMetrics, serveMetrics } from '@shardwork/metrics';

type Jobs = { resize: { image: string; ms?: number } };

const jobs = createJobQueue<Jobs>(process.env.SHARDWORK_JOBS, {
  concurrency: Number(process.env.CONCURRENCY ?? 10),
  // Must stay below terminationGracePeriodSeconds (see deployment.yaml).
  stopTimeoutMs: 20_000,
  handleSignals: true,
  adapter: { leaseTtlMs: Number(process.env.LEASE_TTL_MS ?? 10_000) },
});
jobs.register('resize', async (args, ctx) => {
  ctx.progress(0);
  await new Promise((resolve) => setTimeout(resolve, args.ms ?? 100));
  ctx.assertOwned();
  ctx.progress(100);
  return { image: args.image, resized: true };
});
jobs.on('job:completed', ({ job }) => console.log(`completed ${job.id}`));
jobs.on('state', ({ to }) => console.log(`jobs ${to}`));

const metrics = new ShardworkMetrics();
const server = await serveMetrics({
  host: process.env.METRICS_HOST ?? '0.0.0.0',
  port: Number(process.env.METRICS_PORT ?? 9464),
  metrics,
  jobs: [jobs],
});
jobs.on('state', ({ to }) => {
  if (to === 'stopped') void server.close();
});
await jobs.start();
