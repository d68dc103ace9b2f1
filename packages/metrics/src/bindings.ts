/**
 * The event-to-metric bindings of workers and job queues, written once against
 * the {@link Recorder} interface.
 *
 * @module
 */

import type { Worker } from '@shardwork/core';
import { settlesWithin } from '@shardwork/core/backend';
import type { AdminJobQueue, JobStats } from '@shardwork/jobs';
import { DEFS } from './definitions.js';
import { GaugeSources } from './gauges.js';
import type { CounterFn, HistogramFn, Observation, Recorder } from './recorder.js';

const JOB_STATES = ['scheduled', 'ready', 'running', 'retrying', 'dead'] as const;

/** A `stats()` read pending longer than this (or the depth interval, if longer) is abandoned. */
const STUCK_READ_MS = 30_000;

/** The `code` label of an error: its string `code`, else `unknown`; trimmed so a label stays bounded. */
export function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code !== '' ? code.slice(0, 64) : 'unknown';
}

/** Every instrument, created once per {@link ShardworkMetrics}. */
export class Instruments {
  readonly acquisitions: CounterFn;
  readonly revocations: CounterFn;
  readonly renewals: CounterFn;
  readonly renewalSeconds: HistogramFn;
  readonly leaseLosses: CounterFn;
  readonly failoverSeconds: HistogramFn;
  readonly handoffSeconds: HistogramFn;
  readonly drainSeconds: HistogramFn;
  readonly backendErrors: CounterFn;
  readonly handlerErrors: CounterFn;
  readonly jobs: CounterFn;
  readonly enqueued: CounterFn;
  readonly jobDuration: HistogramFn;
  readonly jobWait: HistogramFn;
  readonly shardsOwned = new GaugeSources('sum');
  readonly members = new GaugeSources('max');
  readonly jobsRunning = new GaugeSources('sum');
  readonly queueJobs = new GaugeSources('max');

  constructor(r: Recorder) {
    r.gauge(DEFS.shardsOwned, () => this.shardsOwned.read());
    r.gauge(DEFS.members, () => this.members.read());
    this.acquisitions = r.counter(DEFS.acquisitions);
    this.revocations = r.counter(DEFS.revocations);
    this.renewals = r.counter(DEFS.renewals);
    this.renewalSeconds = r.histogram(DEFS.renewalSeconds);
    this.leaseLosses = r.counter(DEFS.leaseLosses);
    this.failoverSeconds = r.histogram(DEFS.failoverSeconds);
    this.handoffSeconds = r.histogram(DEFS.handoffSeconds);
    this.drainSeconds = r.histogram(DEFS.drainSeconds);
    this.backendErrors = r.counter(DEFS.backendErrors);
    this.handlerErrors = r.counter(DEFS.handlerErrors);
    this.jobs = r.counter(DEFS.jobs);
    this.enqueued = r.counter(DEFS.enqueued);
    this.jobDuration = r.histogram(DEFS.jobDuration);
    this.jobWait = r.histogram(DEFS.jobWait);
    r.gauge(DEFS.jobsRunning, () => this.jobsRunning.read());
    r.gauge(DEFS.queueJobs, () => this.queueJobs.read());
  }
}

/** Subscribe a worker's events and gauges; returns the detach function. */
export function bindWorker(m: Instruments, worker: Worker): () => void {
  const service = worker.status().service;
  const s = { service };
  const offs = [
    worker.on('shard:acquired', (e) => {
      m.acquisitions({ service, reason: e.reason });
      if (e.vacantMs === undefined) return;
      if (e.reason === 'failover') m.failoverSeconds(s, e.vacantMs / 1000);
      else if (e.reason === 'handoff') m.handoffSeconds(s, e.vacantMs / 1000);
    }),
    worker.on('shard:revoked', (e) => m.revocations({ service, reason: e.reason })),
    worker.on('shard:released', (e) => m.drainSeconds({ service, reason: e.reason }, e.drainMs / 1000)),
    worker.on('lease:renewed', (e) => {
      m.renewals(s);
      m.renewalSeconds(s, e.latencyMs / 1000);
    }),
    worker.on('lease:lost', () => m.leaseLosses(s)),
    worker.on('error', (e) => m.backendErrors({ service, code: errorCode(e.error) })),
    worker.on('handler:error', (e) => m.handlerErrors({ service, stage: e.stage })),
    m.shardsOwned.add(() => [{ labels: s, value: worker.status().shards.length }]),
    // The member list is only meaningful while registered; a stopped worker's last view is stale.
    m.members.add(() => {
      const status = worker.status();
      return status.instance === undefined ? [] : [{ labels: s, value: status.members.length }];
    }),
  ];
  return once(offs);
}

