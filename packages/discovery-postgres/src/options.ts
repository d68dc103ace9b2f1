/**
 * Options of the PostgreSQL discovery backend and {@link compilePostgresOptions},
 * the one place that validates them. The connection is node-postgres's own
 * (`connectionString` with `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, …,
 * or an explicit `pool` of the application's), so TLS and timeouts behave as
 * in the application's other PostgreSQL code.
 *
 * @module
 */

import { InvalidOptionsError, redactUrl } from '@shardwork/core';
import type pg from 'pg';
import { DEFAULT_SCHEMA, quotedSchema } from './migrate.js';

/** Options of {@link PostgresDiscovery}. */
export interface PostgresDiscoveryOptions {
  /**
   * `postgres[ql]://[user[:password]@]host[:port]/database`; the query may
   * carry node-postgres's connection parameters (`sslmode`, `sslrootcert`,
   * `sslcert`, `sslkey`, `application_name`, …) and this backend's own
   * `schema`, `callTimeoutMs` and `migrate` (`true`/`false`). Explicit
   * options win over the URL.
   * Ignored when `pool` is given.
   * @defaultValue `postgres://127.0.0.1:5432/postgres`
   */
  readonly url?: string;
  /**
   * The application's pool: statements run on it (it is never ended by
   * {@link PostgresDiscovery.close}). The LISTEN connection is one of its
   * own, made from the pool's settings.
   */
  readonly pool?: pg.Pool;
  /**
   * Schema of the discovery tables (created and migrated at first use).
   * @defaultValue `"shardwork_discovery"`
   */
  readonly schema?: string;
  /**
   * Apply the migrations this package has and the database lacks at first
   * use. `false`: the schema is migrated by other means, and a database
   * that is behind is refused with `SchemaMigrationError`.
   * @defaultValue true
   */
  readonly migrate?: boolean;
  /**
   * Bound of one call (connecting included), ms: past it the call rejects
   * with `DiscoveryUnavailableError` and its connection is dropped. Keep it
   * below a third of the lease TTL, so that a dead server costs at most one heartbeat.
   * @defaultValue 3000
   */
  readonly callTimeoutMs?: number;
  /**
   * Connections of the backend's own pool (not used with `pool`).
   * @defaultValue 4
   */
  readonly poolSize?: number;
}

/** Options after {@link compilePostgresOptions}. */
export interface CompiledPostgresOptions {
  /** node-postgres settings of the own pool and of the LISTEN connection. */
  readonly connection: pg.PoolConfig;
  readonly pool: pg.Pool | undefined;
  readonly schema: string;
  readonly migrate: boolean;
  readonly callTimeoutMs: number;
  /** Where we connect, without secrets. */
  readonly target: string;
}

/** Query parameters that are ours, not node-postgres's. */
const OWN_URL_PARAMS = ['schema', 'callTimeoutMs', 'migrate'] as const;

/** The URL used when neither `url` nor `pool` is given. */
export const DEFAULT_URL = 'postgres://127.0.0.1:5432/postgres';

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(option, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

/** Parse the URL; its own parameters are taken out, the rest is left for node-postgres. */
function parseUrl(raw: unknown): { url: URL; own: Partial<Record<(typeof OWN_URL_PARAMS)[number], string>> } {
  if (typeof raw !== 'string' || !/^postgres(ql)?:\/\//i.test(raw)) {
    throw new InvalidOptionsError(
      'url',
      typeof raw === 'string' ? redactUrl(raw) : raw,
      'a postgres:// or postgresql:// URL, e.g. postgres://user:password@host:5432/database?schema=shardwork_discovery',
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidOptionsError(
      'url',
      redactUrl(raw),
      'a valid postgres:// URL (percent-encode special characters of the user name and password)',
    );
  }
  if (url.hostname === '' && url.searchParams.get('host') === null) {
    throw new InvalidOptionsError('url', redactUrl(raw), 'a URL with a host (postgres://host:5432/database)');
  }
  const own: Partial<Record<(typeof OWN_URL_PARAMS)[number], string>> = {};
  for (const name of OWN_URL_PARAMS) {
    const values = url.searchParams.getAll(name);
    if (values.length > 1) throw new InvalidOptionsError(name, values, `one ${name} parameter in the URL`);
    if (values[0] !== undefined) own[name] = values[0];
    url.searchParams.delete(name);
  }
  return { url, own };
}

/** Where a pool's settings connect, without secrets. */
function poolTarget(config: pg.PoolConfig): string {
  if (typeof config.connectionString === 'string') {
    try {
      const url = new URL(config.connectionString);
      return redactUrl(`${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}${url.pathname}`);
    } catch {
      return 'postgres://(unparsable connectionString)';
    }
  }
  const user = typeof config.user === 'string' ? `${config.user}@` : '';
  return `postgres://${user}${config.host ?? 'localhost'}:${config.port ?? 5432}/${config.database ?? ''}`;
}

/** Validate options and fill defaults. Throws `InvalidOptionsError` naming the option. */
export function compilePostgresOptions(options: PostgresDiscoveryOptions = {}): CompiledPostgresOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  const pool = options.pool;
  if (pool !== undefined && typeof (pool as pg.Pool)?.connect !== 'function') {
    throw new InvalidOptionsError('pool', pool, 'a pg.Pool (node-postgres)');
  }
  if (pool !== undefined && options.url !== undefined) {
    throw new InvalidOptionsError(
      'url',
      redactUrl(String(options.url)),
      'no url when a pool is given (the pool says where to connect)',
    );
  }
  const { url, own } = parseUrl(pool === undefined ? (options.url ?? DEFAULT_URL) : DEFAULT_URL);
  const schema = options.schema ?? own.schema ?? DEFAULT_SCHEMA;
  quotedSchema(schema);
  if (options.migrate !== undefined && typeof options.migrate !== 'boolean') {
    throw new InvalidOptionsError('migrate', options.migrate, 'true or false');
  }
  let urlTimeout: number | undefined;
  if (own.callTimeoutMs !== undefined) {
    if (!/^\d+$/.test(own.callTimeoutMs)) {
      throw new InvalidOptionsError('callTimeoutMs', own.callTimeoutMs, 'a whole number of ms in the URL');
    }
    urlTimeout = Number(own.callTimeoutMs);
  }
  const callTimeoutMs = integer('callTimeoutMs', options.callTimeoutMs ?? urlTimeout ?? 3000, 50, 600_000);
  const poolSize = integer('poolSize', options.poolSize ?? 4, 1, 1000);
  let connection: pg.PoolConfig;
  let target: string;
  if (pool === undefined) {
    connection = { connectionString: url.toString(), max: poolSize };
    target = redactUrl(`${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}${url.pathname}`);
  } else {
    // pg-pool keeps the settings it was made with; the LISTEN connection is made from them.
    connection = { ...((pool as pg.Pool & { options?: pg.PoolConfig }).options ?? {}) };
    target = `${poolTarget(connection)} (the given pool)`;
  }
  return {
    connection: {
      ...connection,
      connectionTimeoutMillis: callTimeoutMs,
      query_timeout: callTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    },
    pool,
    schema,
    migrate: options.migrate ?? urlFlag('migrate', own.migrate) ?? true,
    callTimeoutMs,
    target,
  };
}

/** A `true`/`false` URL parameter, `undefined` when absent. */
function urlFlag(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new InvalidOptionsError(name, value, 'true or false in the URL');
  return value === 'true';
}
