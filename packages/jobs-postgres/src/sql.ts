/**
 * SQL fragments every statement of the job store shares: the server's clock
 * in ms, the states a job waits in, and the notice a finished job sends its
 * waiters (`<queue>|done|<outcome JSON>` on the schema's wake channel, only
 * for jobs somebody waits for, delivered at commit).
 *
 * @module
 */

/**
 * Now, ms since the epoch, by the server's clock: the start of the current
 * statement. `statement_timestamp()` is stable within a statement, so every
 * row of it sees one now and an index can serve `run_at <= now` (a fetch
 * then reads only the due jobs it takes, not every waiting one).
 */
export const NOW = '(extract(epoch FROM statement_timestamp()) * 1000)::bigint';

/** The states of a job that still holds its place (its unique key, its key's line). */
export const ACTIVE = `('scheduled', 'ready', 'running', 'retrying')`;

/** The states of a job that has finished. */
export const FINISHED = `('completed', 'dead', 'cancelled')`;

/** The wake channel of a schema (NOTIFY and LISTEN take it as an identifier). */
export const wakeChannel = (schema: string): string => `shardwork_${schema}`;

/** Longest outcome sent whole in a notice (NOTIFY takes at most 8000 bytes); longer ones are read back by the waiter. */
const MAX_NOTICE = 7800;

/**
 * A finished job whose result and error together are longer than this may
 * not fit its notice: a waiter then reads it back, so it is kept (until its
 * age runs out) even where finished jobs are not.
 */
export const MAX_RESULT_IN_NOTICE = 7000;

/**
 * A SELECT over `rows` (a CTE with `queue, id, state, result, error, waited`)
 * that sends the outcome of each finished job somebody waits for. Put it in
 * a CTE that the statement reads (`(SELECT count(*) FROM <it>)`), or it is
 * not run.
 */
export function noticeOfDone(schema: string, rows: string): string {
  const outcome = `json_build_object('id', r.id, 'state', r.state, 'result', r.result, 'error', r.error)::text`;
  const brief = `json_build_object('id', r.id, 'state', r.state, 'big', true)::text`;
  return `SELECT pg_notify('${wakeChannel(schema)}', r.queue || '|done|' ||
      CASE WHEN octet_length(${outcome}) <= ${MAX_NOTICE} THEN ${outcome} ELSE ${brief} END)
    FROM ${rows} r WHERE r.waited AND r.state IN ${FINISHED}`;
}
