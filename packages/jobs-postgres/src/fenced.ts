/**
 * What the owner of a partition does, each step fenced by its token: take the
 * partition over, fetch due jobs, record completions, and run a handler's own
 * writes in one transaction with the job's completion.
 *
 * The fence is the partition's row in `fences`. Taking over raises its token
 * (only ever up) and puts back what an older owner left running. Every other
 * step names the token it holds and changes nothing unless it is still the
 * partition's. {@link completeInTransaction} locks the row `FOR SHARE`
 * for the length of the handler's transaction: a takeover's update waits for
 * it, so either the old owner's writes and its completion commit before the
 * takeover (it owned the partition when it committed) or the takeover comes
 * first and they roll back together. A zombie's transactional writes never
 * commit; a job's effect is applied once.
 *
 * @module
 */

import { NotOwnerError, type Subject } from '@shardwork/core';
import type pg from 'pg';
import { quotedSchema } from './migrate.js';
import { MAX_RESULT_IN_NOTICE, NOW, noticeOfDone } from './sql.js';
import { inTransaction } from './tx.js';

/** A partition's owner, as each step names it. */
export interface Owner {
  readonly queue: string;
  readonly partition: number;
  /** The coordinator's claim token: strictly increasing per partition. */
  readonly token: number;
}

/** A job fetched to run. */
export interface FetchedJob {
  readonly id: string;
  readonly handler: string;
  readonly key: string | null;
  /** The args as stored (JSON text). */
  readonly args: string;
  readonly fails: number;
  readonly runAt: number;
  readonly enqueuedAt: number;
  readonly uniqueKey: string | null;
  readonly priority: number | null;
  readonly traceparent: string | null;
}

/** Which jobs a fetch may take: the handlers this process runs, with their rules. */
export interface FetchSpec {
  /** Every handler this process runs. */
  readonly handlers: readonly string[];
  /** Handlers whose jobs of one key run one at a time, in the order they became due. */
  readonly ordered: readonly string[];
  /** Those of `handlers` with a `maxConcurrency`: at most that many of their jobs run at once in the whole queue. */
  readonly limited: ReadonlyMap<string, number>;
  /** Each handler's priority (1 where absent): the weight of its jobs in the draw. */
  readonly priorities?: ReadonlyMap<string, number>;
}

/** What {@link fetchDue} took, and when the partition's next job falls due (`undefined`: none waits). */
export interface Fetched {
  readonly jobs: FetchedJob[];
  readonly nextDue: number | undefined;
}
/** A failed attempt to record. */
export interface Failure {
  readonly id: string;
  /** The error as JSON text (shardwork's `JobErrorInfo`). */
  readonly error: string;
  /** In how many ms (by the server's clock) to try again, or `null`: the job goes dead. */
  readonly retryInMs: number | null;
}

/** A job an older owner left running, put back by {@link takeOver}. */
export interface RecoveredJob {
  readonly id: string;
  readonly handler: string;
  readonly key: string | null;
  /** The args as stored (JSON text). */
  readonly args: string;
}

/** A finished attempt to record. */
export interface Completion {
  readonly id: string;
  /** The result as JSON text (`null` for none). */
  readonly result: string;
}

/** A running job goes back to ready, or, cancelled while it ran, ends cancelled. */
const BACK = `state = CASE WHEN cancel IS NULL THEN 'ready' ELSE 'cancelled' END,
  error = coalesce(cancel, error),
  finished_at = CASE WHEN cancel IS NULL THEN NULL ELSE ${NOW} END,
  token = NULL`;

/** Core's words for a queue's partitions in its errors (`Partition 3 (token 7) is no longer owned …`). */
const partitionWords = (queue: string): Subject => ({
  kind: 'queue',
  name: queue,
  unit: 'partition',
  units: 'partitions',
  member: 'producer and consumer',
  countOption: 'partitions',
  handler: undefined,
  revokeTimeoutAdvice: '',
  custom: true,
  tag: `[shardwork queue ${queue}]`,
});

/**
 * Take partition `owner.partition` over with `owner.token`: raise the fence
 * (refused, `false`, when the stored token is newer: this owner is a zombie)
 * and put back the jobs an older owner left running (ready again; a job
 * cancelled while it ran ends cancelled). One transaction.
 */
