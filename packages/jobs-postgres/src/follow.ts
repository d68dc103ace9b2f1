/**
 * One job on PostgreSQL: look it up, cancel it, wait for its outcome, change
 * it before it runs. A waiter marks the job `waited` (after its listener is
 * up), so the statement that finishes the job sends the outcome on the wake
 * channel at commit: no polling, and a waiter that comes after the end reads
 * the finished row at once.
 *
 * @module
 */

import type { CancelResult, JobChange, JobDetails, JobOutcome, JobState } from '@shardwork/jobs/adapter';
import type pg from 'pg';
import { INFO_COLUMNS, type InfoRow, infoOf, SEEN_STATE } from './admin.js';
import { quotedSchema } from './migrate.js';
import { ACTIVE, NOW, noticeOfDone, wakeChannel } from './sql.js';
import { trimFinished } from './trim.js';
import type { DoneNotice } from './wake.js';

/** What {@link PostgresJobFollow} needs from its adapter. */
export interface FollowHost {
  readonly schema: string;
  /** The pool, ready (the schema migrated). */
  ready(): Promise<pg.Pool>;
  /** Start listening on the wake channel (once); resolves when listening. */
  listen(): Promise<void>;
  keepCompleted(): { readonly count: number; readonly ageMs: number };
}

interface DetailRow extends InfoRow {
  partition: number;
  priority: number | null;
  started_at: string | null;
  result: unknown;
  progress: unknown;
}

/** See the module documentation. */
export class PostgresJobFollow {
  readonly #host: FollowHost;
  readonly #q: string;
  readonly #waiters = new Map<string, Set<(notice: DoneNotice) => void>>();

  constructor(host: FollowHost) {
    this.#host = host;
    this.#q = quotedSchema(host.schema);
  }

