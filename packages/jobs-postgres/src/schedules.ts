/**
 * The periodic jobs of one owned partition on PostgreSQL: a periodic job's
 * schedule belongs to the partition of its name, so the partition's owner
 * enqueues its ticks, fenced by the partition's token. Each write is one
 * transaction that locks the fence row `FOR SHARE` (a new owner waits for
 * it), reads the newest tick recorded in `cron` `FOR UPDATE`, stores the
 * jobs of the newer ticks only and records the newest: a tick is enqueued at
 * most once, ever. Which ticks, and when, is the shared `TickPump`.
 *
 * @module
 */

import { startTicker, type Ticker } from '@shardwork/core';
import {
  type AdapterRuntime,
  type CompiledPeriodic,
  type JobRecord,
  refOf,
  type TickPlan,
  TickPump,
  type TickWriteResult,
} from '@shardwork/jobs/adapter';
import type pg from 'pg';
import { storedJob, storeJobs } from './enqueue.js';
import type { Owner } from './fenced.js';
import { quotedSchema } from './migrate.js';
import { inTransaction } from './tx.js';

/** What the schedules of a partition need from its consumer. */
export interface SchedulesHost {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly owner: Owner;
  /** Partitions per queue. */
  readonly partitions: number;
  readonly runtime: AdapterRuntime;
  readonly periodics: readonly CompiledPeriodic[];
  partitionOf(record: JobRecord): number;
  /** Run a write, retried while the server is unreachable; `undefined` when it gave up. */
  write<T>(call: () => Promise<T>): Promise<T | undefined>;
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
    const q = quotedSchema(host.schema);
    for (const periodic of host.periodics) {
      const read = await host.write(() =>
        host.pool.query<{ last_tick: string }>(`SELECT last_tick FROM ${q}.cron WHERE queue = $1 AND name = $2`, [
          host.owner.queue,
          periodic.name,
        ]),
      );
      if (read === undefined || stop.aborted) return;
      const row = read.rows[0];
      const pump = new TickPump({
        periodic,
        cursor: { last: row === undefined ? undefined : Number(row.last_tick), since: Date.now() },
        write: (plan) => this.#write(periodic, plan),
        onError: (error) => host.reportError(error),
      });
      this.#pumps.push(pump);
      // The ticker first: a tick that falls while the catch-up is written is sent after it.
      this.#tickers.push(startTicker(periodic.schedule, (at) => void pump.fire(at.getTime())));
      void pump.fire();
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
    const q = quotedSchema(host.schema);
    const { queue, partition, token } = host.owner;
    const result = await host.write(() =>
      inTransaction(host.pool, async (client) => {
        const fence = await client.query<{ token: string }>(
          `SELECT token FROM ${q}.fences WHERE queue = $1 AND partition = $2 FOR SHARE`,
          [queue, partition],
        );
        if (Number(fence.rows[0]?.token) !== token) return 'stale' as const;
        const cron = await client.query<{ last_tick: string }>(
          `SELECT last_tick FROM ${q}.cron WHERE queue = $1 AND name = $2 FOR UPDATE`,
          [queue, periodic.name],
        );
        let last = cron.rows[0] === undefined ? -1 : Number(cron.rows[0].last_tick);
        if (plan.skipTo !== undefined) last = Math.max(last, plan.skipTo);
        const ticks = plan.ticks.filter((tick) => tick > last);
        const records = ticks.map((tick) => rt.periodicRecord(periodic, tick));
        const stored = await storeJobs(
          client,
          host.schema,
          records.map((r) => storedJob(r, host.partitionOf(r))),
          { partitions: host.partitions, givenWindowMs: rt.options.idempotencyWindowMs },
        );
        const newest = Math.max(last, ...ticks);
        if (newest >= 0) {
          await client.query(
            `INSERT INTO ${q}.cron (queue, name, last_tick) VALUES ($1, $2, $3)
             ON CONFLICT (queue, name) DO UPDATE SET last_tick = greatest(${q}.cron.last_tick, EXCLUDED.last_tick)`,
            [queue, periodic.name, newest],
          );
        }
        return records.filter((_, i) => stored[i]?.duplicate === false);
      }),
    );
    if (result === undefined) return 'failed';
    if (result === 'stale') return 'stale';
    for (const record of result) rt.emit('job:enqueued', { job: refOf(record), runAt: new Date(record.runAt) });
    return 'ok';
  }
}
