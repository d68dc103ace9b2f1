/**
 * `@shardwork/jobs-postgres`, in progress: the versioned schema of the
 * PostgreSQL job store and its migrations ({@link migrate},
 * {@link migrationSql}), and storing jobs on the caller's connection
 * ({@link storeJobs}: inside the caller's transaction, woken owners notified
 * at commit). The `postgres://` job adapter (transactional
 * enqueue, completion fenced in the handler's transaction) is built on it
 * and is not here yet.
 *
 * ```ts
 * import pg from 'pg';
 * import { migrate } from '@shardwork/jobs-postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool, { schema: 'shardwork' }); // { from: 0, to: 1, applied: [1] }, then a no-op
 * ```
 *
 * @module
 */

export { jobAdapterFromUrl, PostgresJobAdapter } from './adapter.js';
export type { StoredJob, StoreResult } from './enqueue.js';
export { PartitionCountMismatchError, storeJobs } from './enqueue.js';
export type {
  CompleteInTransactionOptions,
  Completion,
  Failure,
  Fetched,
  FetchedJob,
  FetchSpec,
  Owner,
  RecoveredJob,
} from './fenced.js';
export { complete, completeInTransaction, fail, fetchDue, putBack, putBackOrphans, takeOver } from './fenced.js';
export type { Migratable, MigrateOptions, MigrateResult } from './migrate.js';
export { checkSchema, DEFAULT_SCHEMA, migrate, migrationSql, quotedSchema, SchemaMigrationError } from './migrate.js';
export type { UrlMigrateResult } from './migrate-url.js';
export { migrateUrl, migrationSqlForUrl } from './migrate-url.js';
export type { Migration } from './migrations.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { CompiledPostgresJobOptions, PostgresJobOptions } from './options.js';
export { compilePostgresJobOptions } from './options.js';
export { wakeChannel } from './sql.js';
export type { DoneNotice, WakeListener, WakeMessage, WakeSubscriberOptions } from './wake.js';
export { parseWake, WakeSubscriber } from './wake.js';
