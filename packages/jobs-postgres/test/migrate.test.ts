import { readFileSync } from 'node:fs';
import { InvalidOptionsError } from '@shardwork/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, migrationSql, SCHEMA_VERSION, SchemaMigrationError } from '../src/index.js';
import { privatePostgres } from './private-postgres.js';

describe('schema migrations on a real PostgreSQL', () => {
  const db = privatePostgres();

  const tables = async (schema: string): Promise<string[]> =>
    (
      await db.server.query<{ t: string }>(
        'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
        [schema],
      )
    ).map((r) => r.t);

  it('creates the schema once, then finds nothing to do', async () => {
    expect(await migrate(db.pool, { schema: 'fresh' })).toEqual({
      schema: 'fresh',
      from: 0,
      to: SCHEMA_VERSION,
      applied: MIGRATIONS.map((m) => m.version),
    });
    expect(await tables('fresh')).toEqual([
      'cron',
      'fences',
      'given_ids',
      'jobs',
      'migrations',
      'paused',
      'queues',
      'throughput',
    ]);
    expect(await migrate(db.pool, { schema: 'fresh' })).toEqual({
      schema: 'fresh',
      from: SCHEMA_VERSION,
      to: SCHEMA_VERSION,
      applied: [],
    });
    const rows = await db.server.query<{ version: number }>('SELECT version FROM fresh.migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('applies each migration once when many processes start at once', async () => {
    const clients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = new pg.Client({ connectionString: db.server.url });
        await c.connect();
        return c;
      }),
    );
    try {
      const results = await Promise.all(clients.map((c) => migrate(c, { schema: 'raced' })));
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
      expect(results.every((r) => r.to === SCHEMA_VERSION)).toBe(true);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('refuses a database newer than the package and changes nothing', async () => {
    await migrate(db.pool, { schema: 'newer' });
    await db.server.query("INSERT INTO newer.migrations (version, name) VALUES (999, 'from the future')");
    const error = await migrate(db.pool, { schema: 'newer' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect(error).toMatchObject({ schema: 'newer', current: 999 });
    expect(String((error as Error).message)).toMatch(/version 999, newer .*upgrade the package/);
    expect((await db.server.query('SELECT 1 FROM newer.migrations WHERE version = 999')).length).toBe(1);
  });

  it("names a migrations table that is not shardwork's, and leaves it alone", async () => {
    await db.server.query('CREATE SCHEMA foreign_app; CREATE TABLE foreign_app.migrations (id serial, filename text)');
    const error = await migrate(db.pool, { schema: 'foreign_app' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect(String((error as Error).message)).toMatch(/not shardwork's.*choose another schema/);
    expect(await tables('foreign_app')).toEqual(['migrations']);
  });

  it('rolls a failing migration back whole: a table in its way leaves nothing half-made', async () => {
    await db.server.query('CREATE SCHEMA blocked; CREATE TABLE blocked.jobs (x int)');
    const error = await migrate(db.pool, { schema: 'blocked' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect(String((error as Error).message)).toMatch(/migration 1 .* failed: relation "jobs" already exists/);
    expect(await tables('blocked')).toEqual(['jobs']);
  });

  it('refuses a schema name that would need quoting', async () => {
    for (const schema of ['', 'Upper', '1st', 'has space', 'a"b', 'x'.repeat(64)]) {
      await expect(migrate(db.pool, { schema })).rejects.toThrow(InvalidOptionsError);
    }
  });

  it('ships that script as sql/schema.sql, the same as migrationSql() gives', () => {
    const file = readFileSync(new URL('../sql/schema.sql', import.meta.url), 'utf8');
    expect(file).toBe(migrationSql());
  });

  it('gives the same schema as one SQL script for other migration tools', async () => {
    const client = new pg.Client({ connectionString: db.server.url });
    await client.connect();
    try {
      await client.query(migrationSql('scripted'));
    } finally {
      await client.end();
    }
    expect(await tables('scripted')).toEqual(await tables('fresh'));
    expect(await migrate(db.pool, { schema: 'scripted' })).toMatchObject({ from: SCHEMA_VERSION, applied: [] });
  });
});