export async function takeOver(
  db: pg.Pool,
  schema: string,
  owner: Owner,
): Promise<{ readonly recovered: readonly RecoveredJob[] } | undefined> {
  const q = quotedSchema(schema);
  return inTransaction(db, async (client) => {
    const { rowCount } = await client.query(
      `INSERT INTO ${q}.fences (queue, partition, token) VALUES ($1, $2, $3)
       ON CONFLICT (queue, partition) DO UPDATE SET token = EXCLUDED.token WHERE ${q}.fences.token <= EXCLUDED.token`,
      [owner.queue, owner.partition, owner.token],
    );
    if (rowCount !== 1) return undefined;
    const { rows } = await client.query<RecoveredJob & { state: string }>(
      `WITH back AS (
         UPDATE ${q}.jobs SET ${BACK}
         WHERE queue = $1 AND partition = $2 AND state = 'running' AND token < $3
         RETURNING queue, id, handler, key, args::text AS args, state, result, error, waited),
       noticed AS (${noticeOfDone(schema, 'back')})
       SELECT id, handler, key, args, state FROM back, (SELECT count(*) FROM noticed) n`,
      [owner.queue, owner.partition, owner.token],
    );
    return { recovered: rows.filter((r) => r.state === 'ready') };
  });
}

/** The fence check of a statement: the partition's token is still `$3`. */
const fenced = (q: string): string =>
  `EXISTS (SELECT 1 FROM ${q}.fences f WHERE f.queue = $1 AND f.partition = $2 AND f.token = $3)`;

const FETCHED = `j.id, j.handler, j.key, j.args::text AS args, j.fails, j.run_at, j.enqueued_at, j.unique_key,
  j.priority, j.traceparent`;

interface FetchedRow {
  id: string;
  handler: string;
  key: string | null;
  args: string;
  fails: number;
  run_at: string;
  enqueued_at: string;
  unique_key: string | null;
  priority: number | null;
  traceparent: string | null;
}

/**
 * Which due jobs of handlers `$4` the owner (`$1` queue, `$2` partition, `$3`
 * token) may take. Skipped: paused handlers and queues, and a job of an
 * ordered handler (`$6`) while another job of its key runs or retries, or an
 * earlier one of it is due (a line per key: due jobs in enqueue order; a job
 * scheduled for later joins the line when it falls due).
 */
const takeable = (
  q: string,
): string => `j.queue = $1 AND j.partition = $2 AND j.state IN ('scheduled', 'ready', 'retrying')
    AND j.run_at <= ${NOW} AND j.handler = ANY($4) AND ${fenced(q)}
    AND NOT EXISTS (SELECT 1 FROM ${q}.paused p
                    WHERE (p.queue = $1 AND p.handler = '*') OR (p.queue = '*' AND p.handler = j.handler))
    AND (j.key IS NULL OR NOT (j.handler = ANY($6)) OR NOT EXISTS (
      SELECT 1 FROM ${q}.jobs o
      WHERE o.queue = $1 AND o.partition = $2 AND o.key = j.key AND o.id <> j.id AND o.handler = ANY($6)
        AND (o.state IN ('running', 'retrying')
          OR (o.state IN ('scheduled', 'ready') AND o.run_at <= ${NOW} AND o.seq < j.seq))))`;

/**
 * Take up to `$5` takeable jobs (see {@link takeable}) to run under the
 * owner: they become running with its token.
 *
 * The order is gocraft's weighted draw wherever priorities differ: groups of
 * waiting jobs (each handler's jobs at its priority `$7`, and the jobs of each
 * priority given per job) are drawn with probability proportional to their
 * priority, and a drawn group gives its oldest job. The draws of one fetch
 * are a race of exponential clocks: the k-th oldest job of a group of weight
 * w is drawn at the sum of k unit exponentials divided by w, so taking the
 * `$5` earliest is `$5` draws with replacement. Where every priority is the
 * same (`$8` false and no job of the partition has its own), the draw is
 * oldest due first, read from the index without looking at the rest; a
 * PostgreSQL one-time filter runs only one of the two branches.
 */
