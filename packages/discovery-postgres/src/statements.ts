/**
 * The SQL of the backend, per schema, in one place. `$1` is always the
 * service. Every expiry decision compares with `clock_timestamp()`, the
 * server's clock: client clocks are never compared.
 *
 * @module
 */

/** The statements for one (quoted) schema. */
export interface Statements {
  /** Lock the service row (creating it), returning the revision before this change and the group record. */
  readonly lock: string;
  /** Delete the expired members and their claims; returns the ids removed. */
  readonly reap: string;
  /** Bump the revision and NOTIFY: `$2` channel, `$3` previous revision, `$4` the `,"c":[…]` part. */
  readonly bump: string;
  /** ms until the earliest lease of the service runs out (`$2`: a member to leave out, or ''). */
  readonly nextExpiry: string;
  /** The revision, and whether a member has expired but was not reaped yet. */
  readonly version: string;
  /** Revision, group record, members and claims in one statement (one MVCC snapshot). */
  readonly snapshot: string;
  /** Insert or replace a member: `$2` id, `$3` record, `$4` TTL ms; returns its join order. */
  readonly register: string;
  /** Renew `$2` and check the held claims `$3` shards, `$4` tokens; see `renew` in postgres-discovery.ts. */
  readonly renew: string;
  /** Delete member `$2` and its claims; returns its id when it was there. */
  readonly unregister: string;
  /** The live member `$2`, locked. */
  readonly member: string;
  /** Mark member `$2` draining. */
  readonly drain: string;
  /** Claims of shards `$2` with whether their owner is a member row. */
  readonly heldClaims: string;
  /** Delete the claims of shards `$2`. */
  readonly deleteClaims: string;
  /** Claim shards `$3` for `$2`, a token each from the sequence. */
  readonly insertClaims: string;
  /** Delete the claims `$3` shards / `$4` tokens of owner `$2`; returns the deleted ones. */
  readonly release: string;
  /** Write the group record `$2`. */
  readonly writeGroup: string;
  /** Ids of every member row of the service. */
  readonly memberIds: string;
  /** Forget: delete all claims, then clear the group record; each returns a row per record removed. */
  readonly forgetClaims: string;
  readonly forgetGroup: string;
  /** Services with a group record, sorted. */
  readonly services: string;
}

