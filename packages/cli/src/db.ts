/**
 * `shardwork db migrate`: create or upgrade the tables of a `postgres://` job
 * store (the schema its URL names, and the discovery schema of its partition
 * owners when they coordinate in PostgreSQL), or print them as SQL for teams that
 * migrate with their own tools. The PostgreSQL adapter's package is loaded
 * only here, so the CLI works without it for every other store.
 *
 * @module
 */

import { errorMessage, redactUrl } from '@shardwork/core';
import { toCliError, withTimeout } from './backend.js';
import type { Context } from './context.js';
import { CliError, EXIT, UsageError } from './errors.js';

/** What the command needs of `@shardwork/jobs-postgres`. */
interface PostgresModule {
  migrateUrl(url: string): Promise<Migrated & { discovery?: Migrated }>;
  migrationSqlForUrl(url: string | undefined, fromVersion?: number): string;
}

/** What one schema's migration did. */
interface Migrated {
  schema: string;
  target: string;
  from: number;
  to: number;
  applied: readonly number[];
}

const PACKAGE = '@shardwork/jobs-postgres';

/** One line per schema: `schema jobs on postgres://…: version 0 -> 1 (applied 1)`. */
function describeMigration(m: Migrated, what: string): string {
  return m.applied.length === 0
    ? `${what} schema ${m.schema} on ${m.target} is up to date (version ${m.to})`
    : `${what} schema ${m.schema} on ${m.target}: version ${m.from} -> ${m.to} (applied ${m.applied.join(', ')})`;
}

/** Options of `db migrate`. */
export interface DbMigrateOptions {
  /** Print the SQL instead of running it. */
  readonly sql?: boolean;
  /** With `sql`: the version the database is at (steps after it are printed). */
  readonly from?: number;
}

/** Run `db migrate` (see the module documentation). */
export async function dbMigrate(c: Context, o: DbMigrateOptions): Promise<void> {
  const url = c.opts.jobs ?? c.io.env.SHARDWORK_JOBS;
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
    throw new UsageError(
      `db migrate works on a postgres:// job store; ${redactUrl(url)} keeps no tables to migrate (pass --jobs postgres://… or set SHARDWORK_JOBS)`,
    );
  }
  const pg = await load();
  if (o.sql === true) {
    c.io.stdout.write(usage(() => pg.migrationSqlForUrl(url, o.from ?? 0), url));
    return;
  }
  if (url === undefined) throw new UsageError('No job store: pass --jobs postgres://… or set SHARDWORK_JOBS');
  const target = `job store ${redactUrl(url)}`;
  usage(() => pg.migrationSqlForUrl(url), url); // a bad URL is a usage error, before any connection
  let result: Awaited<ReturnType<PostgresModule['migrateUrl']>>;
  try {
    result = await withTimeout(pg.migrateUrl(url), c.timeoutMs, target);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SCHEMA_MIGRATION') {
      throw new CliError('CLI_BACKEND_UNAVAILABLE', EXIT.unavailable, errorMessage(error), { cause: error });
    }
    throw toCliError(error, target);
  }
  if (c.json) {
    c.printJson(result);
    return;
  }
  c.out(describeMigration(result, 'job'));
  if (result.discovery !== undefined) c.out(describeMigration(result.discovery, 'discovery'));
}

/** Run `f`, turning a bad URL or option into a usage error. */
function usage<T>(f: () => T, url: string | undefined): T {
  try {
    return f();
  } catch (error) {
    throw new UsageError(`Invalid --jobs ${redactUrl(url ?? '')}: ${errorMessage(error)}`, { cause: error });
  }
}

async function load(): Promise<PostgresModule> {
  try {
    return (await import(PACKAGE)) as PostgresModule;
  } catch (error) {
    throw new UsageError(`db migrate needs the package ${PACKAGE}: npm install ${PACKAGE}`, { cause: error });
  }
}
