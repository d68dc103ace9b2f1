/**
 * The periodic jobs of one owned partition: a periodic job's schedule belongs
 * to the partition of its name, so the partition's owner enqueues its ticks,
 * fenced by the partition's token (`cron.lua` records the newest tick with the
 * jobs, so a tick is enqueued at most once, ever). Which ticks, and when, is
 * the shared {@link TickPump} of `@shardwork/jobs`: ticks that fell while
 * nobody owned the partition are caught up per `catchUp`, and every tick while
 * this owner holds it is enqueued once, also when a write failed or the
 * process was paused at the tick.
 *
 * @module
 */

import { startTicker, type Ticker } from '@shardwork/core';
import { retrying } from '@shardwork/core/backend';
import {
  type AdapterRuntime,
  type CompiledPeriodic,
  type JobRecord,
  refOf,
  type TickPlan,
  TickPump,
  type TickWriteResult,
} from '@shardwork/jobs/adapter';
import { enqueueFields } from './records.js';
import type { Fenced } from './store.js';

/** What the schedules of a partition need from its consumer. */
export interface SchedulesHost {
  readonly runtime: AdapterRuntime;
  /** Periodic jobs whose schedule this partition owns. */
  readonly periodics: readonly CompiledPeriodic[];
  /** The partition a job goes to. */
  partitionOf(record: JobRecord): number;
  /** Newest tick recorded for a periodic job, ms. */
  lastTick(name: string): Promise<number | undefined>;
  /** Run `cron.lua` with the partition's token (the arguments after it); `undefined` when it gave up. */
  write(args: readonly (string | number)[]): Promise<Fenced | undefined>;
  reportError(error: unknown): void;
}

/** See the module documentation. */
export class PartitionSchedules {
  readonly #host: SchedulesHost;
  readonly #pumps: TickPump[] = [];
  readonly #tickers: Ticker[] = [];

  constructor(host: SchedulesHost) {
    this.#host = host;
  }

  /** Read where each schedule stands, catch up, and follow its ticks until {@link stop}. */
  async start(stop: AbortSignal): Promise<void> {
    const host = this.#host;
    for (const periodic of host.periodics) {
      if (stop.aborted) return;
      const last = await this.#lastTick(periodic.name, stop);
      if (last === false) return;
      const since = Date.now();
      const pump = new TickPump({
        periodic,
        cursor: { last, since },
        write: (plan) => this.#write(periodic, plan),
        onError: (error) => host.reportError(error),
      });
      this.#pumps.push(pump);
      // The ticker first: a tick that falls while the catch-up is written is sent after it.
      this.#tickers.push(startTicker(periodic.schedule, (at) => void pump.fire(at.getTime())));
      void pump.fire();
    }
  }

  /**
   * The newest tick recorded, read again while Redis is unreachable (which
   * ticks were missed is known only from it); `false` once `stop` aborts.
   */
  async #lastTick(name: string, stop: AbortSignal): Promise<number | undefined | false> {
    try {
      return await retrying(() => this.#host.lastTick(name), {
        retryable: () => true,
        signal: stop,
        backoff: { initialMs: 50, maxMs: 2000 },
        onRetry: (error, { attempt }) => attempt === 1 && this.#host.reportError(error),
      });
    } catch {
      return false; // `stop` aborted
    }
  }

  /** Stop the tickers and wait for writes in flight. */
  async stop(): Promise<void> {
    for (const ticker of this.#tickers.splice(0)) ticker.stop();
    await Promise.all(this.#pumps.splice(0).map((pump) => pump.stop()));
  }

  async #write(periodic: CompiledPeriodic, plan: TickPlan): Promise<TickWriteResult> {
    const host = this.#host;
    const rt = host.runtime;
    const records = plan.ticks.map((tick) => rt.periodicRecord(periodic, tick));
    const args: (string | number)[] = [periodic.name, plan.skipTo ?? '', records.length];
    records.forEach((record, i) => {
      args.push(plan.ticks[i] as number, ...enqueueFields(record, host.partitionOf(record)));
    });
    const result = await host.write(args);
    if (result === undefined) return 'failed';
    if (result.stale) return 'stale';
    const outcome = result.reply[0] as string[];
    records.forEach((record, i) => {
      if (outcome[i] === 'new') rt.emit('job:enqueued', { job: refOf(record), runAt: new Date(record.runAt) });
    });
    return 'ok';
  }
}
