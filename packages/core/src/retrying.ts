/**
 * One retry loop for every place that calls something until it works: a
 * registration while the backend is down, a handler stage under its retry
 * policy, a write while a queue's server restarts. Each caller says which
 * failures are worth another attempt, how long to wait between attempts,
 * when to give up (attempts, a deadline, an `AbortSignal`) and what to report;
 * the loop itself, and its order of checks, lives here once.
 *
 * ```ts
 * const reply = await retrying(() => store.call('enqueue', args), {
 *   retryable: (error) => error instanceof QueueUnavailableError,
 *   backoff: { initialMs: 50, maxMs: 1000 },
 *   deadlineMs: 10_000,
 *   signal: closed.signal,
 *   onRetry: (error, { attempt }) => attempt === 1 && report(error), // the first failure of an outage
 * });
 * ```
 *
 * @module
 */

import { type Clock, sleep, systemClock } from './clock.js';
import { isRetryableError } from './errors.js';

/**
 * Exponential backoff: the wait after failed attempt `n` (1-based) is
 * `min(maxMs, initialMs × factor^(n − 1))`.
 */
export interface Backoff {
  /** Wait after the first failure, ms. */
  readonly initialMs: number;
  /**
   * Factor from one wait to the next (≥ 1).
   * @defaultValue 2
   */
  readonly factor?: number;
  /**
   * Longest wait, ms.
   * @defaultValue unbounded
   */
  readonly maxMs?: number;
  /**
   * Most attempts in all, the first included.
   * @defaultValue unbounded
   */
  readonly maxAttempts?: number | undefined;
}

/**
 * The wait after failed attempt `attempt` (1-based) with `error`, ms, or
 * `null` to give up (as do a negative or non-finite number). The shape of a
 * compiled retry policy (`compileRetry`), so a worker's or a job's policy fits.
 */
export type BackoffFunction = (attempt: number, error: unknown) => number | null;

/** What {@link RetryingOptions.onRetry} is told of a failure that will be retried. */
export interface RetryInfo {
  /** The attempt that failed, 1-based. */
  readonly attempt: number;
  /** The wait before the next attempt, ms. */
  readonly delayMs: number;
  /** Time since the first attempt began, ms. */
  readonly elapsedMs: number;
}

/** What {@link RetryingOptions.giveUp} is told when attempts or time run out. */
export interface GiveUpInfo {
  /** The last attempt, 1-based. */
  readonly attempt: number;
  /** Time since the first attempt began, ms. */
  readonly elapsedMs: number;
  /** `attempts`: the backoff allows no more; `deadline`: the next attempt would begin after `deadlineMs`. */
  readonly reason: 'attempts' | 'deadline';
}

/** How {@link retrying} retries. */
export interface RetryingOptions {
  /**
   * Whether a failure is worth another attempt; any other failure rejects at
   * once, even when `signal` has aborted meanwhile.
   * @defaultValue {@link isRetryableError}
   */
  readonly retryable?: (error: unknown, attempt: number) => boolean;
  /**
   * Stops retrying: no attempt begins and no wait goes on once it aborts,
   * and `retrying` rejects with its reason. An attempt in flight is not
   * interrupted, unless it uses the signal it is given.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Give up when the next attempt would begin more than this many ms after
   * the first one began (a wait never runs past it only to fail).
   * @defaultValue no deadline
   */
  readonly deadlineMs?: number | undefined;
  /** The wait between attempts. */
  readonly backoff: Backoff | BackoffFunction;
  /**
   * Told of each failure that will be retried, before its wait: report it
   * here (every one, or only `attempt === 1`, the first of an outage).
   */
  readonly onRetry?: (error: unknown, info: RetryInfo) => void;
  /**
   * The error to reject with when attempts or the deadline run out.
   * @defaultValue the last failure
   */
  readonly giveUp?: (error: unknown, info: GiveUpInfo) => unknown;
  /**
   * Measures the deadline.
   * @defaultValue {@link systemClock}
   */
  readonly clock?: Clock;
}

/** The wait function of a {@link Backoff}. */
export function backoffDelays(backoff: Backoff): BackoffFunction {
  const { initialMs, factor = 2, maxMs = Number.POSITIVE_INFINITY, maxAttempts } = backoff;
  return (attempt) => {
    if (maxAttempts !== undefined && attempt >= maxAttempts) return null;
    return Math.min(maxMs, initialMs * factor ** (attempt - 1));
  };
}

/**
 * Call `fn` until it resolves, and resolve with its value. After a failure,
 * in this order: a failure that is not `retryable` rejects; an aborted
 * `signal` rejects with its reason; no further wait from `backoff`, or a
 * wait that would end past `deadlineMs`, rejects with `giveUp`'s error (the
 * failure itself by default); otherwise `onRetry` is told and the wait
 * begins (an abort ends it and rejects with the signal's reason).
 *
 * @param fn - one attempt; gets its number (1-based) and the signal.
 */
export async function retrying<T>(
  fn: (attempt: number, signal: AbortSignal | undefined) => T | Promise<T>,
  options: RetryingOptions,
): Promise<T> {
  const { signal, deadlineMs, onRetry, giveUp } = options;
  const retryable = options.retryable ?? isRetryableError;
  const delays = typeof options.backoff === 'function' ? options.backoff : backoffDelays(options.backoff);
  const clock = options.clock ?? systemClock;
  const began = clock.now();
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt, signal);
    } catch (error) {
      if (!retryable(error, attempt)) throw error;
      signal?.throwIfAborted();
      const delayMs = delays(attempt, error);
      const elapsedMs = clock.now() - began;
      if (delayMs === null || !Number.isFinite(delayMs) || delayMs < 0) {
        throw giveUp === undefined ? error : giveUp(error, { attempt, elapsedMs, reason: 'attempts' });
      }
      if (deadlineMs !== undefined && elapsedMs + delayMs > deadlineMs) {
        throw giveUp === undefined ? error : giveUp(error, { attempt, elapsedMs, reason: 'deadline' });
      }
      onRetry?.(error, { attempt, delayMs, elapsedMs });
      await sleep(delayMs, signal);
    }
  }
}
