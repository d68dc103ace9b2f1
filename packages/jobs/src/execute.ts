/**
 * One attempt of one job: the context, the middleware chain around the
 * handler, the timeout, and the decision that follows (completed, retry after a
 * delay, dead). Shared by every adapter through `AdapterRuntime.run`, so retry
 * semantics cannot drift between them.
 *
 * @module
 */

import { isRetryableError, NotOwnerError } from '@shardwork/core';
import type { AttemptOutcome, RunExtras, RunnableJob } from './adapter.js';
import { valueJson } from './args.js';
import {
  InvalidJobError,
  InvalidJobResultError,
  JobAbortedError,
  JobTimeoutError,
  UnsupportedFeatureError,
} from './errors.js';
import type { JobContext, Middleware } from './job.js';
import type { CompiledRegistration } from './options.js';

/** Chain middleware around `last`, koa-style. */
export function compose(middleware: readonly Middleware[], ctx: JobContext, last: () => Promise<void>): Promise<void> {
  let index = -1;
  const dispatch = async (i: number): Promise<void> => {
    if (i <= index) throw new Error('next() called more than once in one middleware');
    index = i;
    const fn = middleware[i];
    if (fn === undefined) return last();
    await fn(ctx, () => dispatch(i + 1));
  };
  return dispatch(0);
}

/** Decide what a failed attempt leads to. */
export function failureOutcome(
  reg: CompiledRegistration,
  fails: number,
  error: unknown,
): Extract<AttemptOutcome, { type: 'retry' | 'dead' }> {
  if (!isRetryableError(error)) return { type: 'dead', error, reason: 'non-retryable' };
  if (fails >= reg.maxFails) return { type: 'dead', error, reason: 'max-fails' };
  let delay: number | null;
  try {
    delay = reg.backoff(fails, error);
  } catch (backoffError) {
    return { type: 'dead', error: backoffError, reason: 'backoff-gave-up' };
  }
  if (delay === null || typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
    return { type: 'dead', error, reason: 'backoff-gave-up' };
  }
  return { type: 'retry', error, delayMs: delay };
}

/** Largest progress value, as JSON bytes. */
export const MAX_PROGRESS_BYTES = 4096;

/** What the runtime gives one attempt besides the job. */
export interface AttemptHooks {
  /** The attempt begins (after the checks, before middleware). */
  onStart(): void;
  /** Largest result, as JSON bytes. */
  readonly maxResultBytes: number;
  /** Least time between two stores of progress, ms. */
  readonly progressIntervalMs: number;
  /** Progress was stored (to emit `job:progress`). */
  onProgress(value: unknown): void;
  /**
   * The attempt can be aborted from outside by calling `abort(reason)` (a
   * cancel); returns the function that forgets it once the attempt settles.
   */
  abortable(abort: (reason: unknown) => void): () => void;
}

/** Check a value given to `ctx.progress()`: its JSON text, or a thrown `InvalidJobError`. */
export function progressJson(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      throw new InvalidJobError('progress', `must be a number in [0, 100] or a small JSON object (got ${value})`);
    }
    return String(value);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidJobError('progress', `must be a number in [0, 100] or a small JSON object (got ${String(value)})`);
  }
  const checked = valueJson(value, MAX_PROGRESS_BYTES, 'progress');
  if ('problem' in checked) throw new InvalidJobError('progress', checked.problem.slice('progress '.length));
  return checked.json;
}

/**
 * Merge progress calls closer together than the interval: the first is stored
 * at once, later ones when the interval ends (the last value wins).
 */
class ProgressThrottle {
  #lastAt = Number.NEGATIVE_INFINITY;
  #pending: { json: string; value: unknown } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly store: (json: string, value: unknown) => void,
  ) {}

  push(json: string, value: unknown): void {
    this.#pending = { json, value };
    if (this.#timer !== undefined) return;
    const wait = this.#lastAt + this.intervalMs - performance.now();
    if (wait <= 0) this.flush();
    else {
      this.#timer = setTimeout(() => this.flush(), wait);
      this.#timer.unref?.();
    }
  }

  /** Store the pending value now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.#lastAt = performance.now();
    this.store(pending.json, pending.value);
  }

  /** Drop the pending value (the attempt ended otherwise). */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
  }
}

/**
 * Run one attempt of `job` with `reg`'s handler behind `middleware`. Never
 * rejects; see `AdapterRuntime.run` for when it resolves.
 */
