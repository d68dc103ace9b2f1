/**
 * Options of the PostgreSQL job adapter and {@link compilePostgresJobOptions},
 * the one place that validates them. The connection is node-postgres's own
 * (`connectionString` with `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, or
 * an explicit `pool` of the application's), so TLS and timeouts behave as in
 * the application's other PostgreSQL code.
 *
 * @module
 */

import { type Discovery, InvalidOptionsError, parseDiscoveryUrl, redactUrl } from '@shardwork/core';
import { checkQueueList } from '@shardwork/jobs/adapter';
import type pg from 'pg';
import { DEFAULT_SCHEMA, quotedSchema } from './migrate.js';

/**
 * Options of the PostgreSQL job adapter (`createJobQueue('postgres://…', { adapter: { … } })`
 * or `new PostgresJobAdapter(…)`).
 */
export interface PostgresJobOptions {
  /**
   * `postgres[ql]://[user[:password]@]host[:port]/database`; the query may
   * carry node-postgres's connection parameters (`sslmode`, `sslrootcert`,
   * `sslcert`, `sslkey`, `application_name`, …) and the adapter's own
   * `schema`, `partitions`, `leaseTtlMs`, `discovery`. Explicit options win
   * over the URL.
   * @defaultValue `postgres://127.0.0.1:5432/postgres`
   */
  readonly url?: string;
  /**
   * The application's pool: the adapter runs its statements on it (and never
   * ends it). The wake-up listener still opens one connection of its own,
   * from the pool's settings.
   */
  readonly pool?: pg.Pool;
  /**
   * Schema of the job tables (created and migrated at first use).
   * @defaultValue `"shardwork"`
   */
  readonly schema?: string;
  /**
   * Apply the migrations this package has and the database lacks at first
   * use. `false`: the team migrates by its own tools (`migrationSql()`,
   * `npx shardwork db migrate`); a database behind is then refused.
   * @defaultValue true
   */
  readonly migrate?: boolean;
  /**
   * Partitions per queue: the unit of ownership, fencing and per-key order.
   * Fixed per queue (stored by its first user; a different value is refused).
   * @defaultValue 16
   */
  readonly partitions?: number;
  /**
   * Queues this process consumes.
   * @defaultValue the queues of the registered handlers and periodic jobs
   */
  readonly queues?: readonly string[];
  /**
   * Where the partition owners coordinate: a discovery URL or instance
   * (`redis://`, `etcd://`, `postgres://`; `memory://` only when one process
   * consumes).
   * @defaultValue the same database (`postgres://` discovery, schema
   * `<schema>_discovery`), so PostgreSQL alone runs the queue; with a `pool`,
   * its `connectionString` (give `discovery` when the pool has none)
   */
  readonly discovery?: string | Discovery;
  /** Lease TTL of a consumer replica. @defaultValue 10000 */
  readonly leaseTtlMs?: number;
  /** How long a partition handed to another replica lets its running jobs finish. @defaultValue 10000 */
  readonly revokeTimeoutMs?: number;
  /** How long `start()` waits for PostgreSQL and for its first partitions. @defaultValue 30000 */
  readonly startTimeoutMs?: number;
  /** How long `perform` retries while PostgreSQL is unreachable. @defaultValue 5000 */
  readonly enqueueTimeoutMs?: number;
  /** Most jobs one fetch takes (also bounded by free `concurrency` slots). @defaultValue 100 */
  readonly batchSize?: number;
  /** Connections of the adapter's own pool. @defaultValue 10 */
  readonly poolSize?: number;
  /**
   * Safety net: an idle partition re-checks this often even without a
   * notification. Not a poll in normal operation. @defaultValue 30000
   */
  readonly idleCheckMs?: number;
}

/** Options after {@link compilePostgresJobOptions}. */
export interface CompiledPostgresJobOptions {
  /** node-postgres settings of the adapter's pool and listener. */
  readonly connection: pg.PoolConfig;
  readonly pool: pg.Pool | undefined;
  readonly schema: string;
  readonly migrate: boolean;
  readonly partitions: number;
  readonly queues: readonly string[] | undefined;
  readonly discovery: string | Discovery | undefined;
  readonly leaseTtlMs: number;
  readonly revokeTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly enqueueTimeoutMs: number;
  readonly batchSize: number;
  readonly idleCheckMs: number;
  /** Where we connect, without secrets. */
  readonly target: string;
}

