/**
 * Following and steering one job by id, over any adapter that can: look it up
 * (`getJob`), wait for its result (`waitFor`) and cancel it (`cancel`). The
 * queue's methods call these; an adapter that lacks the method behind one is
 * refused with `UnsupportedFeatureError`, naming the adapter that has it.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import type { CancelResult, JobAdapter, JobChange, JobOutcome } from './adapter.js';
import { checkArgs, type JobArgs } from './args.js';
import {
  InvalidJobError,
  JobCancelledError,
  JobDeadError,
  type JobFeature,
  JobNotFoundError,
  JobStateError,
  JobWaitTimeoutError,
  UnsupportedFeatureError,
} from './errors.js';
import type { JobDetails } from './job.js';
import type { CompiledRegistration } from './options.js';

/** Options of `waitFor` and `performAndWait`. */
export interface WaitOptions {
  /**
   * Give up after this many ms with `JobWaitTimeoutError` (the job goes on).
   * @defaultValue no bound
   */
  readonly timeoutMs?: number;
  /** Give up when this signal aborts, with its reason (the job goes on). */
  readonly signal?: AbortSignal;
}

/** Options of `cancel`. */
export interface CancelOptions {
  /** Why, kept with the cancelled job (`error.message`) and given to `JobCancelledError`. At most 1,000 characters. */
  readonly reason?: string;
  /**
   * Cancel the job only if it has not started: a running job is left alone
   * and the result says so (`{ state: 'running', cancelled: false }`). For
   * bulk clean-ups (`shardwork jobs purge`) that must not abort work in flight.
   * @defaultValue false (a running job's attempt is aborted)
   */
  readonly waitingOnly?: boolean;
}

/** A job id as `getJob`, `waitFor` and `cancel` take it. */
const JOB_ID = /^[\x21-\x7e]{1,200}$/;

/** Refuse anything but a job id, naming `path`. */
export function checkJobId(id: unknown, path = 'id'): asserts id is string {
  if (typeof id !== 'string' || !JOB_ID.test(id)) {
    throw new InvalidJobError(
      path,
      `must be a job id: 1–200 printable ASCII characters without spaces (got ${JSON.stringify(id) ?? String(id)})`,
    );
  }
}

/** The adapter's optional method, or `UnsupportedFeatureError` naming what it cannot do and where to go. */
export function needs<
  M extends 'getJob' | 'cancel' | 'awaitFinished' | 'modify' | 'pauseQueue' | 'unpauseQueue' | 'throughput',
>(adapter: JobAdapter, method: M, feature: JobFeature, what: string): NonNullable<JobAdapter[M]> {
  const fn = adapter[method];
  if (typeof fn !== 'function') {
    throw new UnsupportedFeatureError(
      adapter.kind,
      feature,
      `it cannot ${what}; use memory:// in one process, or redis:// across processes`,
    );
  }
  return fn.bind(adapter) as NonNullable<JobAdapter[M]>;
}

/** `getJob`: the job with `maxFails` and `priority` from this process's registration where the store has none. */
export async function lookUp(
  adapter: JobAdapter,
  handlers: ReadonlyMap<string, CompiledRegistration>,
  id: string,
): Promise<JobDetails | undefined> {
  checkJobId(id);
  const job = await needs(adapter, 'getJob', 'lookup', 'look a job up by id')(id);
  if (job === undefined || (job.maxFails !== undefined && job.priority !== undefined)) return job;
  const reg = handlers.get(job.handler);
  return { ...job, maxFails: job.maxFails ?? reg?.maxFails, priority: job.priority ?? reg?.priority };
}

/** `waitFor`: the result of a completed job, or the error of a dead or cancelled one. */
export async function waitForJob(adapter: JobAdapter, id: string, options: WaitOptions): Promise<unknown> {
  checkJobId(id);
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
    throw new InvalidOptionsError('timeoutMs', timeoutMs, 'a number of ms ≥ 0');
  }
  if (signal !== undefined && typeof signal?.addEventListener !== 'function') {
    throw new InvalidOptionsError('signal', signal, 'an AbortSignal');
  }
  const awaitFinished = needs(adapter, 'awaitFinished', 'results', 'wait for a job');
  signal?.throwIfAborted();
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(new JobWaitTimeoutError(id, timeoutMs)), timeoutMs);
  try {
    const job = await awaitFinished(id, controller.signal);
    if (job === undefined) {
      throw new JobNotFoundError(
        id,
        'in the queue: never enqueued, or finished and no longer kept (see keepCompleted)',
      );
    }
    return outcomeOf(job);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** What `waitFor` gives for a finished job. */
export function outcomeOf(job: JobOutcome): unknown {
  if (job.state === 'completed') return job.result;
  if (job.state === 'dead') throw new JobDeadError(job.id, job.error);
  if (job.state === 'cancelled') throw new JobCancelledError(job.id, job.error?.message);
  throw new Error(`@shardwork/jobs: the adapter reported job ${job.id} finished in state ${job.state}`);
}

/** `cancel`: what the adapter found and did; `JobNotFoundError` for an unknown job. */
export async function cancelJob(adapter: JobAdapter, id: string, options: CancelOptions): Promise<CancelResult> {
  checkJobId(id);
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  const { reason, waitingOnly = false } = options;
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1000)) {
    throw new InvalidOptionsError('reason', reason, 'a string of at most 1,000 characters');
  }
  if (typeof waitingOnly !== 'boolean') throw new InvalidOptionsError('waitingOnly', waitingOnly, 'a boolean');
  const result = await needs(adapter, 'cancel', 'cancel', 'cancel a job')(id, reason, waitingOnly);
  if (result === undefined) throw new JobNotFoundError(id, 'to cancel: never enqueued, or finished and no longer kept');
  return result;
}

/** The states each change works on. */
const ALLOWED: Readonly<Record<JobChange['type'], readonly string[]>> = {
  promote: ['scheduled', 'retrying', 'ready'],
  reschedule: ['scheduled', 'retrying'],
  update: ['scheduled', 'ready', 'retrying'],
};

/** `promote`, `reschedule`, `update`: `JobNotFoundError` for an unknown job, `JobStateError` for a wrong state. */
export async function modifyJob(
  adapter: JobAdapter,
  id: string,
  change: JobChange['type'],
  value: unknown,
  maxArgsBytes: number,
): Promise<void> {
  checkJobId(id);
  let built: JobChange;
  if (change === 'promote') built = { type: 'promote' };
  else if (change === 'reschedule') {
    const at = value instanceof Date ? value.getTime() : value;
    if (typeof at !== 'number' || !Number.isFinite(at)) {
      throw new InvalidJobError('at', `must be a valid Date or a number of ms since the epoch (got ${String(value)})`);
    }
    built = { type: 'reschedule', at };
  } else {
    const args = (value as { args?: unknown } | undefined)?.args;
    if (typeof value !== 'object' || value === null || args === undefined) {
      throw new InvalidJobError('change', 'must be { args }');
    }
    built = { type: 'update', args: args as JobArgs, argsJson: checkArgs(args, maxArgsBytes) };
  }
  const result = await needs(adapter, 'modify', 'lookup', `${change} a job`)(id, built);
  if (result === undefined)
    throw new JobNotFoundError(id, `to ${change}: never enqueued, or finished and no longer kept`);
  if (!result.applied) throw new JobStateError(id, result.state, change, ALLOWED[change]);
}
