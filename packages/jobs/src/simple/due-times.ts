/**
 * Due times of the `memory://` adapter: its scheduled and retrying jobs in due
 * order (ties in enqueue order), on one timer at the earliest due time. The
 * timer waits in steps of at most 2^31−1 ms (Node fires a longer one after
 * 1 ms), so a job due in a year neither fires early nor drifts.
 *
 * @module
 */

import { MAX_TIMER_MS } from '@shardwork/core';
import { MinHeap } from './structures.js';

/** What waits for its due time: when, and its place among equal due times. */
export interface Due {
  readonly runAt: number;
  /** Tie-breaker among equal due times: enqueue (or retry) order. */
  readonly seq: number;
}

/** See the module documentation. */
export class DueTimes<T extends Due> {
  /** Each item with its due time and seq as pushed: an item pushed again (rescheduled) leaves a stale copy behind. */
  readonly #heap = new MinHeap<{ readonly item: T; readonly runAt: number; readonly seq: number }>(
    (a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.seq < b.seq),
  );
  readonly #onTimer: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  /** @param onTimer - called when the timer fires: take what is due with {@link DueTimes.popDue}, then {@link DueTimes.arm} again. */
  constructor(onTimer: () => void) {
    this.#onTimer = onTimer;
  }

  push(item: T): void {
    this.#heap.push({ item, runAt: item.runAt, seq: item.seq });
  }

  /** Remove and return what is due at `now`, earliest first. */
  popDue(now: number): T[] {
    const due: T[] = [];
    for (let top = this.#heap.peek(); top !== undefined && top.runAt <= now; top = this.#heap.peek()) {
      this.#heap.pop();
      // A stale copy: the item was pushed again since, with another time.
      if (top.item.runAt === top.runAt && top.item.seq === top.seq) due.push(top.item);
    }
    return due;
  }

  /** Keep one timer at the earliest due time (none when nothing waits). */
  arm(): void {
    const top = this.#heap.peek();
    if (top === undefined) {
      this.disarm();
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= top.runAt) return;
    this.disarm();
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, top.runAt - Date.now()));
    this.#timerAt = top.runAt;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#onTimer();
    }, delay);
  }

  disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }
}
