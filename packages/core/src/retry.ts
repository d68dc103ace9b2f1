/**
 * Retry policies with goworker's semantics: an initial interval, a backoff
 * coefficient, a maximum interval (10× the initial one unless set) and a
 * maximum number of attempts (0 = unlimited); or a custom function.
 *
 * @module
 */

import { MAX_TIMER_MS } from './clock.js';
import { InvalidOptionsError } from './errors.js';
import { backoffDelays } from './retrying.js';

/** Declarative retry policy. Every field is optional. */
export interface RetryOptions {
  /**
   * Delay before the second attempt, in ms.
   * @defaultValue 1000
   */
  readonly initialIntervalMs?: number;
  /**
   * Factor applied to the delay after each failed attempt (≥ 1).
   * @defaultValue 2
   */
  readonly backoffCoefficient?: number;
  /**
   * Upper bound of the delay in ms.
   * @defaultValue 10 × `initialIntervalMs`
   */
  readonly maximumIntervalMs?: number;
  /**
   * Total attempts including the first; `0` means unlimited (until the shard is
   * revoked or the worker stops).
   * @defaultValue 0
   */
  readonly maximumAttempts?: number;
}

/**
 * A custom policy: given the number of the attempt that just failed (1-based)
 * and its error, return the delay in ms before the next attempt, or `null` to
 * give up.
 */
export type RetryPolicyFunction = (attempt: number, error: unknown) => number | null;

/** A compiled policy: the same shape as {@link RetryPolicyFunction}. */
export type RetryPolicy = RetryPolicyFunction;

/**
 * Validate retry options (or accept a function) and return the policy.
 * @param option - the option's name in error messages, e.g. `retry` or `send_email.backoff`.
 */
export function compileRetry(input: RetryOptions | RetryPolicyFunction | undefined, option = 'retry'): RetryPolicy {
  if (typeof input === 'function') return input;
  const options = input ?? {};
  const initial = options.initialIntervalMs ?? 1000;
  const coefficient = options.backoffCoefficient ?? 2;
  const maximumAttempts = options.maximumAttempts ?? 0;
  if (!Number.isFinite(initial) || initial < 0 || initial > MAX_TIMER_MS) {
    throw new InvalidOptionsError(`${option}.initialIntervalMs`, initial, `a number from 0 to ${MAX_TIMER_MS}`);
  }
  if (!Number.isFinite(coefficient) || coefficient < 1) {
    throw new InvalidOptionsError(`${option}.backoffCoefficient`, coefficient, 'a finite number ≥ 1');
  }
  const maximum = options.maximumIntervalMs ?? Math.min(initial * 10, MAX_TIMER_MS);
  if (!Number.isFinite(maximum) || maximum < initial || maximum > MAX_TIMER_MS) {
    throw new InvalidOptionsError(
      `${option}.maximumIntervalMs`,
      maximum,
      `a number from initialIntervalMs (${initial}) to ${MAX_TIMER_MS}`,
    );
  }
  if (!Number.isInteger(maximumAttempts) || maximumAttempts < 0) {
    throw new InvalidOptionsError(`${option}.maximumAttempts`, maximumAttempts, 'an integer ≥ 0 (0 = unlimited)');
  }
  // The formula every retry loop of shardwork uses.
  return backoffDelays({
    initialMs: initial,
    factor: coefficient,
    maxMs: maximum,
    maxAttempts: maximumAttempts === 0 ? undefined : maximumAttempts,
  });
}
