/**
 * The runtime a {@link JobQueue} hands its adapter (`AdapterRuntime`): run an
 * attempt of a job with its middleware and timeout, report an outcome the
 * adapter has stored as events, build the records of periodic ticks, and
 * route the adapter's events (an error nobody listens for, a job nobody
 * consumes, to the logger). It also keeps what the queue's `status()`
 * reports: attempts running and what this process did.
 *
 * @module
 */

import { errorMessage } from '@shardwork/core';
import type { AdapterRuntime, AttemptOutcome, JobAdapter, RunExtras, RunnableJob } from './adapter.js';
import { refOf } from './adapter.js';
import { UnknownHandlerError } from './errors.js';
import type { JobQueueEventMap } from './events.js';
import { runAttempt } from './execute.js';
import type { EnqueueOptions, EnqueueResult, JobRecord, Middleware } from './job.js';
import type { CompiledPeriodic, CompiledQueueOptions, CompiledRegistration } from './options.js';
import { buildRecord } from './record.js';
import { traced } from './tracing.js';

/** What this process did since it was created (`status().counts`). */
export interface QueueCounts {
  enqueued: number;
  duplicates: number;
  started: number;
  completed: number;
  failed: number;
  dead: number;
}

/** What the runtime needs from its queue. */
export interface RuntimeHost {
  readonly handlers: ReadonlyMap<string, CompiledRegistration>;
  readonly options: CompiledQueueOptions;
  readonly periodics: readonly CompiledPeriodic[];
  readonly middleware: readonly Middleware[];
  emit<K extends keyof JobQueueEventMap>(event: K, payload: JobQueueEventMap[K]): void;
  listenerCount(event: keyof JobQueueEventMap): number;
}

/** See the module documentation. */
export class QueueRuntime implements AdapterRuntime {
  readonly #host: RuntimeHost;
  /** Jobs this process is enqueueing: a local consumer may fetch one before perform() returns. */
  readonly #enqueueing = new Map<string, Promise<void>>();
  /** How to abort each attempt running in this process, by job id (a cancel). */
  readonly #aborts = new Map<string, (reason: unknown) => void>();
  /**
   * Cancels of jobs not running here (yet), by id, with when they came: a job
   * fetched ahead and waiting for a slot must not start once it is cancelled.
   * Kept for a minute.
   */
  readonly #cancelledAhead = new Map<string, { readonly reason: unknown; readonly at: number }>();
  /** Attempts running in this process now. */
  running = 0;
  readonly counts: QueueCounts = { enqueued: 0, duplicates: 0, started: 0, completed: 0, failed: 0, dead: 0 };

  constructor(host: RuntimeHost) {
    this.#host = host;
  }

  get handlers(): ReadonlyMap<string, CompiledRegistration> {
    return this.#host.handlers;
  }

  get options(): CompiledQueueOptions {
    return this.#host.options;
  }

  get periodics(): readonly CompiledPeriodic[] {
    return this.#host.periodics;
  }

  periodicRecord(periodic: CompiledPeriodic, tickMs: number) {
    const host = this.#host;
    const now = Date.now();
    const ctx = { handlers: host.handlers, maxArgsBytes: host.options.maxArgsBytes };
    return { ...buildRecord(ctx, periodic.job, tickMs, `${periodic.name}.job`, now), runAt: tickMs };
  }

  emit<K extends keyof JobQueueEventMap>(event: K, payload: JobQueueEventMap[K]): void {
    const host = this.#host;
    // An unreachable store with nobody listening would be silent for its whole retry: say it, as Worker does.
    if (event === 'error' && host.listenerCount('error') === 0) {
      this.reportError((payload as JobQueueEventMap['error']).error);
    } else if (event === 'job:unhandled' && host.listenerCount(event) === 0) {
      const { job, reason } = payload as JobQueueEventMap['job:unhandled'];
      host.options.logger.warn(
        { scope: 'jobs', queue: job.queue, handler: job.handler, jobId: job.id },
        `${job.handler} ${job.id}: ${reason}`,
      );
    } else {
      host.emit(event, payload);
    }
  }

  /** An error: to `error` listeners, else the logger. */
  reportError(error: unknown): void {
    const host = this.#host;
    if (host.listenerCount('error') === 0) host.options.logger.warn({ scope: 'jobs', error }, errorMessage(error));
    else host.emit('error', { error });
  }

