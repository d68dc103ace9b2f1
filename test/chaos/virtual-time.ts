/**
 * A minimal virtual clock for the in-process (memory) chaos run: it replaces
 * `setTimeout`/`setInterval` and `performance.now()` on the global object and
 * fires timers in time order as {@link VirtualTime.advance} moves time on,
 * letting promise chains settle after each timer.
 *
 * Why not `vi.useFakeTimers()`: it only works inside the vitest runner, and the
 * `pnpm chaos` CLI must replay a memory seed the same way as the test does.
 * The worker and the memory backend read `performance.now()` and the global
 * timer functions at call time, so swapping them is enough.
 *
 * @module
 */

interface VirtualTimer {
  readonly id: number;
  at: number;
  readonly seq: number;
  readonly fn: (...args: unknown[]) => void;
  readonly args: unknown[];
  readonly repeatMs: number | undefined;
}

/** What `setTimeout` returns while virtual time is installed (shaped like Node's `Timeout`). */
class VirtualTimeout {
  readonly id: number;
  constructor(id: number) {
    this.id = id;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

type Saved = Pick<typeof globalThis, 'setTimeout' | 'clearTimeout' | 'setInterval' | 'clearInterval'>;

/** Virtual time; {@link install} it, drive it with {@link advance}, {@link uninstall} it in `finally`. */
export class VirtualTime {
  #now = 0;
  #seq = 0;
  #nextId = 1;
  readonly #timers = new Map<number, VirtualTimer>();
  #saved: Saved | undefined;
  readonly #realImmediate = globalThis.setImmediate;

  /** Current virtual time in ms (what `performance.now()` returns while installed). */
  now(): number {
    return this.#now;
  }

  /** Replace the global timer functions and `performance.now`. */
  install(): void {
    if (this.#saved !== undefined) throw new Error('virtual time already installed');
    const g = globalThis as unknown as Record<string, unknown>;
    this.#saved = {
      setTimeout: globalThis.setTimeout,
      clearTimeout: globalThis.clearTimeout,
      setInterval: globalThis.setInterval,
      clearInterval: globalThis.clearInterval,
    };
    g.setTimeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.#add(fn, ms, args, false);
    g.setInterval = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.#add(fn, ms, args, true);
    g.clearTimeout = (handle: unknown) => this.#clear(handle);
    g.clearInterval = (handle: unknown) => this.#clear(handle);
    performance.now = () => this.#now;
  }

  /** Restore the real timer functions and clock; pending virtual timers are dropped. */
  uninstall(): void {
    const saved = this.#saved;
    if (saved === undefined) return;
    Object.assign(globalThis, saved);
    // Drop the own property so the prototype's real `now` shows through again.
    delete (performance as unknown as { now?: unknown }).now;
    this.#saved = undefined;
    this.#timers.clear();
  }

  /**
   * Move time forward by `ms`, firing every timer due on the way in time order
   * (ties in creation order) and letting promise callbacks run after each one.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    // Callbacks already queued run at the current time, before any timer fires.
    await this.#settle();
    for (;;) {
      let next: VirtualTimer | undefined;
      for (const timer of this.#timers.values()) {
        if (timer.at > target) continue;
        if (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) next = timer;
      }
      if (next === undefined) break;
      this.#now = Math.max(this.#now, next.at);
      if (next.repeatMs === undefined) this.#timers.delete(next.id);
      else next.at += next.repeatMs;
      next.fn(...next.args);
      await this.#settle();
    }
    this.#now = target;
    await this.#settle();
  }

  /** Advance in `stepMs` steps until `promise` settles or `maxMs` of virtual time pass; returns its value. */
  async drive<T>(promise: Promise<T>, maxMs: number, stepMs = 10): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    watched.catch(() => undefined);
    const began = this.#now;
    while (!settled) {
      if (this.#now - began > maxMs) throw new Error(`not settled within ${maxMs} ms of virtual time`);
      await this.advance(stepMs);
    }
    return watched;
  }

  /** Let every pending promise callback run (a real macrotask turn). */
  #settle(): Promise<void> {
    return new Promise((resolve) => this.#realImmediate(resolve));
  }

  #add(fn: (...args: unknown[]) => void, ms: number | undefined, args: unknown[], repeat: boolean): VirtualTimeout {
    // Like Node: a delay below 1 ms (or not a number) becomes 1 ms.
    const delay = Math.max(1, Number(ms) || 0);
    const id = this.#nextId++;
    this.#timers.set(id, {
      id,
      at: this.#now + delay,
      seq: this.#seq++,
      fn,
      args,
      repeatMs: repeat ? delay : undefined,
    });
    return new VirtualTimeout(id);
  }

  #clear(handle: unknown): void {
    if (handle instanceof VirtualTimeout) this.#timers.delete(handle.id);
    else if (typeof handle === 'number') this.#timers.delete(handle);
  }
}
