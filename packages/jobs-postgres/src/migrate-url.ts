/**
 * Migrating by URL, for `npx shardwork db migrate` and deploy scripts: the
 * schema named by the URL (`?schema=`, else `shardwork`) is created or
 * brought up to date on a connection of its own, then the connection ends.
 *
 * @module
 */

import { compilePostgresOptions, migrateSchema } from '@shardwork/discovery-postgres';
import pg from 'pg';
import { DEFAULT_SCHEMA, type MigrateResult, migrate, migrationSql } from './migrate.js';
import { SCHEMA_VERSION } from './migrations.js';
import { compilePostgresJobOptions } from './options.js';
import { mapPostgresError } from './unavailable.js';

/** What {@link migrateUrl} did, and where. */
export interface UrlMigrateResult extends MigrateResult {
  /** The database, without credentials (`postgres://app@db:5432/app`). */
  readonly target: string;
  /**
   * The discovery schema of the queue's partition owners, when they
   * coordinate in PostgreSQL (the default: `<schema>_discovery` in the same
   * database): migrated too.
   */
  readonly discovery?: MigrateResult & { readonly target: string };
}

/**
 * Create or upgrade the job schema of `url` (a `postgres://` job store URL
 * as the queue takes it, TLS parameters included). Rejects with
 * `QueueUnavailableError` when the server cannot be reached, and with
 * `SchemaMigrationError` as {@link migrate} does; a failed step changes
 * nothing.
 */
export async function migrateUrl(url: string): Promise<UrlMigrateResult> {
  const o = compilePostgresJobOptions({ url });
  const jobs = await onClient(o.connection, o.target, (client) => migrate(client, { schema: o.schema }));
  if (typeof o.discovery !== 'string' || !/^postgres(ql)?:\/\//.test(o.discovery)) return { ...jobs, target: o.target };
  const d = compilePostgresOptions({ url: o.discovery });
  const discovery = await onClient(d.connection, d.target, (client) => migrateSchema(client, d.schema));
  return { ...jobs, target: o.target, discovery: { ...discovery, target: d.target } };
}

/** Run `work` on a connection of its own to `connection`; unreachable servers map to `QueueUnavailableError`. */
async function onClient<T>(
  connection: pg.ClientConfig,
  target: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(connection);
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await work(client);
  } catch (error) {
    throw mapPostgresError(error, target);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The SQL script of the schema of `url` (its `?schema=`, else `shardwork`)
 * from `fromVersion` on, for teams that migrate with their own tools. It
 * connects to nothing.
 */
export function migrationSqlForUrl(url: string | undefined, fromVersion = 0): string {
  const schema = url === undefined ? DEFAULT_SCHEMA : compilePostgresJobOptions({ url }).schema;
  if (fromVersion >= SCHEMA_VERSION) {
    return `-- @shardwork/jobs-postgres schema "${schema}": version ${fromVersion} ${
      fromVersion === SCHEMA_VERSION
        ? 'is the newest, nothing to apply'
        : `is newer than this package's ${SCHEMA_VERSION}: upgrade the package`
    }\n`;
  }
  return migrationSql(schema, fromVersion);
}
