/**
 * The attempts the `memory://` adapter runs in this process: how many run, in
 * all and per handler (for `concurrency` and `maxConcurrency`), the signal
 * they share, and the wait for them at `stop()`, which aborts that signal
 * once the timeout passes.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { settlesWithin } from '@shardwork/core/backend';

/** See the module documentation. */
export class RunningAttempts {
  #abort = new AbortController();
  readonly #attempts = new Set<Promise<void>>();
  readonly #byHandler = new Map<string, number>();
  #running = 0;

  /** Attempts running now (those whose outcome is being applied no longer count). */
  get running(): number {
    return this.#running;
  }

  /** Whether no attempt is in flight, its outcome applied or not. */
  get idle(): boolean {
    return this.#attempts.size === 0;
  }

  /** Attempts of `handler` running now. */
  runningOf(handler: string): number {
    return this.#byHandler.get(handler) ?? 0;
  }

  /** A fresh signal for the attempts of a new `start()`. */
  renew(): void {
    this.#abort = new AbortController();
    // Every running attempt listens on it.
    setMaxListeners(0, this.#abort.signal);
  }

  /**
   * Run an attempt of `handler`, counted until its outcome is handed to
   * `settle`. `failed` gets what `run` or `settle` throws; `after` is called
   * last, once the attempt no longer counts.
   */
  run<O>(
    handler: string,
    run: (signal: AbortSignal) => Promise<O>,
    settle: (outcome: O) => void,
    failed: (error: unknown) => void,
    after: () => void,
  ): void {
    this.#running++;
    this.#byHandler.set(handler, (this.#byHandler.get(handler) ?? 0) + 1);
    const attempt: Promise<void> = run(this.#abort.signal)
      .then((outcome) => {
        this.#running--;
        this.#byHandler.set(handler, (this.#byHandler.get(handler) ?? 1) - 1);
        settle(outcome);
      })
      .catch(failed)
      .finally(() => {
        this.#attempts.delete(attempt);
        after();
      });
    this.#attempts.add(attempt);
  }

  /** Wait up to `timeoutMs` for the attempts in flight, then abort them; returns how many were aborted. */
  async drain(timeoutMs: number): Promise<number> {
    if (await settlesWithin(Promise.all([...this.#attempts]), timeoutMs)) return 0;
    const aborted = this.#running;
    this.#abort.abort();
    // Aborted attempts resolve at once (runAttempt does not wait for a handler that ignores its signal).
    await Promise.all([...this.#attempts]);
    return aborted;
  }
}
