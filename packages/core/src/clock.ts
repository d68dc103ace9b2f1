/**
 * Monotonic time. Everything that decides ownership (lease deadlines, expiry)
 * reads a {@link Clock}, never `Date.now()`, so wall-clock jumps cannot extend
 * an ownership and tests can drive time.
 *
 * @module
 */

/** A monotonic millisecond clock. */
export interface Clock {
  /** Milliseconds on a monotonic scale with an arbitrary origin. */
  now(): number;
}

/**
 * The default clock: `performance.now()`, read on every call (not captured), so
 * `vi.useFakeTimers({ toFake: [..., 'performance'] })` drives it in tests.
 */
export const systemClock: Clock = { now: () => performance.now() };

/** The longest delay a Node.js timer honours; longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Resolve after `ms`, or reject with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Whether `promise` settles within `ms` (a rejection counts as settled). The
 * timer is cleared either way; the promise itself is not cancelled.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = await Promise.race([
    promise.then(
      () => false,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), ms);
    }),
  ]);
  clearTimeout(timer);
  return !timedOut;
}
