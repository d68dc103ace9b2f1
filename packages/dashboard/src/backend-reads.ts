/**
 * Reading a backend for the pages: each read under a deadline, a pending read
 * shared by the polls that come while it runs, and a failure described for
 * the banner without the backend's credentials.
 *
 * @module
 */

import type { BackendProblem } from './views.js';

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Settle with `promise`, or reject after `ms` (the read itself is left to finish or fail on its own). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** The banner of a failed read of `backend`, whose data shown was read at `dataFrom`. */
export function problemOf(backend: string, error: unknown, dataFrom: number | undefined): BackendProblem {
  return { backend, reason: error instanceof Error ? error.message : String(error), dataFrom };
}

/** Show a backend URL without credentials. */
export function describeBackend(kind: string, source: unknown): string {
  if (typeof source !== 'string') return `${kind} backend`;
  try {
    const url = new URL(source);
    url.username = '';
    url.password = '';
    url.search = '';
    const text = url.toString();
    return `${kind} at ${url.pathname === '/' ? text.slice(0, -1) : text}`;
  } catch {
    return `${kind} backend`;
  }
}

/**
 * Runs reads under a deadline, one pending read per key: a read still pending
 * from an earlier poll is waited for again rather than started anew, so that
 * a stalled backend does not collect one more read per poll.
 */
export class DeadlineReads {
  readonly #timeoutMs: number;
  readonly #pending = new Map<string, Promise<unknown>>();

  /** @param timeoutMs - how long one caller waits for a read. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Run `start` under the deadline, unless the read `key` is still pending: then wait for that one. */
  read<T>(key: string, start: () => Promise<T>): Promise<T> {
    let raw = this.#pending.get(key) as Promise<T> | undefined;
    if (raw === undefined) {
      const started = start();
      const clear = (): void => {
        if (this.#pending.get(key) === started) this.#pending.delete(key);
      };
      started.then(clear, clear);
      this.#pending.set(key, started);
      raw = started;
    }
    return withTimeout(raw, this.#timeoutMs);
  }
}