/** The statements of schema `q` (quoted). */
export function statements(q: string): Statements {
  const seq = (name: string): string => `'${q.replaceAll("'", "''")}.${name}'`;
  return {
    lock:
      `INSERT INTO ${q}.services AS sv (service, revision) VALUES ($1, 0) ` +
      'ON CONFLICT (service) DO UPDATE SET revision = sv.revision RETURNING revision::text, settings',
    reap:
      `WITH gone AS (DELETE FROM ${q}.members WHERE service = $1 AND expires_at <= clock_timestamp() RETURNING id), ` +
      `dropped AS (DELETE FROM ${q}.claims c USING gone WHERE c.service = $1 AND c.owner = gone.id) ` +
      'SELECT id FROM gone ORDER BY id',
    bump:
      `WITH bumped AS (UPDATE ${q}.services SET revision = nextval(${seq('revisions')}) WHERE service = $1 RETURNING revision) ` +
      `SELECT revision::text AS revision, pg_notify($2, '{"p":"' || $3::text || '","r":"' || revision || '"' || $4::text || '}') FROM bumped`,
    nextExpiry:
      'SELECT (extract(epoch FROM min(expires_at) - clock_timestamp()) * 1000)::float8 AS ms ' +
      `FROM ${q}.members WHERE service = $1 AND id <> $2`,
    version:
      `SELECT (SELECT revision::text FROM ${q}.services WHERE service = $1) AS revision, ` +
      `EXISTS (SELECT 1 FROM ${q}.members WHERE service = $1 AND expires_at <= clock_timestamp()) AS expired`,
    snapshot:
      `SELECT (SELECT revision::text FROM ${q}.services WHERE service = $1) AS revision, ` +
      `(SELECT settings FROM ${q}.services WHERE service = $1) AS settings, ` +
      "(SELECT coalesce(json_agg(json_build_object('id', id, 'record', record, 'join_seq', join_seq::text, " +
      "'draining', draining, 'ttl_ms', ttl_ms, 'expires_in_ms', extract(epoch FROM expires_at - clock_timestamp()) * 1000)), '[]'::json) " +
      `FROM ${q}.members WHERE service = $1) AS members, ` +
      "(SELECT coalesce(json_agg(json_build_object('shard', shard, 'owner', owner, 'token', token::text)), '[]'::json) " +
      `FROM ${q}.claims WHERE service = $1) AS claims`,
    register:
      `INSERT INTO ${q}.members (service, id, record, join_seq, ttl_ms, expires_at) ` +
      `VALUES ($1, $2, $3, nextval(${seq('join_order')}), $4::integer, clock_timestamp() + $4::integer * interval '1 millisecond') ` +
      'ON CONFLICT (service, id) DO UPDATE SET record = EXCLUDED.record, join_seq = EXCLUDED.join_seq, ' +
      'ttl_ms = EXCLUDED.ttl_ms, expires_at = EXCLUDED.expires_at, draining = false RETURNING join_seq::text',
    renew:
      `WITH renewed AS (UPDATE ${q}.members SET expires_at = clock_timestamp() + ttl_ms * interval '1 millisecond' ` +
      'WHERE service = $1 AND id = $2 AND expires_at > clock_timestamp() RETURNING id) ' +
      'SELECT (SELECT count(*) FROM renewed)::integer AS renewed, ' +
      `(SELECT revision::text FROM ${q}.services WHERE service = $1) AS revision, ` +
      `(SELECT (extract(epoch FROM min(expires_at) - clock_timestamp()) * 1000)::float8 FROM ${q}.members WHERE service = $1 AND id <> $2) AS next_ms, ` +
      "(SELECT coalesce(json_agg(json_build_array(h.shard, h.token::text) ORDER BY h.ord), '[]'::json) " +
      'FROM unnest($3::integer[], $4::bigint[]) WITH ORDINALITY AS h(shard, token, ord) ' +
      `WHERE NOT EXISTS (SELECT 1 FROM ${q}.claims c WHERE c.service = $1 AND c.shard = h.shard AND c.owner = $2 AND c.token = h.token)) AS lost`,
    unregister:
      `WITH gone AS (DELETE FROM ${q}.members WHERE service = $1 AND id = $2 RETURNING id), ` +
      `dropped AS (DELETE FROM ${q}.claims WHERE service = $1 AND owner = $2 AND EXISTS (SELECT 1 FROM gone)) ` +
      'SELECT id FROM gone',
    member:
      `SELECT record, join_seq::text, draining, ttl_ms FROM ${q}.members ` +
      'WHERE service = $1 AND id = $2 AND expires_at > clock_timestamp() FOR UPDATE',
    drain: `UPDATE ${q}.members SET draining = true WHERE service = $1 AND id = $2`,
    heldClaims:
      `SELECT c.shard, c.owner, c.token::text AS token, (m.id IS NOT NULL) AS owner_live FROM ${q}.claims c ` +
      `LEFT JOIN ${q}.members m ON m.service = c.service AND m.id = c.owner WHERE c.service = $1 AND c.shard = ANY($2::integer[])`,
    deleteClaims: `DELETE FROM ${q}.claims WHERE service = $1 AND shard = ANY($2::integer[])`,
    insertClaims:
      `INSERT INTO ${q}.claims (service, shard, owner, token) ` +
      `SELECT $1, t.shard, $2, nextval(${seq('fencing_tokens')}) FROM unnest($3::integer[]) WITH ORDINALITY AS t(shard, ord) ` +
      'RETURNING shard, token::text AS token',
    release:
      `DELETE FROM ${q}.claims c USING unnest($3::integer[], $4::bigint[]) AS r(shard, token) ` +
      'WHERE c.service = $1 AND c.owner = $2 AND c.shard = r.shard AND c.token = r.token RETURNING c.shard, c.token::text AS token',
    writeGroup: `UPDATE ${q}.services SET settings = $2, created_at = coalesce(created_at, clock_timestamp()) WHERE service = $1`,
    memberIds: `SELECT id FROM ${q}.members WHERE service = $1 ORDER BY join_seq, id`,
    forgetClaims: `DELETE FROM ${q}.claims WHERE service = $1 RETURNING shard`,
    forgetGroup: `UPDATE ${q}.services SET settings = NULL, created_at = NULL WHERE service = $1 AND settings IS NOT NULL RETURNING service`,
    services: `SELECT service FROM ${q}.services WHERE settings IS NOT NULL ORDER BY service COLLATE "C"`,
  };
}
