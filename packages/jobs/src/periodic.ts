/**
 * Which ticks of a periodic job to enqueue, and when: shared by every adapter
 * that enqueues ticks from a store (the Redis partition owner, the RabbitMQ
 * cron leader), so that "each tick once, missed ticks per `catchUp`" means the
 * same everywhere.
 *
 * Two kinds of ticks:
 * - **missed**: ticks that fell while nobody owned the schedule (every
 *   replica down, a failover, a hand-over), found when a new owner takes it
 *   over: they are caught up per `catchUp` within `horizonMs`;
 * - **live**: ticks that fall while this owner holds the schedule: each is
 *   enqueued once, late if the owner was paused or its store unreachable at the
 *   tick (a write that failed is sent again with the next ones).
 *
 * {@link planTicks} is the pure decision; {@link TickPump} runs it with one
 * write in flight at a time and a cursor (the newest tick recorded) that moves
 * only when the store confirmed a write, so no tick is lost between a failed
 * write and the next tick, and none is sent twice.
 *
 * @module
 */

import { ticksBetween } from '@shardwork/core';
import type { CompiledPeriodic } from './options.js';

/** Most ticks one plan enqueues (the newest ones when more are due). */
export const MAX_TICKS_PER_PLAN = 1000;

/** What one write of a periodic job's ticks should do. */
export interface TickPlan {
  /** Ticks (ms since the epoch) to enqueue, oldest first. */
  readonly ticks: readonly number[];
  /** Record this tick as done without enqueueing it (`catchUp: 'skip'`), if set. */
  readonly skipTo: number | undefined;
}

/** Where a schedule's owner stands. */
export interface TickCursor {
  /** Newest tick the store has recorded, `undefined` if the schedule never ran. */
  readonly last: number | undefined;
  /** When this owner took the schedule over (ms): ticks after it are live, ticks at or before it missed. */
  readonly since: number;
}

/**
 * The ticks to enqueue at `until` (ms; the nominal time of the tick that
 * fired, or now). A schedule that never ran catches nothing up.
 */
export function planTicks(periodic: CompiledPeriodic, cursor: TickCursor, until: number): TickPlan {
  const floor = until - periodic.horizonMs;
  const after = (ms: number): Date => new Date(Math.max(ms, floor));
  let missed: number[] = [];
  let skipTo: number | undefined;
  const { last, since } = cursor;
  if (last !== undefined && last < since) {
    const fell = ticksBetween(periodic.schedule, after(last), new Date(Math.min(since, until)), MAX_TICKS_PER_PLAN);
    const times = fell.map((d) => d.getTime());
    if (periodic.catchUp === 'all') missed = times;
    else if (periodic.catchUp === 'once') missed = times.slice(-1);
    else skipTo = times[times.length - 1];
  }
  const liveFrom = Math.max(last ?? since, since);
  const live =
    until > liveFrom
      ? ticksBetween(periodic.schedule, after(liveFrom), new Date(until), MAX_TICKS_PER_PLAN).map((d) => d.getTime())
      : [];
  const ticks = [...missed, ...live];
  return { ticks: ticks.length > MAX_TICKS_PER_PLAN ? ticks.slice(-MAX_TICKS_PER_PLAN) : ticks, skipTo };
}

/** How a write of a {@link TickPlan} ended. */
export type TickWriteResult =
  /** The store recorded it: the cursor moves to the newest tick of the plan. */
  | 'ok'
  /** The schedule is no longer ours (a newer owner's fence): the pump stops. */
  | 'stale'
  /** Not written (the store unreachable past the writer's retries): sent again with the next tick. */
  | 'failed';

/** What a {@link TickPump} needs. */
export interface TickPumpOptions {
  readonly periodic: CompiledPeriodic;
  readonly cursor: TickCursor;
  /** Enqueue the plan's ticks and record the newest (or `skipTo`) as done, in one store operation. */
  readonly write: (plan: TickPlan) => Promise<TickWriteResult>;
  readonly onError: (error: unknown) => void;
  /** @defaultValue `Date.now` */
  readonly now?: () => number;
}

/** Runs {@link planTicks} for one owner of one schedule. See the module documentation. */
export class TickPump {
  readonly #o: TickPumpOptions;
  #last: number | undefined;
  readonly #since: number;
  /** Newest nominal tick time the ticker fired for (a ticker may fire a little early). */
  #firedAt = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(options: TickPumpOptions) {
    this.#o = options;
    this.#last = options.cursor.last;
    this.#since = options.cursor.since;
  }

  /** Newest tick recorded, as far as this pump knows. */
  get last(): number | undefined {
    return this.#last;
  }

  /** A tick fired (its nominal time `at`), or the owner just took over: enqueue what is due. */
  fire(at = 0): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#firedAt = Math.max(this.#firedAt, at);
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#pump().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Enqueue nothing more. Resolves once a write in flight has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #pump(): Promise<void> {
    do {
      this.#again = false;
      const until = Math.max((this.#o.now ?? Date.now)(), this.#firedAt);
      let plan: TickPlan;
      try {
        plan = planTicks(this.#o.periodic, { last: this.#last, since: this.#since }, until);
      } catch (error) {
        this.#o.onError(error);
        return;
      }
      if (plan.ticks.length === 0 && plan.skipTo === undefined) continue;
      let result: TickWriteResult;
      try {
        result = await this.#o.write(plan);
      } catch (error) {
        this.#o.onError(error);
        result = 'failed';
      }
      if (result === 'stale') {
        this.#stopped = true;
        return;
      }
      if (result === 'failed') return; // the cursor stays: the next tick sends these again
      const newest = Math.max(plan.skipTo ?? -1, ...plan.ticks);
      if (this.#last === undefined || newest > this.#last) this.#last = newest;
    } while (this.#again && !this.#stopped);
  }
}