const takeSql = (q: string): string => `WITH weighted AS (
  SELECT $8::boolean OR EXISTS (
    SELECT 1 FROM ${q}.jobs p
    WHERE p.queue = $1 AND p.partition = $2 AND p.priority IS NOT NULL
      AND p.state IN ('scheduled', 'ready', 'retrying') AND p.handler = ANY($4)) AS yes),
drawn AS (
  SELECT d.id, sum(d.e) OVER (PARTITION BY d.grp ORDER BY d.run_at, d.seq ROWS UNBOUNDED PRECEDING) / d.weight AS draw
  FROM (SELECT j.id, j.run_at, j.seq, -ln(1.0 - random()) AS e,
               CASE WHEN j.priority IS NULL THEN 'h' || j.handler ELSE 'p' || j.priority END AS grp,
               coalesce(j.priority, w.weight) AS weight
        FROM ${q}.jobs j JOIN unnest($4::text[], $7::int[]) AS w(handler, weight) ON w.handler = j.handler
        WHERE (SELECT yes FROM weighted) AND ${takeable(q)}) d),
picked AS (
  SELECT id FROM (
    SELECT j.id FROM ${q}.jobs j
    WHERE NOT (SELECT yes FROM weighted) AND ${takeable(q)}
    ORDER BY j.run_at, j.seq
    LIMIT $5
    FOR UPDATE SKIP LOCKED) oldest
  UNION ALL
  SELECT id FROM (
    SELECT j.id FROM ${q}.jobs j JOIN (SELECT id, draw FROM drawn ORDER BY draw LIMIT $5 * 2) d
      ON j.queue = $1 AND j.id = d.id
    WHERE (SELECT yes FROM weighted) AND j.partition = $2 AND j.state IN ('scheduled', 'ready', 'retrying')
    ORDER BY d.draw
    LIMIT $5
    FOR UPDATE OF j SKIP LOCKED) by_weight)
UPDATE ${q}.jobs j SET state = 'running', token = $3, started_at = ${NOW}
FROM picked WHERE j.queue = $1 AND j.id = picked.id
RETURNING ${FETCHED}`;

function fetchedJob(r: FetchedRow): FetchedJob {
  return {
    id: r.id,
    handler: r.handler,
    key: r.key,
    args: r.args,
    fails: r.fails,
    runAt: Number(r.run_at),
    enqueuedAt: Number(r.enqueued_at),
    uniqueKey: r.unique_key,
    priority: r.priority,
    traceparent: r.traceparent,
  };
}

/**
 * Take up to `max` due jobs (oldest due first) to run under `owner`: they
 * become running with its token; nothing when the token is not the
 * partition's any more. Jobs of a handler with a `maxConcurrency` are taken
 * under a transaction-scoped advisory lock of the handler, counting its
 * running jobs in every partition, so that owners of other partitions never
 * take more than its limit between them. When fewer than `max` were taken,
 * also says when the next waiting job falls due.
 */
export async function fetchDue(
  db: pg.Pool,
  schema: string,
  owner: Owner,
  spec: FetchSpec,
  max: number,
): Promise<Fetched> {
  const q = quotedSchema(schema);
  // When the fetch began, on this process's monotonic clock: the next-due
  // query below looks back that far on the server's clock, so that a job that
  // fell due between the two statements still counts as next (else nothing
  // would wake the owner for it). A duration, so no clock skew enters.
  const began = performance.now();
  const base = [owner.queue, owner.partition, owner.token];
  const jobs: FetchedJob[] = [];
  const weights = (handlers: readonly string[]): [number[], boolean] => {
    const w = handlers.map((h) => spec.priorities?.get(h) ?? 1);
    return [w, w.some((x) => x !== w[0])];
  };
  const free = spec.handlers.filter((h) => !spec.limited.has(h));
  if (free.length > 0 && max > 0) {
    const { rows } = await db.query<FetchedRow>({
      name: `shardwork-take-${q}`,
      text: takeSql(q),
      values: [...base, free, max, spec.ordered, ...weights(free)],
    });
    for (const row of rows) jobs.push(fetchedJob(row));
  }
  for (const [handler, limit] of spec.limited) {
    if (jobs.length >= max) break;
    const taken = await inTransaction(db, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}|${owner.queue}|${handler}`]);
      const { rows: running } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${q}.jobs WHERE queue = $1 AND handler = $2 AND state = 'running'`,
        [owner.queue, handler],
      );
      const room = Math.min(max - jobs.length, limit - Number(running[0]?.n ?? 0));
      if (room <= 0) return [];
      const { rows } = await client.query<FetchedRow>(takeSql(q), [
        ...base,
        [handler],
        room,
        spec.ordered,
        ...weights([handler]),
      ]);
      return rows;
    });
    for (const row of taken) jobs.push(fetchedJob(row));
  }
  if (jobs.length >= max) return { jobs, nextDue: undefined };
  const { rows } = await db.query<{ next: string | null }>(
    `SELECT min(run_at) AS next FROM ${q}.jobs
     WHERE queue = $1 AND partition = $2 AND state IN ('scheduled', 'retrying') AND run_at > ${NOW} - $4
       AND handler = ANY($3)`,
    [owner.queue, owner.partition, spec.handlers, Math.ceil(performance.now() - began)],
  );
  const next = rows[0]?.next;
  return { jobs, nextDue: next === null || next === undefined ? undefined : Number(next) };
}

