/**
 * Creating and upgrading the schema: {@link migrate} applies the migrations a
 * database lacks, in one transaction under an advisory lock (replicas
 * starting at once apply each migration once; the others wait, then find
 * nothing to do), and refuses a database newer than this package. The
 * bookkeeping table is `discovery_migrations`, so that the schema may be
 * shared with other shardwork packages that keep their own.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import type pg from 'pg';
import { SchemaMigrationError } from './errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import type { Query } from './query.js';

/** A schema name: lower case letters, digits and `_`, not starting with a digit (no quoting surprises). */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema used when none is given. */
export const DEFAULT_SCHEMA = 'shardwork_discovery';

/** The schema name, checked; quoted for SQL. */
export function quotedSchema(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new InvalidOptionsError(
      'schema',
      schema,
      `a schema name of 1–63 lower case letters, digits and "_", not starting with a digit (e.g. "${DEFAULT_SCHEMA}")`,
    );
  }
  return `"${schema}"`;
}

/** The advisory lock of a schema's discovery migrations: one 64-bit key per schema name. */
const LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shardwork.discovery.migrate:' || $1, 0))";

/** What {@link migrate} did. */
export interface MigrateResult {
  readonly schema: string;
  /** The version the database was at (0: no schema yet). */
  readonly from: number;
  /** The version it is at now. */
  readonly to: number;
  /** The versions applied by this call (empty when it was up to date). */
  readonly applied: readonly number[];
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Bring `schema` to {@link SCHEMA_VERSION} through `query` (one connection
 * that is in no transaction): all or nothing, idempotent. With `apply:
 * false` it only checks, and rejects a database that is behind.
 * @throws SchemaMigrationError
 */
export async function migrate(query: Query, schema: string, apply = true): Promise<MigrateResult> {
  const q = quotedSchema(schema);
  await query('BEGIN');
  try {
    await query(LOCK, [schema]);
    const current = await versionOf(query, schema, q, apply);
    if (current > SCHEMA_VERSION) {
      throw new SchemaMigrationError(
        schema,
        current,
        `the discovery tables in schema "${schema}" are at version ${current}, newer than this @shardwork/discovery-postgres knows (${SCHEMA_VERSION}): upgrade the package in this process; nothing was changed`,
      );
    }
    if (!apply && current < SCHEMA_VERSION) {
      throw new SchemaMigrationError(
        schema,
        current,
        `the discovery tables in schema "${schema}" are at version ${current}, this package needs ${SCHEMA_VERSION}: migrate the schema (or leave the "migrate" option on)`,
      );
    }
    const applied: number[] = [];
    for (const step of MIGRATIONS) {
      if (step.version <= current) continue;
      await query(step.sql.replaceAll('{schema}', q)).catch((error: unknown) => {
        throw new SchemaMigrationError(
          schema,
          current,
          `migration ${step.version} (${step.name}) of schema "${schema}" failed: ${describe(error)}; nothing was changed`,
          error,
        );
      });
      await query(`INSERT INTO ${q}.discovery_migrations (version, name) VALUES ($1, $2)`, [step.version, step.name]);
      applied.push(step.version);
    }
    await query('COMMIT');
    return { schema, from: current, to: SCHEMA_VERSION, applied };
  } catch (error) {
    await query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Create the schema and the bookkeeping table if missing (when applying); the recorded version (0: none). */
async function versionOf(query: Query, schema: string, q: string, apply: boolean): Promise<number> {
  if (apply) {
    await query(
      `CREATE SCHEMA IF NOT EXISTS ${q};\n` +
        `CREATE TABLE IF NOT EXISTS ${q}.discovery_migrations (\n` +
        '  version integer PRIMARY KEY,\n  name text NOT NULL,\n  applied_at timestamptz NOT NULL DEFAULT now()\n);',
    );
  }
  try {
    const rows = await query<{ v: number | null }>(`SELECT max(version)::integer AS v FROM ${q}.discovery_migrations`);
    return rows[0]?.v ?? 0;
  } catch (error) {
    if ((error as { code?: unknown }).code === '42P01' && !apply) return 0;
    throw new SchemaMigrationError(
      schema,
      undefined,
      `schema "${schema}" has a "discovery_migrations" table that is not shardwork's (${describe(error)}): choose another schema; nothing was changed`,
      error,
    );
  }
}

/**
 * Bring the discovery schema `schema` to {@link SCHEMA_VERSION} on `client`
 * (a connected `pg` client in no transaction): for deploy tools such as
 * `shardwork db migrate`, so that the application may run with
 * `migrate: false` and a user without CREATE rights.
 * @throws SchemaMigrationError
 */
export function migrateSchema(client: pg.ClientBase, schema: string = DEFAULT_SCHEMA): Promise<MigrateResult> {
  const query: Query = async (text, values) => (await client.query(text, values as unknown[])).rows;
  return migrate(query, schema);
}
