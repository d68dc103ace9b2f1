/**
 * The throughput counts of the `memory://` adapter: completed and failed
 * attempts per queue and minute (ms / 60000), kept for the last two hours.
 *
 * @module
 */

import type { QueueThroughput, ThroughputPoint } from '../adapter.js';

/** See the module documentation. */
export class ThroughputTally {
  readonly #tally = new Map<string, Map<number, { completed: number; failed: number }>>();

  /** Count a completed or failed attempt in its queue's minute. */
  count(queue: string, field: 'completed' | 'failed', now: number): void {
    let minutes = this.#tally.get(queue);
    if (minutes === undefined) {
      minutes = new Map();
      this.#tally.set(queue, minutes);
    }
    const minute = Math.floor(now / 60_000);
    let point = minutes.get(minute);
    if (point === undefined) {
      point = { completed: 0, failed: 0 };
      minutes.set(minute, point);
      for (const old of minutes.keys()) if (old < minute - 120) minutes.delete(old);
    }
    point[field]++;
  }

  /** The last `minutes` minutes up to `now`, oldest first, of `queue` or of every queue counted. */
  read(minutes: number, queue: string | undefined, now: number): QueueThroughput[] {
    const last = Math.floor(now / 60_000);
    const queues = queue === undefined ? [...this.#tally.keys()].sort() : [queue];
    return queues.map((name) => {
      const counts = this.#tally.get(name);
      const points: ThroughputPoint[] = [];
      for (let m = last - minutes + 1; m <= last; m++) {
        const point = counts?.get(m);
        points.push({ at: m * 60_000, completed: point?.completed ?? 0, failed: point?.failed ?? 0 });
      }
      return { queue: name, points };
    });
  }
}
