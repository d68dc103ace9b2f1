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
import { JobAbortedError, JobTimeoutError } from './errors.js';
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
export function failureOutcome(reg: CompiledRegistration, fails: number, error: unknown): AttemptOutcome {
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

/**
 * Run one attempt of `job` with `reg`'s handler behind `middleware`. Never
 * rejects; see `AdapterRuntime.run` for when it resolves.
 */
export async function runAttempt(
  reg: CompiledRegistration,
  middleware: readonly Middleware[],
  job: RunnableJob,
  extras: RunExtras,
  onStart: () => void,
): Promise<AttemptOutcome> {
  const controller = new AbortController();
  const external = extras.signal;
  const attempt = job.fails + 1;
  let timedOut = false;
  let settle: (outcome: AttemptOutcome) => void = () => undefined;
  const finished = new Promise<AttemptOutcome>((resolve) => {
    settle = resolve;
  });
  const abortFromOutside = (): void => {
    const reason = external?.reason ?? new JobAbortedError('stopped');
    controller.abort(reason);
    settle({ type: 'aborted', error: reason });
  };
  if (external?.aborted) {
    return { type: 'aborted', error: external.reason ?? new JobAbortedError('aborted before it started') };
  }
  external?.addEventListener('abort', abortFromOutside, { once: true });
  const timer =
    reg.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          const error = new JobTimeoutError(reg.timeoutMs);
          controller.abort(error);
          settle(failureOutcome(reg, attempt, error));
        }, reg.timeoutMs)
      : undefined;
  const owned = (): boolean => !controller.signal.aborted && (extras.owned?.() ?? true);
  const ctx: JobContext = {
    id: job.id,
    handler: job.handler,
    args: job.args,
    queue: job.queue,
    key: job.key,
    attempt,
    enqueuedAt: new Date(job.enqueuedAt),
    scheduledAt: new Date(job.runAt),
    signal: controller.signal,
    partition: extras.partition,
    token: extras.token,
    get owned() {
      return owned();
    },
    assertOwned() {
      if (owned()) return;
      if (controller.signal.aborted) throw controller.signal.reason;
      throw new NotOwnerError(extras.partition ?? -1, extras.token ?? -1, 'the partition lease is no longer held');
    },
    data: {},
  };
  const began = performance.now();
  onStart();
  compose(middleware, ctx, async () => {
    await reg.handler(ctx.args, ctx);
  }).then(
    () => settle({ type: 'completed', durationMs: performance.now() - began }),
    (error: unknown) => {
      // A throw caused by our own abort is the abort's outcome, already settled.
      if (controller.signal.aborted) return;
      settle(failureOutcome(reg, attempt, error));
    },
  );
  try {
    return await finished;
  } finally {
    clearTimeout(timer);
    external?.removeEventListener('abort', abortFromOutside);
    if (!timedOut && !controller.signal.aborted) controller.abort(new JobAbortedError('the attempt has ended'));
  }
}
