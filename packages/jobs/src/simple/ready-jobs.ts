/**
 * The ready jobs of the `memory://` adapter and which one starts next. They
 * wait in groups, one per handler and priority (the handler's own, or the one
 * given in `perform`), each first in, first out; the next job is gocraft's
 * draw weighted by priority among the groups whose handler may start one.
 * A paused handler's group is passed over; a job of a paused queue is set
 * aside (parked) when drawn, and goes back to its group when the queue is
 * unpaused.
 *
 * @module
 */

import type { Entry } from './entry.js';
import { Fifo } from './structures.js';

/** The ready jobs of one handler at one priority (`undefined`: the handler's own). */
interface ReadyGroup {
  readonly handler: string;
  readonly priority: number | undefined;
  readonly fifo: Fifo<Entry>;
}

/** See the module documentation. */
export class ReadyJobs {
  /** Keyed by handler, and priority when one was given in `perform`. */
  readonly #groups = new Map<string, ReadyGroup>();
  readonly #paused = new Set<string>();
  readonly #pausedQueues = new Set<string>();
  /** Ready jobs of paused queues, set aside in the order they came up, until their queue is unpaused. */
  readonly #parked: Entry[] = [];

  /** Queue a ready job behind its group's. */
  push(entry: Entry): void {
    const { handler, priority } = entry.record;
    const name = priority === undefined ? handler : `${handler}\u0000${priority}`;
    let group = this.#groups.get(name);
    if (group === undefined) {
      group = { handler, priority, fifo: new Fifo() };
      this.#groups.set(name, group);
    }
    group.fifo.push(entry);
  }

  /**
   * Take the job to start next, or `undefined` when none may start. Jobs no
   * longer ready (cancelled while they waited in line) are dropped on the way,
   * and those of paused queues parked.
   * @param weightOf - the handler's priority when it may start a job now
   *   (registered here, below its `maxConcurrency`), else `undefined`.
   */
  next(weightOf: (handler: string) => number | undefined): Entry | undefined {
    for (;;) {
      const entry = this.#draw(weightOf)?.shift();
      if (entry === undefined) return undefined;
      if (entry.state !== 'ready') continue;
      if (!this.#pausedQueues.has(entry.record.queue)) return entry;
      this.#parked.push(entry);
    }
  }

  /** Draw a group: gocraft's draw weighted by priority, among those with jobs and capacity. */
  #draw(weightOf: (handler: string) => number | undefined): Fifo<Entry> | undefined {
    let total = 0;
    const candidates: [Fifo<Entry>, number][] = [];
    for (const { handler, priority, fifo } of this.#groups.values()) {
      if (fifo.length === 0 || this.#paused.has(handler)) continue;
      const handlerWeight = weightOf(handler);
      if (handlerWeight === undefined) continue;
      const weight = priority ?? handlerWeight;
      total += weight;
      candidates.push([fifo, weight]);
    }
    if (candidates.length <= 1) return candidates[0]?.[0];
    let draw = Math.random() * total;
    for (const [fifo, weight] of candidates) {
      draw -= weight;
      if (draw < 0) return fifo;
    }
    return candidates[candidates.length - 1]?.[0];
  }

  /** Whether `handler` is paused. */
  isPaused(handler: string): boolean {
    return this.#paused.has(handler);
  }

  /** Start no more jobs of `handler`. */
  pause(handler: string): void {
    this.#paused.add(handler);
  }

  /** Resume a paused handler. */
  unpause(handler: string): void {
    this.#paused.delete(handler);
  }

  /** The paused queues, sorted. */
  pausedQueues(): string[] {
    return [...this.#pausedQueues].sort();
  }

  /** Start no more jobs of `queue`. */
  pauseQueue(queue: string): void {
    this.#pausedQueues.add(queue);
  }

  /** Resume a paused queue: its parked jobs that are still ready join their groups again. */
  unpauseQueue(queue: string): void {
    this.#pausedQueues.delete(queue);
    const parked = this.#parked.splice(0);
    for (const entry of parked) {
      if (this.#pausedQueues.has(entry.record.queue)) this.#parked.push(entry);
      else if (entry.state === 'ready') this.push(entry);
    }
  }
}
