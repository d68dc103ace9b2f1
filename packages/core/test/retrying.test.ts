import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NonRetryableError } from '../src/errors.js';
import { backoffDelays, type RetryInfo, retrying } from '../src/retrying.js';
import { useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

/** An attempt function failing `failures` times, recording when each attempt began (fake ms). */
function flaky(failures: number, error: () => unknown = () => new Error('down')) {
  const began: number[] = [];
  const fn = async (attempt: number): Promise<string> => {
    began.push(performance.now());
    if (attempt <= failures) throw error();
    return `ok after ${attempt}`;
  };
  return { fn, began };
}

describe('retrying', () => {
  it('waits initialMs × factor^(n−1) between attempts, capped at maxMs, and resolves with the value', async () => {
    const { fn, began } = flaky(5);
    const start = performance.now();
    const retries: RetryInfo[] = [];
    const done = retrying(fn, {
      backoff: { initialMs: 50, maxMs: 300 },
      onRetry: (_error, info) => retries.push(info),
    });
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(done).resolves.toBe('ok after 6');
    expect(began.map((t) => t - start)).toEqual([0, 50, 150, 350, 650, 950]);
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 50],
      [2, 100],
      [3, 200],
      [4, 300],
      [5, 300],
    ]);
  });

  it('rejects at once with a failure that is not retryable (by default isRetryableError)', async () => {
    const { fn, began } = flaky(3, () => new NonRetryableError('bad input'));
    await expect(retrying(fn, { backoff: { initialMs: 10 } })).rejects.toThrow('bad input');
    expect(began).toHaveLength(1);
    const custom = flaky(3, () => new Error('refused'));
    const rejected = retrying(custom.fn, { backoff: { initialMs: 10 }, retryable: (_e, attempt) => attempt < 2 });
    const caught = rejected.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await caught).toEqual(new Error('refused'));
    expect(custom.began).toHaveLength(2);
  });

  it('stops on its signal: no attempt after an abort, a wait cut short, rejecting with the reason', async () => {
    const controller = new AbortController();
    const { fn, began } = flaky(10);
    const start = performance.now();
    const caught = retrying(fn, { backoff: { initialMs: 1000 }, signal: controller.signal }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(300);
    controller.abort(new Error('stopping'));
    expect(await caught).toEqual(new Error('stopping'));
    expect(performance.now() - start).toBe(300);
    expect(began).toHaveLength(1);
    const none = flaky(0);
    await expect(retrying(none.fn, { backoff: { initialMs: 1 }, signal: controller.signal })).rejects.toThrow(
      'stopping',
    );
    expect(none.began).toEqual([]);
  });

  it('hands the attempt its number and the signal', async () => {
    const signal = new AbortController().signal;
    const seen: [number, AbortSignal | undefined][] = [];
    const done = retrying(
      async (attempt, s) => {
        seen.push([attempt, s]);
        if (attempt < 2) throw new Error('once');
        return attempt;
      },
      { backoff: { initialMs: 1 }, signal },
    );
    await vi.advanceTimersByTimeAsync(10);
    await expect(done).resolves.toBe(2);
    expect(seen).toEqual([
      [1, signal],
      [2, signal],
    ]);
  });

  it('gives up before a wait that would end past deadlineMs, with giveUp’s error', async () => {
    const { fn, began } = flaky(10);
    const start = performance.now();
    const caught = retrying(fn, {
      backoff: { initialMs: 100 },
      deadlineMs: 500,
      giveUp: (error, info) => new Error(`gave up (${info.reason}) after ${info.attempt}: ${(error as Error).message}`),
    }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    // Attempts at 0, 100, 300; the next wait (400 ms) would end at 700.
    expect(began.map((t) => t - start)).toEqual([0, 100, 300]);
    expect(await caught).toEqual(new Error('gave up (deadline) after 3: down'));
  });

  it('gives up after maxAttempts, or when a backoff function says null (or something that is no delay)', async () => {
    const capped = flaky(10);
    const caught = retrying(capped.fn, { backoff: { initialMs: 10, maxAttempts: 3 } }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await caught).toEqual(new Error('down'));
    expect(capped.began).toHaveLength(3);
    for (const answer of [null, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const f = flaky(10);
      const reasons: string[] = [];
      const r = retrying(f.fn, {
        backoff: (attempt) => (attempt < 2 ? 5 : answer),
        giveUp: (error, info) => {
          reasons.push(info.reason);
          return error;
        },
      }).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(100);
      expect(await r).toEqual(new Error('down'));
      expect(f.began).toHaveLength(2);
      expect(reasons).toEqual(['attempts']);
    }
  });

  it('exposes the backoff formula for loops that are not a plain retry', () => {
    const delays = backoffDelays({ initialMs: 50, maxMs: 2000 });
    expect([1, 2, 3, 6, 7, 30].map((n) => delays(n, undefined))).toEqual([50, 100, 200, 1600, 2000, 2000]);
    expect(backoffDelays({ initialMs: 25, factor: 3, maxAttempts: 2 })(1, undefined)).toBe(25);
    expect(backoffDelays({ initialMs: 25, factor: 3, maxAttempts: 2 })(2, undefined)).toBeNull();
  });
});
