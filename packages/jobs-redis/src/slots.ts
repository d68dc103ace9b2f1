/**
 * The process's `concurrency`: slots shared by the consumers of every owned
 * partition. A consumer takes as many as are free (up to its batch size)
 * before a fetch, so it never takes more jobs than it can start at once.
 *
 * @module
 */

/** See the module documentation. */
export class Slots {
  #free: number;
  readonly #waiters = new Set<() => void>();

  constructor(size: number) {
    this.#free = size;
  }

  /** Slots free now. */
  get free(): number {
    return this.#free;
  }

  /** Take between 1 and `max` slots, waiting until one is free; 0 when `signal` aborts first. */
  async take(max: number, signal: AbortSignal): Promise<number> {
    while (this.#free === 0) {
      if (signal.aborted) return 0;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (signal.aborted) return 0;
    const n = Math.min(max, this.#free);
    this.#free -= n;
    return n;
  }

  /** Give back `n` slots. */
  give(n: number): void {
    if (n <= 0) return;
    this.#free += n;
    for (const waiter of [...this.#waiters]) waiter();
  }
}
