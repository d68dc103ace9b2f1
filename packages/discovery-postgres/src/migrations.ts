/**
 * The versioned schema of the PostgreSQL discovery backend. Each migration is
 * SQL applied once, in order, in one transaction with its row in
 * `discovery_migrations`; migrations only ever add, never drop or rewrite.
 * `{schema}` is replaced by the quoted schema name.
 *
 * - `services`: one row per service that ever changed: `revision`, the
 *   revision of its latest change (from the `revisions` sequence, so it
 *   only grows, even across `forgetService`), and its group record
 *   `settings` (JSON text `{"shardCount":8,"leaseTtlMs":10000}`; NULL: none).
 *   Every change of a service locks this row first: changes of one service
 *   are serialized and their revisions increase in commit order.
 * - `members`: one row per live member: its record (core's member record
 *   JSON, kept as text so that a row that does not parse is reported, not
 *   fatal), join order, TTL and `expires_at` by the server's clock.
 * - `claims`: one row per owned shard: owner and fencing token (from the
 *   `fencing_tokens` sequence). No foreign key to `members`: a member's
 *   claims are deleted with it in the same statement, and a row written by
 *   hand that names no live member is reported and repaired.
 * - `revisions` and `fencing_tokens` start at the server's time in µs since
 *   the epoch (about 2^50, exact in a JavaScript number until the year
 *   2255): a schema dropped and created again still hands out revisions
 *   and tokens above those of before (as Redis re-seeds its counters),
 *   unless more than one per µs was used. (A schema restored from an old
 *   backup is not covered: its sequences go back with it.)
 *
 * @module
 */

/** One step of the schema. */
export interface Migration {
  /** 1, 2, 3, …: applied in order, each once. */
  readonly version: number;
  /** What it adds, for the bookkeeping table and messages. */
  readonly name: string;
  /** The SQL, `{schema}` standing for the quoted schema name. */
  readonly sql: string;
}

/** Every migration, in order. Append only: a released migration never changes. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'services, members, claims; revision, join order and fencing token sequences',
    sql: `
CREATE SEQUENCE {schema}.revisions AS bigint;
CREATE SEQUENCE {schema}.join_order AS bigint;
CREATE SEQUENCE {schema}.fencing_tokens AS bigint;
CREATE TABLE {schema}.services (
  service text PRIMARY KEY,
  revision bigint NOT NULL,
  settings text,
  created_at timestamptz
);
CREATE TABLE {schema}.members (
  service text NOT NULL,
  id text NOT NULL,
  record text NOT NULL,
  join_seq bigint NOT NULL,
  ttl_ms integer NOT NULL,
  expires_at timestamptz NOT NULL,
  draining boolean NOT NULL DEFAULT false,
  PRIMARY KEY (service, id)
);
CREATE INDEX members_expiry ON {schema}.members (service, expires_at);
CREATE TABLE {schema}.claims (
  service text NOT NULL,
  shard integer NOT NULL,
  owner text NOT NULL,
  token bigint NOT NULL,
  PRIMARY KEY (service, shard)
);
CREATE INDEX claims_owner ON {schema}.claims (service, owner);
SELECT setval('{schema}.revisions', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
SELECT setval('{schema}.fencing_tokens', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
`,
  },
];

/** The version this package reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
