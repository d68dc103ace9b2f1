/**
 * The process's `concurrency`: slots shared by the consumers of every owned
 * partition (of the Redis and PostgreSQL adapters). A consumer takes as many as are free (up to its batch size)
 * before a fetch, so it never takes more jobs than it can start at once.
 *
 * @module
 */

/** See the module documentation. */
export class Slots {
  #free: number;
  readonly #waiters = new Set<() => void>();
  #waking = false;

  constructor(size: number) {
    this.#free = size;
  }

  /** Slots free now. */
  get free(): number {
    return this.#free;
  }

  /**
   * Take between `min` and `max` slots, waiting until `min` are free; 0 when
   * `signal` aborts first. A `min` above 1 makes fetches fewer and larger
   * under load; keep it at most the prefetch, so that it is always reached
   * once the jobs fetched ahead have started.
   */
  async take(max: number, signal: AbortSignal, min = 1): Promise<number> {
    const least = Math.max(1, Math.min(min, max));
    while (this.#free < least) {
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

  /**
   * Give back `n` slots. Waiters wake on the next turn of the event loop, so
   * that the slots freed by a burst of completions are taken together by one
   * fetch instead of one fetch per slot.
   */
  give(n: number): void {
    if (n <= 0) return;
    this.#free += n;
    if (this.#waking || this.#waiters.size === 0) return;
    this.#waking = true;
    setImmediate(() => {
      this.#waking = false;
      for (const waiter of [...this.#waiters]) waiter();
    });
  }
}

/**
 * Runs fetched jobs at most `concurrency` at a time, in the order they were
 * fetched, across every owned partition. Fetching is bounded by `credits`
 * (running plus waiting to run), so the owners can fetch the next batch while
 * the last one runs instead of waiting a round trip for every refill.
 */
export class Dispatcher {
  /** Jobs this process may hold: running plus fetched and waiting. */
  readonly credits: Slots;
  readonly #limit: number;
  readonly #waiting: (() => Promise<void>)[] = [];
  #head = 0;
  #running = 0;

  constructor(concurrency: number, prefetch: number) {
    this.#limit = concurrency;
    this.credits = new Slots(concurrency + prefetch);
  }

  /** Run `attempt` once a slot is free; its credit is given back when it settles. */
  schedule(attempt: () => Promise<void>): void {
    if (this.#running < this.#limit) this.#start(attempt);
    else this.#waiting.push(attempt);
  }

  #start(attempt: () => Promise<void>): void {
    this.#running++;
    void attempt().finally(() => {
      this.#running--;
      this.credits.give(1);
      const next = this.#head < this.#waiting.length ? this.#waiting[this.#head++] : undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting.splice(0, this.#head);
        this.#head = 0;
      }
      if (next !== undefined) this.#start(next);
    });
  }
}
