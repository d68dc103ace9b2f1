/**
 * {@link Dispatcher}: which of the jobs the broker has pushed to this process
 * starts next. Jobs wait in arrival order; the first one that fits starts:
 * within the queue's `concurrency`, within its handler's `maxConcurrency` (in
 * this process), and, for an `ordered` handler in partitioned mode, only when
 * no earlier job of its key is running or waiting for its retry.
 *
 * @module
 */

/** A job waiting to start. */
export interface Task {
  readonly handler: string;
  /** Most attempts of the handler at once in this process; 0 for no limit. */
  readonly maxConcurrency: number;
  /** The ordered line the job belongs to, if any. */
  readonly line: string | undefined;
  /**
   * Start it; resolves when it gives back its slot and its line (an ordered
   * job waiting for its retry keeps both, so that its key's later jobs wait).
   */
  readonly start: () => Promise<void>;
  /** Give it back without starting it (stop, a lost channel). */
  readonly drop: () => void;
}

/** See the module documentation. */
export class Dispatcher<T extends Task = Task> {
  readonly #concurrency: number;
  #waiting: T[] = [];
  readonly #runningTasks = new Set<T>();
  readonly #byHandler = new Map<string, number>();
  readonly #lines = new Set<string>();
  readonly #settled = new Set<() => void>();

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  /** Attempts running now. */
  get running(): number {
    return this.#runningTasks.size;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Queue a job; it starts as soon as it fits. */
  add(task: T): void {
    this.#waiting.push(task);
    this.#pump();
  }

  /** Give back every waiting job that matches (all of them without a filter). */
  dropWaiting(filter: (task: T) => boolean = () => true): number {
    const dropped = this.#waiting.filter(filter);
    this.#waiting = this.#waiting.filter((t) => !filter(t));
    for (const task of dropped) task.drop();
    for (const done of [...this.#settled]) done();
    return dropped.length;
  }

  /** Resolves once no task that matches (none at all, without a filter) runs or waits. */
  idle(filter: (task: T) => boolean = () => true): Promise<void> {
    const busy = (): boolean => this.#waiting.some(filter) || [...this.#runningTasks].some(filter);
    if (!busy()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        if (busy()) return;
        this.#settled.delete(done);
        resolve();
      };
      this.#settled.add(done);
    });
  }

  #fits(task: T): boolean {
    if (task.line !== undefined && this.#lines.has(task.line)) return false;
    return task.maxConcurrency === 0 || (this.#byHandler.get(task.handler) ?? 0) < task.maxConcurrency;
  }

  #pump(): void {
    while (this.#runningTasks.size < this.#concurrency && this.#waiting.length > 0) {
      // Lines seen busy in this scan: a later job of a line never passes an earlier one.
      let blocked: Set<string> | undefined;
      const index = this.#waiting.findIndex((task) => {
        if (task.line !== undefined && blocked?.has(task.line) === true) return false;
        if (this.#fits(task)) return true;
        if (task.line !== undefined) {
          blocked ??= new Set();
          blocked.add(task.line);
        }
        return false;
      });
      if (index < 0) return;
      const [task] = this.#waiting.splice(index, 1);
      if (task !== undefined) this.#begin(task);
    }
  }

  #begin(task: T): void {
    this.#runningTasks.add(task);
    this.#byHandler.set(task.handler, (this.#byHandler.get(task.handler) ?? 0) + 1);
    if (task.line !== undefined) this.#lines.add(task.line);
    void task
      .start()
      .catch(() => undefined)
      .finally(() => {
        this.#runningTasks.delete(task);
        this.#byHandler.set(task.handler, (this.#byHandler.get(task.handler) ?? 1) - 1);
        if (task.line !== undefined) this.#lines.delete(task.line);
        this.#pump();
        for (const done of [...this.#settled]) done();
      });
  }
}