/**
 * Record completed attempts under `owner`. A job the owner does not run any
 * more (its token is old, or the partition's is) is not touched; a job
 * cancelled while it ran ends cancelled. Returns the ids recorded as completed.
 *
 * `forget` (the queue keeps no completed jobs): a completed job's row is
 * deleted in the same statement instead of kept for a trim, except one that
 * somebody waits for whose outcome is too long for its notice (the waiter
 * reads it back; the next trim removes it).
 */
export async function complete(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  owner: Owner,
  done: readonly Completion[],
  options: { readonly forget?: boolean } = {},
): Promise<string[]> {
  const q = quotedSchema(schema);
  const forget = options.forget === true;
  const matched = `j.queue = $1 AND j.partition = $2 AND j.id = d.id AND j.state = 'running' AND j.token = $3
         AND ${fenced(q)}`;
  // Deleted when forgotten: not cancelled, and its notice (if anybody waits) carries the outcome.
  const forgettable = `$6 AND j.cancel IS NULL AND NOT (j.waited
    AND octet_length(coalesce(d.result::text, '')) + octet_length(coalesce(j.error::text, '')) > ${MAX_RESULT_IN_NOTICE})`;
  const { rows } = await db.query<{ id: string; state: string }>({
    name: `shardwork-complete-${q}`,
    text: `WITH gone AS (
       DELETE FROM ${q}.jobs j USING unnest($4::text[], $5::json[]) AS d(id, result)
       WHERE ${matched} AND ${forgettable}
       RETURNING j.queue, j.id, 'completed'::text AS state, d.result, j.error, j.waited),
     kept AS (
       UPDATE ${q}.jobs j SET
         state = CASE WHEN j.cancel IS NULL THEN 'completed' ELSE 'cancelled' END,
         result = CASE WHEN j.cancel IS NULL THEN d.result ELSE NULL END,
         error = coalesce(j.cancel, j.error),
         finished_at = ${NOW},
         token = NULL
       FROM unnest($4::text[], $5::json[]) AS d(id, result)
       WHERE ${matched} AND NOT (${forgettable})
       RETURNING j.queue, j.id, j.state, j.result, j.error, j.waited),
     done AS (SELECT * FROM gone UNION ALL SELECT * FROM kept),
     noticed AS (${noticeOfDone(schema, 'done')})
     SELECT id, state FROM done, (SELECT count(*) FROM noticed) n`,
    values: [owner.queue, owner.partition, owner.token, done.map((d) => d.id), done.map((d) => d.result), forget],
  });
  return rows.filter((r) => r.state === 'completed').map((r) => r.id);
}

/**
 * Record failed attempts under `owner`: each job goes back to wait until its
 * `retryInMs` (`retrying`), or dead (`retryInMs` null), with its error and one
 * more fail; a job cancelled while it ran ends cancelled. A dead job no
 * longer holds its unique key. Jobs not running under the token are not
 * touched. Returns `[id, state]` of the jobs recorded.
 */
export async function fail(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  owner: Owner,
  failed: readonly Failure[],
): Promise<[string, 'retrying' | 'dead' | 'cancelled'][]> {
  const q = quotedSchema(schema);
  const { rows } = await db.query<{ id: string; state: 'retrying' | 'dead' | 'cancelled' }>(
    `WITH done AS (
       UPDATE ${q}.jobs j SET
         state = CASE WHEN j.cancel IS NOT NULL THEN 'cancelled' WHEN f.retry_in IS NULL THEN 'dead' ELSE 'retrying' END,
         fails = j.fails + 1,
         error = coalesce(j.cancel, f.error),
         run_at = coalesce(${NOW} + f.retry_in, j.run_at),
         finished_at = CASE WHEN j.cancel IS NOT NULL OR f.retry_in IS NULL THEN ${NOW} END,
         token = NULL
       FROM unnest($4::text[], $5::json[], $6::bigint[]) AS f(id, error, retry_in)
       WHERE j.queue = $1 AND j.partition = $2 AND j.id = f.id AND j.state = 'running' AND j.token = $3
         AND ${fenced(q)}
       RETURNING j.queue, j.id, j.state, j.result, j.error, j.waited),
     noticed AS (${noticeOfDone(schema, 'done')})
     SELECT id, state FROM done, (SELECT count(*) FROM noticed) n`,
    [
      owner.queue,
      owner.partition,
      owner.token,
      failed.map((f) => f.id),
      failed.map((f) => f.error),
      failed.map((f) => f.retryInMs),
    ],
  );
  return rows.map((r) => [r.id, r.state]);
}

