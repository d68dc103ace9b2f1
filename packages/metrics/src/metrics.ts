/**
 * {@link ShardworkMetrics}: the instruments of one process, recorded into a
 * prom-client registry and, when a meter is given, an OpenTelemetry meter too.
 *
 * @module
 */

import type { Worker } from '@shardwork/core';
import { InvalidOptionsError } from '@shardwork/core';
import type { AdminJobQueue } from '@shardwork/jobs';
import type { Registry } from 'prom-client';
import { bindJobs, bindWorker, Instruments } from './bindings.js';
import {
  compileInstrumentJobsOptions,
  compileMetricsOptions,
  type InstrumentJobsOptions,
  type MetricsOptions,
} from './options.js';
import { fanout, otelRecorder, promRecorder, type Recorder } from './recorder.js';

/**
 * Metrics of shardwork workers and job queues.
 *
 * ```ts
 * const metrics = new ShardworkMetrics();
 * const detach = metrics.instrumentWorker(worker);
 * metrics.instrumentJobs(jobs);
 * res.setHeader('content-type', metrics.contentType).end(await metrics.metrics());
 * ```
 *
 * Prometheus always receives the metrics (in {@link registry}); with a
 * `meter` they are also recorded to OpenTelemetry. Create one per registry:
 * a second instance on the same registry throws (duplicate metric names).
 */
export class ShardworkMetrics {
  /** The prom-client registry holding the metrics; merge it with `Registry.merge([yours, metrics.registry])`. */
  readonly registry: Registry;
  /** The metric name prefix. */
  readonly prefix: string;
  readonly #instruments: Instruments;

  /** @param options - registry, meter and prefix; invalid ones throw `InvalidOptionsError`. */
  constructor(options?: MetricsOptions) {
    const o = compileMetricsOptions(options);
    this.registry = o.registry;
    this.prefix = o.prefix;
    const recorders: Recorder[] = [promRecorder(o.registry, o.prefix)];
    if (o.meter !== undefined) recorders.push(otelRecorder(o.meter, o.prefix));
    this.#instruments = new Instruments(fanout(recorders));
  }

  /** Content type of {@link metrics} (the Prometheus text format). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Record a worker's events (acquisitions, revocations, lease renewals,
   * errors) and gauges (shards owned, members). Attach before `start()` to see
   * the first acquisitions. Returns a function that detaches it again.
   */
  instrumentWorker(worker: Worker): () => void {
    if (typeof worker?.status !== 'function' || typeof worker.on !== 'function') {
      throw new InvalidOptionsError('worker', worker, 'a shardwork Worker');
    }
    return bindWorker(this.#instruments, worker);
  }

  /**
   * Record a job queue's events (enqueued, started, completed, failed, dead,
   * errors) and gauges (jobs running here, queue depth per state from
   * `queue.stats()`, read at most every `depthIntervalMs`). Returns a function
   * that detaches it again.
   */
  instrumentJobs(queue: AdminJobQueue, options?: InstrumentJobsOptions): () => void {
    if (typeof queue?.status !== 'function' || typeof queue.stats !== 'function') {
      throw new InvalidOptionsError('queue', queue, 'a shardwork JobQueue');
    }
    return bindJobs(this.#instruments, queue, compileInstrumentJobsOptions(options));
  }

  /** The registry's metrics in the Prometheus text format (what `/metrics` serves). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