export async function runAttempt(
  reg: CompiledRegistration,
  middleware: readonly Middleware[],
  job: RunnableJob,
  extras: RunExtras,
  hooks: AttemptHooks,
): Promise<AttemptOutcome> {
  const external = extras.signal;
  const attempt = job.fails + 1;
  if (external?.aborted) {
    return { type: 'aborted', error: external.reason ?? new JobAbortedError('aborted before it started') };
  }
  // A job fetched ahead and started after its partition was lost (a paused process resumes its
  // continuations before its timers): a zombie must not start it; the next owner runs it.
  if (extras.owned?.() === false) {
    return { type: 'aborted', error: new JobAbortedError('ownership was lost before it started') };
  }
  // The attempt's AbortController is made only when the handler reads ctx.signal:
  // most handlers never do, and one per job is a large part of a no-op job's cost.
  let controller: AbortController | undefined;
  let abortReason: unknown;
  let aborted = false;
  const abort = (reason: unknown): void => {
    if (aborted) return;
    aborted = true;
    abortReason = reason;
    controller?.abort(reason);
  };
  let settle: (outcome: AttemptOutcome) => void = () => undefined;
  const finished = new Promise<AttemptOutcome>((resolve) => {
    settle = resolve;
  });
  const abortWith = (reason: unknown): void => {
    abort(reason);
    settle({ type: 'aborted', error: reason });
  };
  const abortFromOutside = (): void => abortWith(external?.reason ?? new JobAbortedError('stopped'));
  if (external !== undefined) onAbort(external, abortFromOutside);
  const forget = hooks.abortable(abortWith);
  // Made on the first ctx.progress(): most handlers never report any.
  let progress: ProgressThrottle | undefined;
  let began = performance.now();
  /**
   * How a failed attempt ends. On an adapter that owns what it runs
   * (`extras.owned`), lost ownership (a `NotOwnerError` from `assertOwned()`,
   * or any failure once ownership is gone) is not a failure of the job: it
   * counts no attempt and records nothing, and the job runs again under the
   * next owner (JOBS.md).
   */
  const ownership = extras.owned;
  const failed = (error: unknown): AttemptOutcome =>
    ownership !== undefined && (error instanceof NotOwnerError || !ownership())
      ? { type: 'aborted', error }
      : { ...failureOutcome(reg, attempt, error), durationMs: performance.now() - began };
  const timer =
    reg.timeoutMs > 0
      ? setTimeout(() => {
          const error = new JobTimeoutError(reg.timeoutMs);
          abort(error);
          settle(failed(error));
        }, reg.timeoutMs)
      : undefined;
  const owned = (): boolean => !aborted && (extras.owned?.() ?? true);
  const ctx: JobContext = {
    id: job.id,
    handler: job.handler,
    args: job.args,
    queue: job.queue,
    key: job.key,
    attempt,
    get enqueuedAt() {
      return new Date(job.enqueuedAt);
    },
    get scheduledAt() {
      return new Date(job.runAt);
    },
    get signal() {
      if (controller === undefined) {
        controller = new AbortController();
        if (aborted) controller.abort(abortReason);
      }
      return controller.signal;
    },
    partition: extras.partition,
    token: extras.token,
    get owned() {
      return owned();
    },
    assertOwned() {
      if (owned()) return;
      if (aborted) throw abortReason;
      throw new NotOwnerError(extras.partition ?? -1, extras.token ?? -1, 'the partition lease is no longer held');
    },
    data: {},
    progress(value) {
      const json = progressJson(value);
      progress ??= new ProgressThrottle(hooks.progressIntervalMs, (text, v) => {
        if (aborted) return;
        extras.progress?.(text);
        hooks.onProgress(v);
      });
      progress.push(json, value);
    },
    transaction(work) {
      if (extras.transaction === undefined) {
        return Promise.reject(
          new UnsupportedFeatureError(
            'this',
            'transaction',
            'ctx.transaction needs an adapter with transactions: use postgres://',
          ),
        );
      }
      return extras.transaction(work);
    },
  };
  began = performance.now();
  hooks.onStart();
  // What the handler returned (middleware that finishes a job without it leaves undefined).
  let returned: unknown;
  const handler = async (): Promise<void> => {
    returned = await reg.handler(ctx.args, ctx);
  };
  const run = middleware.length === 0 ? handler() : compose(middleware, ctx, handler);
  run.then(
    () => {
      if (aborted) return;
      const result = valueJson(returned, hooks.maxResultBytes, 'result');
      if ('problem' in result) {
        settle(failed(new InvalidJobResultError(reg.name, `is not storable: ${result.problem}`)));
        return;
      }
      progress?.flush();
      settle({ type: 'completed', durationMs: performance.now() - began, result: result.json });
    },
    (error: unknown) => {
      // A throw caused by our own abort is the abort's outcome, already settled.
      if (aborted) return;
      settle(failed(error));
    },
  );
  try {
    return await finished;
  } finally {
    clearTimeout(timer);
    progress?.cancel();
    forget();
    if (external !== undefined) offAbort(external, abortFromOutside);
  }
}

/**
 * One `abort` listener per signal, fanning out to the attempts registered on
 * it: adding and removing an EventTarget listener for every attempt costs more
 * than a no-op job itself.
 */
const abortWatchers = new WeakMap<AbortSignal, Set<() => void>>();

function onAbort(signal: AbortSignal, fn: () => void): void {
  let set = abortWatchers.get(signal);
  if (set === undefined) {
    const created = new Set<() => void>();
    set = created;
    abortWatchers.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        for (const watcher of [...created]) watcher();
        created.clear();
      },
      { once: true },
    );
  }
  set.add(fn);
}

function offAbort(signal: AbortSignal, fn: () => void): void {
  abortWatchers.get(signal)?.delete(fn);
}