  /**
   * Store `records` through `adapter`, count them and emit `job:enqueued`;
   * a consumer in this process that fetches one before the reply reaches us
   * waits for it (so `job:enqueued` comes before `job:started`).
   */
  async submit(adapter: JobAdapter, records: readonly JobRecord[], options?: EnqueueOptions): Promise<EnqueueResult[]> {
    let accepted: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      accepted = resolve;
    });
    for (const record of records) this.#enqueueing.set(record.id, gate);
    try {
      const results = await adapter.enqueue(records, options);
      records.forEach((record, i) => {
        if (results[i]?.duplicate) {
          this.counts.duplicates++;
          return;
        }
        this.counts.enqueued++;
        if (this.#host.listenerCount('job:enqueued') > 0) {
          this.#host.emit('job:enqueued', { job: refOf(record), runAt: new Date(record.runAt) });
        }
      });
      return results;
    } finally {
      for (const record of records) this.#enqueueing.delete(record.id);
      accepted();
    }
  }

  async run(job: RunnableJob, extras: RunExtras = {}): Promise<AttemptOutcome> {
    const reg = this.#host.handlers.get(job.handler);
    if (reg === undefined) {
      return { type: 'aborted', error: new UnknownHandlerError(job.handler, [...this.#host.handlers.keys()]) };
    }
    this.running++;
    try {
      const enqueueing = this.#enqueueing.get(job.id);
      if (enqueueing !== undefined) await enqueueing;
      const cancelled = this.#cancelledAhead.get(job.id);
      if (cancelled !== undefined) {
        this.#cancelledAhead.delete(job.id);
        return { type: 'aborted', error: cancelled.reason };
      }
      const host = this.#host;
      return await traced(job, job.fails + 1, () =>
        runAttempt(reg, host.middleware, job, extras, {
          onStart: () => {
            this.counts.started++;
            if (host.listenerCount('job:started') > 0)
              host.emit('job:started', {
                job: refOf(job),
                attempt: job.fails + 1,
                waitMs: Math.max(0, Date.now() - job.runAt),
              });
          },
          maxResultBytes: host.options.maxArgsBytes,
          progressIntervalMs: host.options.progressIntervalMs,
          onProgress: (progress) => host.emit('job:progress', { job: refOf(job), attempt: job.fails + 1, progress }),
          abortable: (abort) => {
            this.#aborts.set(job.id, abort);
            return () => {
              if (this.#aborts.get(job.id) === abort) this.#aborts.delete(job.id);
            };
          },
        }),
      );
    } finally {
      this.running--;
    }
  }

  abortAttempt(id: string, reason: unknown): boolean {
    const abort = this.#aborts.get(id);
    if (abort !== undefined) {
      abort(reason);
      return true;
    }
    const now = Date.now();
    for (const [old, { at }] of this.#cancelledAhead) {
      if (at > now - 60_000 && this.#cancelledAhead.size < 10_000) break;
      this.#cancelledAhead.delete(old);
    }
    this.#cancelledAhead.set(id, { reason, at: now });
    return false;
  }

  report(job: RunnableJob, outcome: AttemptOutcome, nextRunAt?: number): void {
    const attempt = job.fails + 1;
    switch (outcome.type) {
      case 'completed':
        // The hot path: no payload is built when nobody listens.
        this.counts.completed++;
        if (this.#host.listenerCount('job:completed') > 0) {
          this.#host.emit('job:completed', { job: refOf(job), attempt, durationMs: outcome.durationMs });
        }
        return;
      case 'retry':
        this.counts.failed++;
        this.#host.emit('job:failed', {
          job: refOf(job),
          attempt,
          error: outcome.error,
          nextRunAt: new Date(nextRunAt ?? Date.now() + outcome.delayMs),
          durationMs: outcome.durationMs ?? 0,
        });
        this.#warnUnheard(job, attempt, outcome.error, 'will retry');
        return;
      case 'dead': {
        this.counts.failed++;
        this.counts.dead++;
        const ref = refOf(job);
        this.#host.emit('job:failed', {
          job: ref,
          attempt,
          error: outcome.error,
          nextRunAt: undefined,
          durationMs: outcome.durationMs ?? 0,
        });
        this.#host.emit('job:dead', { job: ref, attempt, error: outcome.error, reason: outcome.reason });
        this.#warnUnheard(job, attempt, outcome.error, `dead (${outcome.reason})`);
        return;
      }
      case 'aborted':
        return;
    }
  }

  /** A failure nobody listens to would be silent: print it. */
  #warnUnheard(job: RunnableJob, attempt: number, error: unknown, what: string): void {
    if (this.#host.listenerCount('job:failed') > 0 || this.#host.listenerCount('job:dead') > 0) return;
    this.#host.options.logger.warn(
      { scope: 'jobs', queue: job.queue, handler: job.handler, jobId: job.id, attempt, error },
      `${job.handler} ${job.id} attempt ${attempt} failed, ${what}: ${errorMessage(error)}`,
    );
  }
}
