/**
 * The admin side of the PostgreSQL job adapter: counts, pages, the dead set,
 * pauses, partition owners and throughput, each a statement or two over the
 * `jobs` table. A waiting job that is due reads as `ready` (the store leaves
 * it `scheduled` or `retrying` until a consumer takes it).
 *
 * @module
 */

import type { Discovery } from '@shardwork/core';
import {
  type BulkOptions,
  type CompiledRegistration,
  type CountedState,
  type JobInfo,
  JobNotFoundError,
  type JobPage,
  type JobState,
  type JobStats,
  type ListOptions,
  type PartitionOwner,
  type PauseOptions,
  type QueueThroughput,
  type StateCounts,
  UnknownHandlerError,
} from '@shardwork/jobs/adapter';
import type pg from 'pg';
import { quotedSchema } from './migrate.js';
import { NOW, wakeChannel } from './sql.js';

/** A job's state as readers see it: a due waiting job is `ready`. */
export const SEEN_STATE = `CASE WHEN state IN ('scheduled', 'retrying') AND run_at <= ${NOW} THEN 'ready' ELSE state END`;

/** The columns a {@link JobInfo} is read from. */
export const INFO_COLUMNS = `queue, id, handler, key, args::text AS args, ${SEEN_STATE} AS state, fails, enqueued_at,
  run_at, error, finished_at`;

/** A row of {@link INFO_COLUMNS}. */
export interface InfoRow {
  queue: string;
  id: string;
  handler: string;
  key: string | null;
  args: string;
  state: JobState;
  fails: number;
  enqueued_at: string;
  run_at: string;
  error: JobInfo['lastError'] | null;
  finished_at: string | null;
}

/** The {@link JobInfo} of a row. */
export function infoOf(row: InfoRow): JobInfo {
  let args: JobInfo['args'];
  try {
    args = JSON.parse(row.args) as JobInfo['args'];
  } catch {
    args = {};
  }
  return {
    id: row.id,
    handler: row.handler,
    queue: row.queue,
    key: row.key ?? undefined,
    args,
    state: row.state,
    fails: row.fails,
    enqueuedAt: Number(row.enqueued_at),
    runAt: Number(row.run_at),
    lastError: row.error ?? undefined,
    ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
  };
}

/** What {@link PostgresQueueAdmin} needs from its adapter. */
export interface AdminHost {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly partitions: number;
  handlers(): ReadonlyMap<string, CompiledRegistration>;
  coordination(): Promise<Discovery>;
  /** The pool, ready (the schema migrated). */
  ready(): Promise<pg.Pool>;
}

const zero = (): StateCounts => ({ scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 });

/** See the module documentation. */
export class PostgresQueueAdmin {
  readonly #host: AdminHost;
  readonly #q: string;

  constructor(host: AdminHost) {
    this.#host = host;
    this.#q = quotedSchema(host.schema);
  }

