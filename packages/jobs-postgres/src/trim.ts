/**
 * Retention of finished jobs (the queue's `keepCompleted`): the newest
 * `count` jobs of a state are kept per queue, none older than `ageMs`. Run in
 * the transaction that finished jobs, so a reader never sees more than the
 * count. A job somebody waits for whose outcome was too long to send with
 * its notice stays until its age runs out, so the waiter can read it back.
 *
 * @module
 */

import type pg from 'pg';
import { quotedSchema } from './migrate.js';
import { MAX_RESULT_IN_NOTICE, NOW } from './sql.js';

/** Delete the jobs of `state` in `queue` beyond `keep`; returns how many. */
export async function trimFinished(
  db: pg.ClientBase | pg.Pool,
  schema: string,
  queue: string,
  state: 'completed' | 'cancelled',
  keep: { readonly count: number; readonly ageMs: number },
): Promise<number> {
  const q = quotedSchema(schema);
  // One bound, the later of the count's and the age's, so that the index on
  // (queue, state, finished_at, seq) serves the delete as one range.
  const { rowCount } = await db.query({
    name: `shardwork-trim-${q}`,
    text: `WITH cut AS (SELECT ${NOW} - $4 AS ms),
     kept AS (
       SELECT b.f, b.s FROM (SELECT 1) one LEFT JOIN LATERAL (
         SELECT finished_at AS f, seq AS s FROM ${q}.jobs
         WHERE queue = $1 AND state = $2
         ORDER BY finished_at DESC, seq DESC OFFSET $3 LIMIT 1) b ON true),
     bound AS (
       SELECT CASE WHEN kept.f IS NULL OR kept.f < cut.ms THEN cut.ms - 1 ELSE kept.f END AS f,
              CASE WHEN kept.f IS NULL OR kept.f < cut.ms THEN 9223372036854775807 ELSE kept.s END AS s
       FROM kept, cut)
     DELETE FROM ${q}.jobs
     WHERE queue = $1 AND state = $2 AND (finished_at, seq) <= (SELECT f, s FROM bound)
       AND NOT (waited AND octet_length(coalesce(result::text, '')) + octet_length(coalesce(error::text, '')) > ${MAX_RESULT_IN_NOTICE}
                AND finished_at >= (SELECT ms FROM cut))`,
    values: [queue, state, keep.count, keep.ageMs],
  });
  return rowCount ?? 0;
}
