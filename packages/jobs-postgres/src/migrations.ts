/**
 * The versioned schema of the PostgreSQL job store. Each migration is SQL
 * applied once, in order, in one transaction with its row in `migrations`;
 * migrations only ever add (tables, columns, indexes): never a drop or a
 * rewrite of rows, so a database stays readable by the version before.
 * `{schema}` is replaced by the quoted schema name.
 *
 * The design, for the adapter built on it:
 * - `queues`: one row per queue: its partition count (the shards of the
 *   queue's coordinator group) and an `epoch`, the marker of this incarnation
 *   of the data (a restored or recreated database is noticed, as Redis's is).
 * - `fences`: the fencing token of each partition's current owner. Every
 *   change of a job by its partition's owner checks the token in the same
 *   statement; a handler's own transaction (`ctx.transaction`) locks the
 *   partition's row `FOR SHARE` and checks it, so a new owner's token update
 *   waits for that transaction and a zombie's writes and completion commit
 *   together or not at all.
 * - `jobs`: one row per job from enqueue until it is trimmed, in every state.
 *   `args`, `result` and `progress` are `json` (the text as given, never
 *   re-encoded: numbers keep their digits, keys their order). Times are ms
 *   since the epoch from the server's clock. `seq` orders the jobs of an
 *   ordered key by when they became due.
 *   `waited` marks a job somebody awaits (`waitFor`): its finishing
 *   statement sends its outcome on the wake channel.
 * - `paused`: paused handlers, and `*` for a paused queue.
 * - `cron`: the newest tick enqueued per periodic job (once per tick).
 * - `given_ids`: ids callers chose, kept for the idempotency window after
 *   the job itself is gone.
 * - `throughput`: attempts completed and failed per queue and minute.
 *
 * @module
 */

/** One step of the schema. */
export interface Migration {
  /** 1, 2, 3, …: applied in order, each once. */
  readonly version: number;
  /** What it adds, for the `migrations` table and messages. */
  readonly name: string;
  /** The SQL, `{schema}` standing for the quoted schema name. */
  readonly sql: string;
}

/** Every migration, in order. Append only: a released migration never changes. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs, queues, fences, paused handlers, cron ticks, given ids, throughput',
    sql: `
CREATE TABLE {schema}.queues (
  queue text PRIMARY KEY,
  partitions integer NOT NULL CHECK (partitions > 0),
  epoch text NOT NULL
);
CREATE TABLE {schema}.fences (
  queue text NOT NULL,
  partition integer NOT NULL CHECK (partition >= 0),
  token bigint NOT NULL,
  PRIMARY KEY (queue, partition)
);
CREATE SEQUENCE {schema}.job_seq AS bigint;
CREATE TABLE {schema}.jobs (
  queue text NOT NULL,
  id text NOT NULL,
  partition integer NOT NULL CHECK (partition >= 0),
  handler text NOT NULL,
  state text NOT NULL
    CHECK (state IN ('scheduled', 'ready', 'running', 'retrying', 'completed', 'dead', 'cancelled')),
  key text,
  ordered boolean NOT NULL DEFAULT false,
  unique_key text,
  priority integer CHECK (priority BETWEEN 1 AND 100000),
  args json NOT NULL,
  traceparent text,
  enqueued_at bigint NOT NULL,
  run_at bigint NOT NULL,
  seq bigint NOT NULL DEFAULT nextval('{schema}.job_seq'),
  fails integer NOT NULL DEFAULT 0 CHECK (fails >= 0),
  token bigint,
  started_at bigint,
  finished_at bigint,
  result json,
  progress json,
  error json,
  cancel json,
  waited boolean NOT NULL DEFAULT false,
  PRIMARY KEY (queue, id)
);
CREATE INDEX jobs_id ON {schema}.jobs (id);
CREATE INDEX jobs_waiting ON {schema}.jobs (queue, partition, run_at, seq)
  WHERE state IN ('scheduled', 'ready', 'retrying');
CREATE INDEX jobs_running ON {schema}.jobs (queue, partition) WHERE state = 'running';
CREATE INDEX jobs_prioritized ON {schema}.jobs (queue, partition)
  WHERE priority IS NOT NULL AND state IN ('scheduled', 'ready', 'retrying');
CREATE INDEX jobs_finished ON {schema}.jobs (queue, state, finished_at, seq)
  WHERE state IN ('completed', 'dead', 'cancelled');
CREATE INDEX jobs_lines ON {schema}.jobs (queue, partition, key, seq)
  WHERE ordered AND state IN ('scheduled', 'ready', 'running', 'retrying');
CREATE UNIQUE INDEX jobs_unique ON {schema}.jobs (queue, unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'ready', 'running', 'retrying');
CREATE TABLE {schema}.paused (
  queue text NOT NULL,
  handler text NOT NULL,
  PRIMARY KEY (queue, handler)
);
CREATE TABLE {schema}.cron (
  queue text NOT NULL,
  name text NOT NULL,
  last_tick bigint NOT NULL,
  PRIMARY KEY (queue, name)
);
CREATE TABLE {schema}.given_ids (
  queue text NOT NULL,
  id text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (queue, id)
);
CREATE TABLE {schema}.throughput (
  queue text NOT NULL,
  minute bigint NOT NULL,
  completed integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
);
`,
  },
];

/** The newest schema version this package knows. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;
