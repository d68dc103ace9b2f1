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
import { NOW } from './sql.js';

/** Delete the jobs of `state` in `queue` beyond `keep`; returns how many. */
export async function trimFinished(
  db: pg.ClientBase | pg.Pool,
  schema: string,
  queue: string,
  state: 'completed' | 'cancelled',
  keep: { readonly count: number; readonly ageMs: number },
): Promise<number> {
  const q = quotedSchema(schema);
  const { rowCount } = await db.query({
    name: `shardwork-trim-${q}`,
    text: `DELETE FROM ${q}.jobs
     WHERE queue = $1 AND state = $2
       AND ((finished_at, seq) <= (SELECT finished_at, seq FROM ${q}.jobs
                                  WHERE queue = $1 AND state = $2
                                  ORDER BY finished_at DESC, seq DESC OFFSET $3 LIMIT 1)
            OR finished_at < ${NOW} - $4)
       AND NOT (waited AND octet_length(coalesce(result::text, '')) > 7000 AND finished_at >= ${NOW} - $4)`,
    values: [queue, state, keep.count, keep.ageMs],
  });
  return rowCount ?? 0;
}
