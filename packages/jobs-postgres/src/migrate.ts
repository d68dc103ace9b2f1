/**
 * Creating and upgrading the schema: {@link migrate} applies the migrations a
 * database lacks, in one transaction under an advisory lock (many processes
 * starting at once apply each migration once, and the others wait for it and
 * then find nothing to do), and refuses a database newer than this package.
 * {@link migrationSql} gives the same steps as one SQL script for teams that
 * migrate with their own tools.
 *
 * @module
 */

import { InvalidOptionsError, ShardworkError } from '@shardwork/core';
import type pg from 'pg';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

/** A schema name: lower case letters, digits and `_`, not starting with a digit (no quoting surprises). */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema used when none is given. */
export const DEFAULT_SCHEMA = 'shardwork';

/** What {@link migrate} takes: a pool (one of its connections is used) or a connected client. */
export type Migratable = pg.Pool | pg.ClientBase;

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Schema of the job tables, created if missing. @defaultValue 'shardwork' */
  readonly schema?: string;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  readonly schema: string;
  /** The version the database was at (0: no schema yet). */
  readonly from: number;
  /** The version it is at now ({@link SCHEMA_VERSION}). */
  readonly to: number;
  /** The versions applied by this call (empty when it was up to date). */
  readonly applied: readonly number[];
}

/** The schema cannot be created or upgraded: nothing of the failed step was changed. */
export class SchemaMigrationError extends ShardworkError<'SCHEMA_MIGRATION'> {
  /** The schema. */
  readonly schema: string;
  /** The version the database is at. */
  readonly current: number | undefined;

  constructor(schema: string, current: number | undefined, message: string, cause?: unknown) {
    super('SCHEMA_MIGRATION', message, cause === undefined ? undefined : { cause });
    this.name = 'SchemaMigrationError';
    this.schema = schema;
    this.current = current;
  }
}

/** The schema name, checked; quoted for SQL. */
export function quotedSchema(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new InvalidOptionsError(
      'schema',
      schema,
      'a schema name of 1–63 lower case letters, digits and "_", not starting with a digit (e.g. "shardwork")',
    );
  }
  return `"${schema}"`;
}

/** The advisory lock of a schema's migrations: one 64-bit key per schema name. */
const LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shardwork.migrate:' || $1, 0))";

const bookkeeping = (q: string): string =>
  `CREATE SCHEMA IF NOT EXISTS ${q};\n` +
  `CREATE TABLE IF NOT EXISTS ${q}.migrations (\n` +
  '  version integer PRIMARY KEY,\n' +
  '  name text NOT NULL,\n' +
  '  applied_at timestamptz NOT NULL DEFAULT now()\n' +
  ');\n';

const isPool = (db: Migratable): db is pg.Pool => typeof (db as pg.Pool).totalCount === 'number';

/**
 * Bring the schema to {@link SCHEMA_VERSION}: create it, or apply the
 * migrations it lacks, in one transaction (all or nothing) under an advisory
 * lock. Idempotent. Rejects with {@link SchemaMigrationError} when the
 * database is newer than this package (upgrade the package: nothing is
 * changed), when a table of the schema is not what it should be, or when a
 * step fails; with `InvalidOptionsError` for a bad schema name.
 */
export async function migrate(db: Migratable, options: MigrateOptions = {}): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const q = quotedSchema(schema);
  const client = isPool(db) ? await db.connect() : db;
  let current: number | undefined;
  try {
    await client.query('BEGIN');
    try {
      await client.query(LOCK, [schema]);
      await client.query(bookkeeping(q));
      current = await versionOf(client, schema, q);
      if (current > SCHEMA_VERSION) {
        throw new SchemaMigrationError(
          schema,
          current,
          `the job tables in schema "${schema}" are at version ${current}, newer than this @shardwork/jobs-postgres knows (${SCHEMA_VERSION}): upgrade the package in this process; nothing was changed`,
        );
      }
      const applied: number[] = [];
      for (const step of MIGRATIONS) {
        if (step.version <= current) continue;
        await client.query(step.sql.replaceAll('{schema}', q)).catch((error: unknown) => {
          throw new SchemaMigrationError(
            schema,
            current,
            `migration ${step.version} (${step.name}) of schema "${schema}" failed: ${describe(error)}; nothing was changed`,
            error,
          );
        });
        await client.query(`INSERT INTO ${q}.migrations (version, name) VALUES ($1, $2)`, [step.version, step.name]);
        applied.push(step.version);
      }
      await client.query('COMMIT');
      return { schema, from: current, to: SCHEMA_VERSION, applied };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    if (client !== db) (client as pg.PoolClient).release();
  }
}

/** The version recorded in the schema's `migrations` table (0 for none). */
async function versionOf(client: pg.ClientBase, schema: string, q: string): Promise<number> {
  try {
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version)::integer AS v FROM ${q}.migrations`);
    return rows[0]?.v ?? 0;
  } catch (error) {
    throw new SchemaMigrationError(
      schema,
      undefined,
      `schema "${schema}" has a "migrations" table that is not shardwork's (${describe(error)}): choose another schema, or move that table away; nothing was changed`,
      error,
    );
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The migrations from `fromVersion` on as one SQL script (a transaction under
 * the same advisory lock, recording each version), for teams that migrate
 * with their own tools. Running it on a database that has some of them
 * already fails on the first existing table and changes nothing: give
 * `fromVersion`.
 */
export function migrationSql(schema: string = DEFAULT_SCHEMA, fromVersion = 0): string {
  const q = quotedSchema(schema);
  const steps = MIGRATIONS.filter((m) => m.version > fromVersion);
  const literal = (s: string): string => `'${s.replaceAll("'", "''")}'`;
  return [
    `-- @shardwork/jobs-postgres schema "${schema}", versions ${fromVersion + 1} to ${SCHEMA_VERSION}`,
    'BEGIN;',
    `${LOCK.replace('$1', literal(schema))};`,
    bookkeeping(q).trimEnd(),
    ...steps.flatMap((m) => [
      `-- ${m.version}: ${m.name}`,
      m.sql.replaceAll('{schema}', q).trim(),
      `INSERT INTO ${q}.migrations (version, name) VALUES (${m.version}, ${literal(m.name)});`,
    ]),
    'COMMIT;',
    '',
  ].join('\n');
}

/**
 * Check, changing nothing, that schema `schema` is at {@link SCHEMA_VERSION}
 * (for `migrate: false`): rejects with `SchemaMigrationError` saying to run
 * `shardwork db migrate` when it is missing or behind, or to upgrade the
 * package when it is newer.
 */
export async function checkSchema(db: Migratable, schema: string = DEFAULT_SCHEMA): Promise<number> {
  const q = quotedSchema(schema);
  const { rows } = await db.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [
    `${q}.migrations`,
  ]);
  const current = rows[0]?.present === true ? await versionOf(db as pg.ClientBase, schema, q) : 0;
  if (current === SCHEMA_VERSION) return current;
  throw new SchemaMigrationError(
    schema,
    current,
    current > SCHEMA_VERSION
      ? `the job tables in schema "${schema}" are at version ${current}, newer than this @shardwork/jobs-postgres knows (${SCHEMA_VERSION}): upgrade the package in this process`
      : `the job tables in schema "${schema}" are at version ${current} and this package needs ${SCHEMA_VERSION}, and migrate is false: run npx shardwork db migrate --jobs <this URL> as a user that may create them, or set migrate: true`,
  );
}
