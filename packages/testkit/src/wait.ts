/**
 * Waiting in tests against real servers: a plain sleep, and `eventually`,
 * which retries an assertion until it passes or a deadline (wall clock) is
 * reached. Bounds are generous on purpose: speed is measured in bench/.
 *
 * @module
 */

/** Resolve after `ms` milliseconds. */
import { sleep } from '@shardwork/core';

export { sleep };

/**
 * Call `check` until it returns without throwing (its result is returned), or
 * rethrow its last error once `withinMs` have passed.
 */
export async function eventually<T>(check: () => T | Promise<T>, withinMs: number, stepMs = 25): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(stepMs);
  }
}

/** Poll `check` every 10 ms until it is true; fail naming `what` once `withinMs` have passed. */
export async function until(check: () => boolean | Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const began = Date.now();
  while (!(await check())) {
    if (Date.now() - began > withinMs) throw new Error(`not within ${withinMs} ms: ${what}`);
    await sleep(10);
  }
}
