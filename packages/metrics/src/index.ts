/**
 * Prometheus and OpenTelemetry metrics for shardwork workers and job queues,
 * and a small HTTP server with `/metrics`, `/healthz` and `/readyz`.
 *
 * ```ts
 * import { ShardworkMetrics, serveMetrics } from '@shardwork/metrics';
 * const metrics = new ShardworkMetrics({ meter }); // meter optional
 * metrics.instrumentWorker(worker);
 * metrics.instrumentJobs(jobs);
 * const server = await serveMetrics({ host: '0.0.0.0', metrics, workers: [worker], jobs: [jobs] });
 * ```
 *
 * @module
 */

export { errorCode } from './bindings.js';
export { DEFS as METRIC_DEFINITIONS } from './definitions.js';
export { ShardworkMetrics } from './metrics.js';
export type {
  CompiledInstrumentJobsOptions,
  CompiledMetricsOptions,
  CompiledServeOptions,
  InstrumentJobsOptions,
  MetricsOptions,
  ServeMetricsOptions,
} from './options.js';
export { compileInstrumentJobsOptions, compileMetricsOptions, compileServeOptions } from './options.js';
export type { HistogramDef, MetricDef } from './recorder.js';
export type { MetricsServer, ReadinessCheck } from './server.js';
export { jobsReadiness, serveMetrics, workerReadiness } from './server.js';
