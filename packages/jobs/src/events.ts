/**
 * The job queue's typed event map: one payload object per event, emitted
 * through core's guarded emitter (a throwing listener never breaks the queue).
 *
 * @module
 */

import type { InvalidRecordError } from '@shardwork/core';
import type { JobRef, JobState } from './job.js';

/** Lifecycle states of a job queue. */
export type JobQueueState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Why a job went to the dead set. */
export type DeadReason = 'max-fails' | 'non-retryable' | 'backoff-gave-up' | 'invalid-record';

/** Why `stop()` dropped a job (in-process adapters only: durable adapters keep them). */
export type DropReason = 'scheduled' | 'queued' | 'aborted';

/** Every event of a job queue. */
export interface JobQueueEventMap {
  /** The lifecycle state changed. */
  state: { readonly from: JobQueueState; readonly to: JobQueueState };
  /** The adapter accepted a job (not emitted for a duplicate of a unique job). */
  'job:enqueued': { readonly job: JobRef; readonly runAt: Date };
  /**
   * An attempt began, before middleware. `waitMs`: how long it waited since it
   * was due (ms, by this host's wall clock against the due time recorded by the
   * host that enqueued or retried it, so clock skew between hosts shows here).
   */
  'job:started': { readonly job: JobRef; readonly attempt: number; readonly waitMs: number };
  /** An attempt succeeded (or middleware finished it without the handler). */
  'job:completed': { readonly job: JobRef; readonly attempt: number; readonly durationMs: number };
  /**
   * An attempt failed. `nextRunAt` is the retry time, `undefined` when the job
   * goes to the dead set (a `job:dead` follows).
   */
  'job:failed': {
    readonly job: JobRef;
    readonly attempt: number;
    readonly error: unknown;
    readonly nextRunAt: Date | undefined;
    /** How long the attempt ran, ms (to its timeout for one that timed out). */
    readonly durationMs: number;
  };
  /** The job went to the dead set. */
  'job:dead': { readonly job: JobRef; readonly attempt: number; readonly error: unknown; readonly reason: DeadReason };
  /**
   * A job that was running on a replica that died, was fenced or was stopped
   * past its timeout was put back to run again.
   */
  'job:recovered': { readonly job: JobRef; readonly reason: string };
  /**
   * A job was enqueued for a handler that no live consumer of its queue
   * registers (as far as the adapter can tell: consumers publish their
   * handlers): it waits until one starts. Reported at most once a minute per
   * queue and handler; printed when nobody listens.
   */
  'job:unhandled': { readonly job: JobRef; readonly reason: string };
  /**
   * A job was cancelled (`cancel(id)`), in the process that cancelled it:
   * `state` is the state it was found in (`running` when its attempt was
   * aborted).
   */
  'job:cancelled': { readonly job: JobRef; readonly state: JobState; readonly reason: string | undefined };
  /** A running attempt reported progress (`ctx.progress`), in the process that runs it, at most once per `progressIntervalMs`. */
  'job:progress': { readonly job: JobRef; readonly attempt: number; readonly progress: unknown };
  /** `stop()` of an in-process queue dropped a job that had not run (or was aborted). */
  'job:dropped': { readonly job: JobRef; readonly reason: DropReason };
  /** A record in the store could not be parsed; it was moved aside and the queue carries on. */
  'record:invalid': { readonly error: InvalidRecordError; readonly repaired?: boolean };
  /** An infrastructure error, or a throwing listener. The queue carries on. */
  error: { readonly error: unknown };
}
