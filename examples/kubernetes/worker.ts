/**
 * The replica the Kubernetes example deploys: a sharded worker whose discovery
 * URL comes from `SHARDWORK_DISCOVERY`, with metrics, `/healthz` and `/readyz`
 * on port 9464, and a graceful hand-over on SIGTERM (`handleSignals`).
 *
 *   SHARDWORK_DISCOVERY=redis://127.0.0.1:6379 node --import tsx examples/kubernetes/worker.ts
 */

import { hostname } from 'node:os';
import { Worker } from '@shardwork/core';
import { ShardworkMetrics, serveMetrics } from '@shardwork/metrics';

const shards = Number(process.env.SHARDS ?? 32);
const leaseTtlMs = Number(process.env.LEASE_TTL_MS ?? 10_000);

const worker = new Worker({
  service: process.env.SERVICE ?? 'billing-sync',
  shards,
  leaseTtlMs,
  // Must stay below terminationGracePeriodSeconds (see deployment.yaml).
  revokeTimeoutMs: 20_000,
  handleSignals: true,
  host: process.env.POD_NAME ?? hostname(),
  handler: {
    async do(ctx) {
      // A long-running consumer: work on this shard until it is revoked.
      while (!ctx.signal.aborted) {
        ctx.assertOwned();
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    },
    watch: (info) => console.log(`owning ${info.shards.length}/${info.shardCount} shards: ${info.shards.join(',')}`),
  },
});

const metrics = new ShardworkMetrics();
metrics.instrumentWorker(worker);
const server = await serveMetrics({
  host: process.env.METRICS_HOST ?? '0.0.0.0', // the pod's address, for the kubelet and the scraper
  port: Number(process.env.METRICS_PORT ?? 9464),
  metrics,
  workers: [worker],
});
worker.on('state', ({ to }) => {
  if (to === 'stopped') void server.close();
});
await worker.start();