/**
 * Put running jobs of `owner` back to ready (their attempt was aborted: the
 * queue stopping past its timeout, the partition handed over); a job
 * cancelled meanwhile ends cancelled. Returns how many went back.
 */
export async function putBack(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  owner: Owner,
  ids: readonly string[],
): Promise<number> {
  const q = quotedSchema(schema);
  const { rows } = await db.query<{ state: string }>(
    `WITH back AS (
       UPDATE ${q}.jobs SET ${BACK}
       WHERE queue = $1 AND partition = $2 AND id = ANY($4) AND state = 'running' AND token = $3 AND ${fenced(q)}
       RETURNING queue, id, state, result, error, waited),
     noticed AS (${noticeOfDone(schema, 'back')})
     SELECT state FROM back, (SELECT count(*) FROM noticed) n`,
    [owner.queue, owner.partition, owner.token, ids],
  );
  return rows.filter((r) => r.state === 'ready').length;
}

/**
 * Put back the jobs running under `owner` that it does not run (`running`:
 * the ids it does run): what a fetch took whose reply was lost (the server
 * crashed or the connection broke after the commit). Only the owner fetches
 * under its token, so anything else running under it is such a job. Returns
 * how many went back.
 */
export async function putBackOrphans(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  owner: Owner,
  running: readonly string[],
): Promise<number> {
  const q = quotedSchema(schema);
  const { rows } = await db.query<{ state: string }>(
    `WITH back AS (
       UPDATE ${q}.jobs SET ${BACK}
       WHERE queue = $1 AND partition = $2 AND state = 'running' AND token = $3 AND NOT (id = ANY($4))
         AND ${fenced(q)}
       RETURNING queue, id, state, result, error, waited),
     noticed AS (${noticeOfDone(schema, 'back')})
     SELECT state FROM back, (SELECT count(*) FROM noticed) n`,
    [owner.queue, owner.partition, owner.token, running],
  );
  return rows.length;
}

/** Options of {@link completeInTransaction}. */
export interface CompleteInTransactionOptions<T> {
  /** The job's result as JSON text. @defaultValue `JSON.stringify(value ?? null)` */
  readonly resultJson?: (value: T) => string;
  /**
   * The server ends the session (rolling the transaction back) once it has
   * waited this long for the client between statements: a frozen owner
   * (SIGSTOP, a stalled network) then holds the fence row no longer than this,
   * and the takeover that waits for it goes on. The adapter gives its lease
   * TTL. @defaultValue no limit
   */
  readonly idleTimeoutMs?: number;
}

/**
 * Run `work` in one transaction with the completion of job `id` under
 * `owner`: the partition's fence row is locked `FOR SHARE` first (a takeover
 * waits for this transaction), and if the token is not the partition's any
 * more, or the job is no longer running under it, nothing of `work` commits:
 * rejects with `NotOwnerError`. Resolves with what `work` returned once both
 * committed together.
 */
export async function completeInTransaction<T>(
  db: pg.Pool,
  schema: string,
  owner: Owner,
  id: string,
  work: (client: pg.PoolClient) => Promise<T>,
  options: CompleteInTransactionOptions<T> = {},
): Promise<T> {
  const q = quotedSchema(schema);
  const resultJson = options.resultJson ?? ((value: T) => JSON.stringify(value ?? null));
  return inTransaction(db, async (client) => {
    if (options.idleTimeoutMs !== undefined) {
      // Before the lock is taken: a client frozen right after it must not hold it for good.
      await client.query(
        `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.floor(options.idleTimeoutMs))}`,
      );
    }
    const { rows } = await client.query<{ token: string }>(
      `SELECT token FROM ${q}.fences WHERE queue = $1 AND partition = $2 FOR SHARE`,
      [owner.queue, owner.partition],
    );
    const current = rows[0] === undefined ? undefined : Number(rows[0].token);
    const words = partitionWords(owner.queue);
    if (current !== owner.token) {
      throw new NotOwnerError(
        owner.partition,
        owner.token,
        `the partition's fencing token is ${current ?? 'gone'} now; nothing of the transaction was committed`,
        words,
      );
    }
    const value = await work(client);
    const recorded = await complete(client, schema, owner, [{ id, result: resultJson(value) }]);
    if (recorded.length !== 1) {
      throw new NotOwnerError(
        owner.partition,
        owner.token,
        `job ${id} is not running under this token (put back, cancelled or finished); nothing of the transaction was committed`,
        words,
      );
    }
    return value;
  });
}