  async getJob(id: string): Promise<JobDetails | undefined> {
    const db = await this.#host.ready();
    const { rows } = await db.query<DetailRow>(
      `SELECT ${INFO_COLUMNS}, partition, priority, started_at, result, progress FROM ${this.#q}.jobs
       WHERE id = $1 ORDER BY enqueued_at DESC LIMIT 1`,
      [id],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const info = infoOf(row);
    return {
      id: info.id,
      handler: info.handler,
      queue: info.queue,
      key: info.key,
      args: info.args,
      state: info.state,
      attempt: info.fails + (info.state === 'running' || info.state === 'completed' ? 1 : 0),
      fails: info.fails,
      maxFails: undefined,
      priority: row.priority ?? undefined,
      enqueuedAt: info.enqueuedAt,
      scheduledAt: info.runAt,
      startedAt: row.started_at === null ? undefined : Number(row.started_at),
      finishedAt: info.finishedAt,
      progress: (row.progress ?? undefined) as JobDetails['progress'],
      result: (info.state === 'completed' ? row.result : undefined) as JobDetails['result'],
      error: info.lastError,
      partition: row.partition,
      owner: undefined,
    };
  }

  /**
   * Cancel: a waiting job ends `cancelled` at once (its unique key and its
   * key's line released); a running one is marked, its owner told on the wake
   * channel, and its completion refused (it ends cancelled).
   */
  async cancel(id: string, reason: string | undefined, waitingOnly: boolean): Promise<CancelResult | undefined> {
    const db = await this.#host.ready();
    const q = this.#q;
    const error = JSON.stringify({ name: 'JobCancelledError', message: reason ?? 'cancelled', at: Date.now() });
    const { rows } = await db.query<{ queue: string; before: JobState; state: JobState }>(
      `WITH found AS (
         SELECT queue, id, ${SEEN_STATE} AS before
         FROM ${q}.jobs WHERE id = $1 ORDER BY enqueued_at DESC LIMIT 1 FOR UPDATE),
       changed AS (
         UPDATE ${q}.jobs j SET
           state = CASE WHEN j.state = 'running' THEN 'running' ELSE 'cancelled' END,
           cancel = CASE WHEN j.state = 'running' THEN $2::json ELSE j.cancel END,
           error = CASE WHEN j.state = 'running' THEN j.error ELSE $2::json END,
           finished_at = CASE WHEN j.state = 'running' THEN NULL ELSE ${NOW} END
         FROM found f
         WHERE j.queue = f.queue AND j.id = f.id AND j.state IN ${ACTIVE} AND j.cancel IS NULL
           AND NOT ($3 AND j.state = 'running')
         RETURNING j.queue, j.id, j.state, j.result, j.error, j.waited, j.partition),
       noticed AS (${noticeOfDone(this.#host.schema, 'changed')}),
       told AS (
         SELECT pg_notify('${wakeChannel(this.#host.schema)}', c.queue || '|cancel|' || c.id) FROM changed c
         WHERE c.state = 'running'
         UNION ALL
         SELECT pg_notify('${wakeChannel(this.#host.schema)}', c.queue || '|' || c.partition) FROM changed c
         WHERE c.state = 'cancelled')
       SELECT f.queue, f.before, coalesce((SELECT state FROM changed), f.before) AS state
       FROM found f, (SELECT count(*) FROM noticed) n, (SELECT count(*) FROM told) t`,
      [id, error, waitingOnly],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const cancelled =
      row.state === 'cancelled' || (row.before === 'running' && row.state === 'running' && !waitingOnly);
    const applied = cancelled && !['completed', 'dead', 'cancelled'].includes(row.before);
    if (applied && row.state === 'cancelled') {
      await trimFinished(db, this.#host.schema, row.queue, 'cancelled', this.#host.keepCompleted());
    }
    return { id, state: row.before, cancelled: applied };
  }

  /** Resolve once the job has finished; see `JobAdapter.awaitFinished`. */
  async awaitFinished(id: string, signal: AbortSignal): Promise<JobOutcome | undefined> {
    await this.#host.listen();
    signal.throwIfAborted();
    let notify: (notice: DoneNotice) => void = () => undefined;
    const heard = new Promise<DoneNotice>((resolve) => {
      notify = resolve;
    });
    let set = this.#waiters.get(id);
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(id, set);
    }
    set.add(notify);
    try {
      const db = await this.#host.ready();
      const { rows } = await db.query<{ state: JobState; result: unknown; error: unknown }>(
        // The row lock of this update makes a fetch skip the job (SKIP LOCKED): wake its owner to look again.
        `WITH marked AS (
           UPDATE ${this.#q}.jobs SET waited = true
           WHERE (queue, id) = (SELECT queue, id FROM ${this.#q}.jobs WHERE id = $1 ORDER BY enqueued_at DESC LIMIT 1)
           RETURNING queue, partition, state, result, error),
         woke AS (SELECT pg_notify('${wakeChannel(this.#host.schema)}', m.queue || '|' || m.partition)
                  FROM marked m WHERE m.state IN ('scheduled', 'ready', 'retrying'))
         SELECT state, result, error FROM marked, (SELECT count(*) FROM woke) w`,
        [id],
      );
      const row = rows[0];
      if (row === undefined) return undefined;
      if (['completed', 'dead', 'cancelled'].includes(row.state)) return outcomeOf(id, row);
      const aborted = new Promise<never>((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      const notice = await Promise.race([heard, aborted]);
      if (notice.big !== true) return outcomeOf(id, notice);
      const job = await this.getJob(id);
      return job === undefined ? outcomeOf(id, notice) : outcomeOf(id, job);
    } finally {
      set.delete(notify);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
    }
  }

  /** A finished job's notice arrived. */
  done(notice: DoneNotice): void {
    const set = this.#waiters.get(notice.id);
    if (set === undefined) return;
    for (const waiter of [...set]) waiter(notice);
  }

  async modify(id: string, change: JobChange): Promise<{ state: JobState; applied: boolean } | undefined> {
    const db = await this.#host.ready();
    const q = this.#q;
    const set =
      change.type === 'promote'
        ? `run_at = least(j.run_at, ${NOW})`
        : change.type === 'reschedule'
          ? `run_at = $3::bigint, state = CASE WHEN $3::bigint > ${NOW} AND j.state = 'ready' THEN 'scheduled' ELSE j.state END`
          : 'args = $3::json';
    // Promote and reschedule: jobs waiting for a time (a due one reads ready: promote has nothing to do);
    // update: any waiting job.
    const params: unknown[] = [id, change.type === 'update'];
    if (change.type === 'reschedule') params.push(change.at);
    if (change.type === 'update') params.push(change.argsJson);
    const { rows } = await db.query<{ before: JobState; applied: boolean }>(
      `WITH found AS (
         SELECT queue, id, ${SEEN_STATE} AS before
         FROM ${q}.jobs WHERE id = $1 ORDER BY enqueued_at DESC LIMIT 1 FOR UPDATE),
       changed AS (
         UPDATE ${q}.jobs j SET ${set} FROM found f
         WHERE j.queue = f.queue AND j.id = f.id AND j.state IN ('scheduled', 'ready', 'retrying')
           AND ($2 OR f.before <> 'ready')
         RETURNING j.queue, j.partition),
       woke AS (SELECT pg_notify('${wakeChannel(this.#host.schema)}', c.queue || '|' || c.partition) FROM changed c)
       SELECT f.before, EXISTS (SELECT 1 FROM changed) AS applied
       FROM found f, (SELECT count(*) FROM woke) w`,
      params,
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    // Promoting a ready job changes nothing and is no refusal.
    return { state: row.before, applied: row.applied || (change.type === 'promote' && row.before === 'ready') };
  }
}

function outcomeOf(
  id: string,
  row: { readonly state: string; readonly result?: unknown; readonly error?: unknown },
): JobOutcome {
  return {
    id,
    state: row.state as JobState,
    // A completed job's result is JSON: `null` when its handler returned nothing.
    result: (row.state === 'completed' ? (row.result ?? null) : undefined) as JobOutcome['result'],
    error: (row.error ?? undefined) as JobOutcome['error'],
  };
}
