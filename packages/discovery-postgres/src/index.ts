/**
 * The PostgreSQL discovery backend of shardwork: leases timed by the
 * server's clock, claims with fencing tokens from a sequence, group records,
 * and LISTEN/NOTIFY that delivers the changes themselves (deltas with
 * revisions), so that a replica keeps its view current without re-listing.
 *
 * ```ts
 * import { Worker } from '@shardwork/core';
 * import { PostgresDiscovery } from '@shardwork/discovery-postgres';
 *
 * const discovery = new PostgresDiscovery({ url: 'postgres://worker@db.internal:5432/app?schema=sw' });
 * const worker = new Worker({ service: 'billing-sync', shards: 8, discovery, handler });
 * // or by URL, loaded on first use: discovery: 'postgres://worker@db.internal:5432/app?schema=sw'
 * ```
 *
 * @module
 */

export { SchemaMigrationError } from './errors.js';
export type { ServiceRecords } from './keys.js';
export { serviceRecords } from './keys.js';
export type { MigrateResult } from './migrate.js';
export { DEFAULT_SCHEMA, migrateSchema } from './migrate.js';
export type { Migration } from './migrations.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { CompiledPostgresOptions, PostgresDiscoveryOptions } from './options.js';
export { compilePostgresOptions } from './options.js';
export { discoveryFromUrl, PostgresDiscovery } from './postgres-discovery.js';
