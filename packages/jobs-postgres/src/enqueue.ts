/**
 * Storing jobs: one statement for a whole batch, on the caller's connection
 * when it gives one, so that `perform(job, { client })` inside the
 * application's transaction stores the job if and only if the transaction
 * commits (the outbox problem), and the wake-up of the partition's owner
 * (`NOTIFY`) is delivered only then too.
 *
 * A job is not stored, and its result says `duplicate`, when its caller-chosen
 * id is known (a job with it, or an id given within the idempotency window),
 * or when its unique key is held by a waiting or running job; the result's id
 * is then the holder's. Within a batch the first job with a unique key holds
 * it. Two transactions that store the same unique key at once: the second
 * waits for the first (the unique index), and then finds the holder.
 *
 * @module
 */

import { ShardworkError } from '@shardwork/core';
import type { JobRecord } from '@shardwork/jobs/adapter';
import type pg from 'pg';
import { quotedSchema } from './migrate.js';
import { wakeChannel } from './sql.js';

/** A job to store: the fields of a shardwork job record this store keeps, and its partition. */
export interface StoredJob {
  readonly id: string;
  /** Whether the caller chose the id (idempotent perform). */
  readonly idGiven?: boolean;
  readonly queue: string;
  readonly handler: string;
  readonly partition: number;
  readonly key: string | undefined;
  readonly uniqueKey: string | undefined;
  readonly ordered: boolean;
  readonly priority?: number | undefined;
  /** The args as checked JSON text (stored as given). */
  readonly argsJson: string;
  readonly traceparent?: string | undefined;
  readonly enqueuedAt: number;
  readonly runAt: number;
}

/** What storing one job came to. */
export interface StoreResult {
  /** The job's id, or the holder's for a duplicate. */
  readonly id: string;
  readonly duplicate: boolean;
}

/** A queue is stored with another partition count than the caller's: nothing was stored. */
export class PartitionCountMismatchError extends ShardworkError<'PARTITION_COUNT_MISMATCH'> {
  readonly queue: string;
  readonly stored: number;
  readonly given: number;

  constructor(queue: string, stored: number, given: number) {
    super(
      'PARTITION_COUNT_MISMATCH',
      `queue "${queue}" is stored with ${stored} partitions and this process uses ${given}: every process of a queue must use the same partitions option; nothing was stored`,
    );
    this.name = 'PartitionCountMismatchError';
    this.queue = queue;
    this.stored = stored;
    this.given = given;
  }
}

/**
 * Register the queues of a batch (partition count, data epoch) if they are
 * new, and check the partition count of those that are not.
 */
export async function ensureQueues(
  db: pg.ClientBase | pg.Pool,
  q: string,
  queues: readonly string[],
  partitions: number,
): Promise<void> {
  const { rows } = await db.query<{ queue: string; partitions: number }>(
    `WITH given AS (SELECT unnest($1::text[]) AS queue),
          added AS (
            INSERT INTO ${q}.queues (queue, partitions, epoch)
            SELECT queue, $2, md5(random()::text || clock_timestamp()::text) FROM given
            ON CONFLICT (queue) DO NOTHING
            RETURNING queue, partitions)
     SELECT queue, partitions FROM added
     UNION ALL
     SELECT s.queue, s.partitions FROM ${q}.queues s JOIN given USING (queue)`,
    [queues, partitions],
  );
  for (const row of rows) {
    if (row.partitions !== partitions) throw new PartitionCountMismatchError(row.queue, row.partitions, partitions);
  }
}

/**
 * Store `jobs` (one statement; on `db`, the caller's client inside its
 * transaction or a pool) and wake the owners of the partitions that got ready
 * jobs. Results in input order. `givenWindowMs`: how long a caller-chosen id
 * stays known after its perform. `partitions`: the partition count of the
 * caller, checked against the stored one of each queue.
 */