/** Query parameters that are ours, not node-postgres's. */
const OWN_URL_PARAMS = ['schema', 'partitions', 'leaseTtlMs', 'discovery'] as const;

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(option, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

/** Validate options and fill defaults. Throws `InvalidOptionsError` naming the option. */
export function compilePostgresJobOptions(options: PostgresJobOptions): CompiledPostgresJobOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  const raw = options.url ?? 'postgres://127.0.0.1:5432/postgres';
  if (typeof raw !== 'string' || !/^postgres(ql)?:\/\//.test(raw)) {
    throw new InvalidOptionsError('url', redactUrl(String(raw)), 'a postgres:// or postgresql:// URL');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidOptionsError(
      'url',
      redactUrl(raw),
      'a valid postgres:// URL (percent-encode special characters of the password)',
    );
  }
  const own: Partial<Record<(typeof OWN_URL_PARAMS)[number], string>> = {};
  for (const name of OWN_URL_PARAMS) {
    const value = url.searchParams.get(name);
    if (value !== null) own[name] = value;
    url.searchParams.delete(name);
  }
  const fromUrl = (name: 'partitions' | 'leaseTtlMs'): number | undefined => {
    const value = own[name];
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) throw new InvalidOptionsError(name, value, 'a whole number in the URL');
    return Number(value);
  };
  const schema = options.schema ?? own.schema ?? DEFAULT_SCHEMA;
  quotedSchema(schema);
  if (options.pool !== undefined && typeof (options.pool as pg.Pool)?.connect !== 'function') {
    throw new InvalidOptionsError('pool', options.pool, 'a pg.Pool');
  }
  if (options.migrate !== undefined && typeof options.migrate !== 'boolean') {
    throw new InvalidOptionsError('migrate', options.migrate, 'true or false');
  }
  const poolString = (options.pool as pg.Pool | undefined)?.options?.connectionString;
  const discovery =
    options.discovery ??
    own.discovery ??
    sameDatabase(
      options.pool === undefined ? url.toString() : poolString,
      `${schema}_discovery`,
      options.migrate ?? true,
    );
  if (typeof discovery === 'string') parseDiscoveryUrl(discovery);
  else if (discovery !== undefined && typeof (discovery as Discovery)?.snapshot !== 'function') {
    throw new InvalidOptionsError('discovery', discovery, 'a discovery URL or a Discovery instance');
  }
  const poolSize = integer('poolSize', options.poolSize ?? 10, 2, 1000);
  const connectionString = url.toString();
  const target = redactUrl(`${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}${url.pathname}`);
  return {
    connection: { connectionString, max: poolSize, connectionTimeoutMillis: 5000 },
    pool: options.pool,
    schema,
    migrate: options.migrate ?? true,
    partitions: integer('partitions', options.partitions ?? fromUrl('partitions') ?? 16, 1, 4096),
    queues: checkQueueList(options.queues),
    discovery,
    leaseTtlMs: integer('leaseTtlMs', options.leaseTtlMs ?? fromUrl('leaseTtlMs') ?? 10_000, 500, 3_600_000),
    revokeTimeoutMs: integer('revokeTimeoutMs', options.revokeTimeoutMs ?? 10_000, 0, 3_600_000),
    startTimeoutMs: integer('startTimeoutMs', options.startTimeoutMs ?? 30_000, 0, 3_600_000),
    enqueueTimeoutMs: integer('enqueueTimeoutMs', options.enqueueTimeoutMs ?? 5000, 0, 3_600_000),
    batchSize: integer('batchSize', options.batchSize ?? 100, 1, 1000),
    idleCheckMs: integer('idleCheckMs', options.idleCheckMs ?? 30_000, 10, 3_600_000),
    target,
  };
}

/**
 * The `postgres://` discovery URL of the database of `connectionString`, in
 * `schema`; `migrate: false` when the job tables are migrated by other means
 * (`shardwork db migrate` creates both).
 */
function sameDatabase(connectionString: string | undefined, schema: string, migrate: boolean): string | undefined {
  if (connectionString === undefined) return undefined;
  const url = new URL(connectionString);
  url.searchParams.set('schema', schema);
  if (!migrate) url.searchParams.set('migrate', 'false');
  return url.toString();
}