/**
 * Reads `queue.stats()` at most every `intervalMs` and answers scrapes from
 * the cache, so a slow or failing backend never holds a scrape longer than
 * `timeoutMs` nor breaks it: on failure the last values stay.
 */
export class DepthCache {
  readonly #queue: AdminJobQueue;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #onError: (error: unknown) => void;
  #last: JobStats['queues'] | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #generation = 0;
  /** An adapter without the admin API (amqp) will never answer: stop asking. */
  #unsupported = false;

  constructor(queue: AdminJobQueue, intervalMs: number, timeoutMs: number, onError: (error: unknown) => void) {
    this.#queue = queue;
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#onError = onError;
  }

  /** The current depth observations (waits at most `timeoutMs` for a fresh read). */
  async read(): Promise<readonly Observation[]> {
    const state = this.#queue.state;
    // A stopped queue's adapter is closed: reading would fail (or reconnect) for nothing.
    const readable = state !== 'stopping' && state !== 'stopped' && !this.#unsupported;
    const now = performance.now();
    // A read that hangs (a half-open connection) must not freeze the gauge for good: after a
    // while it is abandoned (its late result ignored) and a new one starts.
    const stuck = this.#inflight !== undefined && now - this.#fetchedAt >= Math.max(this.#intervalMs, STUCK_READ_MS);
    if (readable && (this.#inflight === undefined || stuck) && now - this.#fetchedAt >= this.#intervalMs) {
      this.#fetchedAt = now;
      const generation = ++this.#generation;
      this.#inflight = this.#queue
        .stats()
        .then(
          (stats) => {
            if (generation === this.#generation) this.#last = stats.queues;
          },
          (error: unknown) => {
            if (generation !== this.#generation) return;
            if (errorCode(error) === 'UNSUPPORTED_FEATURE') this.#unsupported = true;
            this.#onError(error);
          },
        )
        .finally(() => {
          if (generation === this.#generation) this.#inflight = undefined;
        });
    }
    if (this.#inflight !== undefined) await settlesWithin(this.#inflight, this.#timeoutMs);
    const observations: Observation[] = [];
    for (const [queue, counts] of Object.entries(this.#last ?? {})) {
      for (const state of JOB_STATES) observations.push({ labels: { queue, state }, value: counts[state] });
    }
    return observations;
  }
}

/** Subscribe a job queue's events and gauges; returns the detach function. */
export function bindJobs(
  m: Instruments,
  queue: AdminJobQueue,
  options: { readonly depthIntervalMs: number; readonly depthTimeoutMs: number; readonly name: string },
): () => void {
  const service = options.name;
  const depth = new DepthCache(queue, options.depthIntervalMs, options.depthTimeoutMs, (error) =>
    m.backendErrors({ service, code: errorCode(error) }),
  );
  const offs = [
    queue.on('job:enqueued', ({ job }) => m.enqueued({ queue: job.queue, handler: job.handler })),
    queue.on('job:started', ({ job, waitMs }) =>
      m.jobWait({ queue: job.queue, handler: job.handler }, Math.max(0, waitMs) / 1000),
    ),
    queue.on('job:completed', ({ job, durationMs }) => {
      m.jobs({ queue: job.queue, handler: job.handler, outcome: 'completed' });
      m.jobDuration({ queue: job.queue, handler: job.handler, outcome: 'completed' }, durationMs / 1000);
    }),
    queue.on('job:failed', ({ job, durationMs }) => {
      m.jobs({ queue: job.queue, handler: job.handler, outcome: 'failed' });
      m.jobDuration({ queue: job.queue, handler: job.handler, outcome: 'failed' }, durationMs / 1000);
    }),
    queue.on('job:dead', ({ job }) => m.jobs({ queue: job.queue, handler: job.handler, outcome: 'dead' })),
    queue.on('error', ({ error }) => m.backendErrors({ service, code: errorCode(error) })),
    m.jobsRunning.add(() => [{ labels: {}, value: queue.status().running }]),
    m.queueJobs.add(() => depth.read()),
  ];
  return once(offs);
}

function once(offs: readonly (() => void)[]): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const off of offs) off();
  };
}