export async function storeJobs(
  db: pg.ClientBase | pg.Pool,
  schema: string,
  jobs: readonly StoredJob[],
  options: {
    readonly partitions: number;
    readonly givenWindowMs: number;
    /**
     * Queues known to be registered with this partition count: their check is
     * skipped, and the queues checked here are added once it succeeds. Give it
     * only for statements that commit on their own (not inside a caller's
     * transaction, which may roll the registration back).
     */
    readonly known?: Set<string>;
  },
): Promise<StoreResult[]> {
  const q = quotedSchema(schema);
  if (jobs.length === 0) return [];
  const unknown = [...new Set(jobs.map((j) => j.queue))].filter((queue) => options.known?.has(queue) !== true);
  if (unknown.length > 0) {
    await ensureQueues(db, q, unknown, options.partitions);
    for (const queue of unknown) options.known?.add(queue);
  }
  const col = <T>(f: (j: StoredJob) => T): T[] => jobs.map(f);
  const { rows } = await db.query<{ n: string; id: string; stored: boolean; holder: string | null }>({
    name: `shardwork-store-${q}`,
    text: `WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
     input AS (
       SELECT t.*, (t.run_at > (SELECT ms FROM now)) AS later
       FROM unnest($1::text[], $2::boolean[], $3::text[], $4::text[], $5::integer[], $6::text[], $7::text[],
                   $8::boolean[], $9::integer[], $10::json[], $11::text[], $12::bigint[], $13::bigint[])
            WITH ORDINALITY AS t(id, given, queue, handler, partition, key, unique_key, ordered, priority, args,
                                 traceparent, enqueued_at, run_at, n)),
     fresh AS (
       SELECT * FROM input i
       WHERE NOT (i.given AND EXISTS (
         SELECT 1 FROM ${q}.given_ids g WHERE g.queue = i.queue AND g.id = i.id AND g.expires_at > (SELECT ms FROM now)))),
     inserted AS (
       INSERT INTO ${q}.jobs (queue, id, partition, handler, state, key, ordered, unique_key, priority, args,
                              traceparent, enqueued_at, run_at)
       SELECT queue, id, partition, handler, CASE WHEN later THEN 'scheduled' ELSE 'ready' END, key, ordered,
              unique_key, priority, args, traceparent, enqueued_at, run_at
       FROM fresh ORDER BY n
       ON CONFLICT DO NOTHING
       RETURNING queue, id, partition, unique_key, state),
     -- (A data-modifying WITH runs whether or not it is read; woke is a SELECT, so it is read below.)
     remembered AS (
       INSERT INTO ${q}.given_ids (queue, id, expires_at)
       SELECT i.queue, i.id, (SELECT ms FROM now) + $14 FROM input i JOIN inserted USING (queue, id)
       WHERE i.given AND $14 > 0
       ON CONFLICT (queue, id) DO UPDATE SET expires_at = EXCLUDED.expires_at),
     woke AS (
       SELECT pg_notify($15, w.queue || '|' || w.partition)
       FROM (SELECT DISTINCT queue, partition FROM inserted) w)
     -- Joins, not a subquery per row: a batch of 1,000 must not compare every row with every other.
     SELECT i.n, i.id, s.id IS NOT NULL AS stored,
            CASE WHEN i.unique_key IS NULL THEN NULL ELSE coalesce(u.id,
              (SELECT j.id FROM ${q}.jobs j WHERE j.queue = i.queue AND j.unique_key = i.unique_key
                 AND j.state IN ('scheduled', 'ready', 'running', 'retrying'))) END AS holder
     FROM input i
       LEFT JOIN inserted s ON s.queue = i.queue AND s.id = i.id
       LEFT JOIN inserted u ON u.queue = i.queue AND u.unique_key = i.unique_key,
       (SELECT count(*) FROM woke) AS w
     ORDER BY i.n`,
    values: [
      col((j) => j.id),
      col((j) => j.idGiven === true),
      col((j) => j.queue),
      col((j) => j.handler),
      col((j) => j.partition),
      col((j) => j.key ?? null),
      col((j) => j.uniqueKey ?? null),
      col((j) => j.ordered),
      col((j) => j.priority ?? null),
      col((j) => j.argsJson),
      col((j) => j.traceparent ?? null),
      col((j) => j.enqueuedAt),
      col((j) => j.runAt),
      options.givenWindowMs,
      wakeChannel(schema),
    ],
  });
  const results = rows.map((row, i): StoreResult => {
    const job = jobs[i] as StoredJob;
    if (row.stored) return { id: job.id, duplicate: false };
    // Not stored: a known given id, or a held unique key (holder '' for now: it committed after this statement began).
    return { id: job.idGiven === true && row.holder === null ? job.id : (row.holder ?? ''), duplicate: true };
  });
  // A holder that committed while this statement waited on the unique index: read it with a new snapshot.
  for (const [i, result] of results.entries()) {
    if (result.id !== '') continue;
    const job = jobs[i] as StoredJob;
    const { rows: held } = await db.query<{ id: string }>(
      `SELECT id FROM ${q}.jobs WHERE queue = $1 AND unique_key = $2
         AND state IN ('scheduled', 'ready', 'running', 'retrying')`,
      [job.queue, job.uniqueKey],
    );
    results[i] = { id: held[0]?.id ?? job.id, duplicate: true };
  }
  return results;
}

/** The row of a job record, in `partition`. */
export function storedJob(record: JobRecord, partition: number): StoredJob {
  return {
    id: record.id,
    idGiven: record.idGiven === true,
    queue: record.queue,
    handler: record.handler,
    partition,
    key: record.key,
    uniqueKey: record.uniqueKey,
    ordered: record.ordered,
    priority: record.priority,
    argsJson: record.argsJson,
    traceparent: record.traceparent,
    enqueuedAt: record.enqueuedAt,
    runAt: record.runAt,
  };
}
