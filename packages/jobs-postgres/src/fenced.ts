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
}

/** A failed attempt to record. */
export interface Failure {
  readonly id: string;
  /** The error as JSON text (shardwork's `JobErrorInfo`). */
  readonly error: string;
  /** When to try again (ms since the epoch), or `null`: the job goes dead. */
  readonly retryAt: number | null;
}

/** A finished attempt to record. */
export interface Completion {
  readonly id: string;
  /** The result as JSON text (`null` for none). */
  readonly result: string;
}

const NOW = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

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
export async function takeOver(db: pg.Pool, schema: string, owner: Owner): Promise<boolean> {
  const q = quotedSchema(schema);
  return inTransaction(db, async (client) => {
    const { rowCount } = await client.query(
      `INSERT INTO ${q}.fences (queue, partition, token) VALUES ($1, $2, $3)
       ON CONFLICT (queue, partition) DO UPDATE SET token = EXCLUDED.token WHERE ${q}.fences.token <= EXCLUDED.token`,
      [owner.queue, owner.partition, owner.token],
    );
    if (rowCount !== 1) return false;
    await client.query(
      `UPDATE ${q}.jobs SET ${BACK}
       WHERE queue = $1 AND partition = $2 AND state = 'running' AND token < $3`,
      [owner.queue, owner.partition, owner.token],
    );
    return true;
  });
}

/** The fence check of a statement: the partition's token is still `$3`. */
const fenced = (q: string): string =>
  `EXISTS (SELECT 1 FROM ${q}.fences f WHERE f.queue = $1 AND f.partition = $2 AND f.token = $3)`;

/**
 * Take up to `max` due jobs of `handlers` (oldest due first) to run under
 * `owner`: they become running with its token. Nothing when the token is not
 * the partition's any more.
 */
export async function fetchDue(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  owner: Owner,
  handlers: readonly string[],
  max: number,
): Promise<FetchedJob[]> {
  const q = quotedSchema(schema);
  const { rows } = await db.query<{
    id: string;
    handler: string;
    key: string | null;
    args: string;
    fails: number;
    run_at: string;
    enqueued_at: string;
  }>(
    `WITH picked AS (
       SELECT id FROM ${q}.jobs
       WHERE queue = $1 AND partition = $2 AND state IN ('scheduled', 'ready', 'retrying')
         AND run_at <= ${NOW} AND handler = ANY($4) AND ${fenced(q)}
       ORDER BY run_at, seq
       LIMIT $5
       FOR UPDATE SKIP LOCKED)
     UPDATE ${q}.jobs j SET state = 'running', token = $3, started_at = ${NOW}
     FROM picked WHERE j.queue = $1 AND j.id = picked.id
     RETURNING j.id, j.handler, j.key, j.args::text AS args, j.fails, j.run_at, j.enqueued_at`,
    [owner.queue, owner.partition, owner.token, handlers, max],
  );
  return rows.map((r) => ({
    id: r.id,
    handler: r.handler,
    key: r.key,
    args: r.args,
    fails: r.fails,
    runAt: Number(r.run_at),
    enqueuedAt: Number(r.enqueued_at),
  }));
}

/**
 * Record completed attempts under `owner`. A job the owner does not run any
 * more (its token is old, or the partition's is) is not touched; a job
 * cancelled while it ran ends cancelled. Returns the ids recorded as completed.
 */
export async function complete(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  owner: Owner,
  done: readonly Completion[],
): Promise<string[]> {
  const q = quotedSchema(schema);
  const { rows } = await db.query<{ id: string; state: string }>(
    `UPDATE ${q}.jobs j SET
       state = CASE WHEN j.cancel IS NULL THEN 'completed' ELSE 'cancelled' END,
       result = CASE WHEN j.cancel IS NULL THEN d.result ELSE NULL END,
       error = coalesce(j.cancel, j.error),
       finished_at = ${NOW},
       token = NULL
     FROM unnest($4::text[], $5::json[]) AS d(id, result)
     WHERE j.queue = $1 AND j.partition = $2 AND j.id = d.id AND j.state = 'running' AND j.token = $3
       AND ${fenced(q)}
     RETURNING j.id, j.state`,
    [owner.queue, owner.partition, owner.token, done.map((d) => d.id), done.map((d) => d.result)],
  );
  return rows.filter((r) => r.state === 'completed').map((r) => r.id);
}

/**
 * Record failed attempts under `owner`: each job goes back to wait until its
 * `retryAt` (`retrying`), or dead (`retryAt` null), with its error and one
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
    `UPDATE ${q}.jobs j SET
       state = CASE WHEN j.cancel IS NOT NULL THEN 'cancelled' WHEN f.retry_at IS NULL THEN 'dead' ELSE 'retrying' END,
       fails = j.fails + 1,
       error = coalesce(j.cancel, f.error),
       run_at = coalesce(f.retry_at, j.run_at),
       finished_at = CASE WHEN j.cancel IS NOT NULL OR f.retry_at IS NULL THEN ${NOW} END,
       token = NULL
     FROM unnest($4::text[], $5::json[], $6::bigint[]) AS f(id, error, retry_at)
     WHERE j.queue = $1 AND j.partition = $2 AND j.id = f.id AND j.state = 'running' AND j.token = $3
       AND ${fenced(q)}
     RETURNING j.id, j.state`,
    [
      owner.queue,
      owner.partition,
      owner.token,
      failed.map((f) => f.id),
      failed.map((f) => f.error),
      failed.map((f) => f.retryAt),
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
    `UPDATE ${q}.jobs SET ${BACK}
     WHERE queue = $1 AND partition = $2 AND id = ANY($4) AND state = 'running' AND token = $3 AND ${fenced(q)}
     RETURNING state`,
    [owner.queue, owner.partition, owner.token, ids],
  );
  return rows.filter((r) => r.state === 'ready').length;
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
  resultJson: (value: T) => string = (value) => JSON.stringify(value ?? null),
): Promise<T> {
  const q = quotedSchema(schema);
  return inTransaction(db, async (client) => {
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