  async stats(): Promise<JobStats> {
    const db = await this.#host.ready();
    const q = this.#q;
    const [counts, paused, queues] = await Promise.all([
      db.query<{ queue: string; handler: string; state: CountedState; n: string }>(
        `SELECT queue, handler, ${SEEN_STATE} AS state, count(*) AS n FROM ${q}.jobs
         WHERE state IN ('scheduled', 'ready', 'running', 'retrying', 'dead') GROUP BY 1, 2, 3`,
      ),
      db.query<{ queue: string; handler: string }>(`SELECT queue, handler FROM ${q}.paused`),
      db.query<{ queue: string }>(`SELECT queue FROM ${q}.queues`),
    ]);
    const total = zero();
    const byQueue: Record<string, StateCounts> = {};
    const byHandler: Record<string, StateCounts & { paused: boolean }> = {};
    const queueOf = (name: string): StateCounts => {
      byQueue[name] ??= zero();
      return byQueue[name];
    };
    const handlerOf = (name: string): StateCounts & { paused: boolean } => {
      byHandler[name] ??= { ...zero(), paused: false };
      return byHandler[name];
    };
    for (const { queue } of queues.rows) queueOf(queue);
    for (const name of this.#host.handlers().keys()) handlerOf(name);
    for (const row of counts.rows) {
      const n = Number(row.n);
      total[row.state] += n;
      queueOf(row.queue)[row.state] += n;
      handlerOf(row.handler)[row.state] += n;
    }
    const pausedQueues: string[] = [];
    for (const row of paused.rows) {
      if (row.handler === '*') pausedQueues.push(row.queue);
      else handlerOf(row.handler).paused = true;
    }
    return { total, queues: byQueue, handlers: byHandler, pausedQueues: pausedQueues.sort() };
  }

  async list(
    state: JobState,
    options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  ): Promise<JobPage> {
    const db = await this.#host.ready();
    const q = this.#q;
    const where = `${SEEN_STATE} = $1 AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR handler = $3)`;
    const order = ['completed', 'dead', 'cancelled'].includes(state) ? 'finished_at, seq' : 'run_at, seq';
    const params = [state, options.queue ?? null, options.handler ?? null];
    const [count, page] = await Promise.all([
      db.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.jobs WHERE ${where}`, params),
      db.query<InfoRow>(`SELECT ${INFO_COLUMNS} FROM ${q}.jobs WHERE ${where} ORDER BY ${order} OFFSET $4 LIMIT $5`, [
        ...params,
        options.offset,
        options.limit,
      ]),
    ]);
    return { total: Number(count.rows[0]?.n ?? 0), jobs: page.rows.map(infoOf) };
  }

  /** Dead jobs back to ready (one, or all in batches of 1,000); the owners of their partitions are woken. */
  async retryDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#bulk(
      id,
      options,
      `UPDATE ${this.#q}.jobs j SET state = 'ready', fails = 0, run_at = ${NOW}, finished_at = NULL, error = NULL
       FROM picked WHERE j.queue = picked.queue AND j.id = picked.id
       RETURNING j.queue, j.partition`,
    );
  }

  async deleteDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#bulk(
      id,
      options,
      `DELETE FROM ${this.#q}.jobs j USING picked WHERE j.queue = picked.queue AND j.id = picked.id
       RETURNING j.queue, j.partition`,
    );
  }

  async #bulk(id: string | undefined, options: BulkOptions, act: string): Promise<number> {
    const db = await this.#host.ready();
    const q = this.#q;
    let done = 0;
    for (;;) {
      const { rows } = await db.query<{ n: string }>(
        `WITH picked AS (
           SELECT queue, id FROM ${q}.jobs WHERE state = 'dead' AND ($1::text IS NULL OR id = $1)
           ORDER BY finished_at LIMIT 1000 FOR UPDATE SKIP LOCKED),
         acted AS (${act}),
         woke AS (SELECT pg_notify('${wakeChannel(this.#host.schema)}', w.queue || '|' || w.partition)
                  FROM (SELECT DISTINCT queue, partition FROM acted) w)
         SELECT (SELECT count(*) FROM acted) AS n, (SELECT count(*) FROM woke) AS w`,
        [id ?? null],
      );
      const n = Number(rows[0]?.n ?? 0);
      done += n;
      if (n > 0) options.onProgress?.(done);
      if (id !== undefined && n === 0) throw new JobNotFoundError(id, 'in the dead set');
      if (id !== undefined || n < 1000) return done;
    }
  }

  async partitions(): Promise<PartitionOwner[]> {
    const db = await this.#host.ready();
    const discovery = await this.#host.coordination();
    const [queues, fences] = await Promise.all([
      db.query<{ queue: string; partitions: number }>(`SELECT queue, partitions FROM ${this.#q}.queues ORDER BY 1`),
      db.query<{ queue: string; partition: number; token: string }>(
        `SELECT queue, partition, token FROM ${this.#q}.fences`,
      ),
    ]);
    const fenceOf = new Map(fences.rows.map((f) => [`${f.queue}|${f.partition}`, Number(f.token)]));
    const owners: PartitionOwner[] = [];
    for (const { queue, partitions } of queues.rows) {
      const snapshot = await discovery.snapshot(queue);
      const members = new Map(snapshot.members.map((m) => [m.id, m]));
      const claims = new Map(snapshot.claims.map((c) => [c.shard, c]));
      for (let partition = 0; partition < partitions; partition++) {
        const claim = claims.get(partition);
        const member = claim === undefined ? undefined : members.get(claim.owner);
        owners.push({
          queue,
          partition,
          owner: claim?.owner,
          host: member?.host,
          pid: member?.pid,
          token: claim?.token,
          fence: fenceOf.get(`${queue}|${partition}`),
        });
      }
    }
    return owners;
  }

  async pause(handler: string, options: PauseOptions = {}): Promise<void> {
    const db = await this.#host.ready();
    if (options.force !== true && !this.#host.handlers().has(handler)) {
      const { rows } = await db.query(`SELECT 1 FROM ${this.#q}.jobs WHERE handler = $1 LIMIT 1`, [handler]);
      if (rows.length === 0) {
        throw new UnknownHandlerError(
          handler,
          [...this.#host.handlers().keys()].sort(),
          'No job of it is stored and this process does not register it: check the name, or pause it anyway with { force: true }.',
        );
      }
    }
    await this.#setPaused('*', handler, true);
  }

  unpause(handler: string): Promise<void> {
    return this.#setPaused('*', handler, false);
  }

  pauseQueue(queue: string): Promise<void> {
    return this.#setPaused(queue, '*', true);
  }

  unpauseQueue(queue: string): Promise<void> {
    return this.#setPaused(queue, '*', false);
  }

  /** A pause row in or out; an unpause wakes the owners of the queues it concerns. */
  async #setPaused(queue: string, handler: string, paused: boolean): Promise<void> {
    const db = await this.#host.ready();
    const q = this.#q;
    if (paused) {
      await db.query(`INSERT INTO ${q}.paused (queue, handler) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
        queue,
        handler,
      ]);
      return;
    }
    await db.query(
      `WITH gone AS (DELETE FROM ${q}.paused WHERE queue = $1 AND handler = $2 RETURNING 1)
       SELECT pg_notify('${wakeChannel(this.#host.schema)}', s.queue || '|*')
       FROM ${q}.queues s, (SELECT count(*) AS n FROM gone) g WHERE g.n > 0 AND ($1 = '*' OR s.queue = $1)`,
      [queue, handler],
    );
  }

  async throughput(minutes: number, queue?: string): Promise<QueueThroughput[]> {
    const db = await this.#host.ready();
    const q = this.#q;
    const { rows: now } = await db.query<{ ms: string }>(`SELECT ${NOW} AS ms`);
    const last = Math.floor(Number(now[0]?.ms) / 60_000) * 60_000;
    const first = last - (minutes - 1) * 60_000;
    const [queues, counts] = await Promise.all([
      db.query<{ queue: string }>(`SELECT queue FROM ${q}.queues WHERE $1::text IS NULL OR queue = $1 ORDER BY 1`, [
        queue ?? null,
      ]),
      db.query<{ queue: string; minute: string; completed: number; failed: number }>(
        `SELECT queue, minute, completed, failed FROM ${q}.throughput
         WHERE minute >= $1 AND ($2::text IS NULL OR queue = $2)`,
        [first, queue ?? null],
      ),
    ]);
    const found = new Map(counts.rows.map((r) => [`${r.queue}|${Number(r.minute)}`, r]));
    return queues.rows.map(({ queue: name }) => ({
      queue: name,
      points: Array.from({ length: minutes }, (_, i) => {
        const at = first + i * 60_000;
        const row = found.get(`${name}|${at}`);
        return { at, completed: row?.completed ?? 0, failed: row?.failed ?? 0 };
      }),
    }));
  }
}
