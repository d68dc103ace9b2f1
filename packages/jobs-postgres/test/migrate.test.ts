import { InvalidOptionsError } from '@shardwork/core';
import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, migrationSql, SCHEMA_VERSION, SchemaMigrationError } from '../src/index.js';

describe('schema migrations on a real PostgreSQL', () => {
  let server: PostgresTestServer;
  let pool: pg.Pool;
  beforeAll(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 8 });
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });

  const tables = async (schema: string): Promise<string[]> =>
    (
      await server.query<{ t: string }>(
        'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
        [schema],
      )
    ).map((r) => r.t);

  it('creates the schema once, then finds nothing to do', async () => {
    expect(await migrate(pool, { schema: 'fresh' })).toEqual({
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
    expect(await migrate(pool, { schema: 'fresh' })).toEqual({
      schema: 'fresh',
      from: SCHEMA_VERSION,
      to: SCHEMA_VERSION,
      applied: [],
    });
    const rows = await server.query<{ version: number }>('SELECT version FROM fresh.migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('applies each migration once when many processes start at once', async () => {
    const clients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = new pg.Client({ connectionString: server.url });
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
    await migrate(pool, { schema: 'newer' });
    await server.query("INSERT INTO newer.migrations (version, name) VALUES (999, 'from the future')");
    const error = await migrate(pool, { schema: 'newer' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect(error).toMatchObject({ schema: 'newer', current: 999 });
    expect(String((error as Error).message)).toMatch(/version 999, newer .*upgrade the package/);
    expect((await server.query('SELECT 1 FROM newer.migrations WHERE version = 999')).length).toBe(1);
  });

  it("names a migrations table that is not shardwork's, and leaves it alone", async () => {
    await server.query('CREATE SCHEMA foreign_app; CREATE TABLE foreign_app.migrations (id serial, filename text)');
    const error = await migrate(pool, { schema: 'foreign_app' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect(String((error as Error).message)).toMatch(/not shardwork's.*choose another schema/);
    expect(await tables('foreign_app')).toEqual(['migrations']);
  });

  it('rolls a failing migration back whole: a table in its way leaves nothing half-made', async () => {
    await server.query('CREATE SCHEMA blocked; CREATE TABLE blocked.jobs (x int)');
    const error = await migrate(pool, { schema: 'blocked' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect(String((error as Error).message)).toMatch(/migration 1 .* failed: relation "jobs" already exists/);
    expect(await tables('blocked')).toEqual(['jobs']);
  });

  it('refuses a schema name that would need quoting', async () => {
    for (const schema of ['', 'Upper', '1st', 'has space', 'a"b', 'x'.repeat(64)]) {
      await expect(migrate(pool, { schema })).rejects.toThrow(InvalidOptionsError);
    }
  });

  it('gives the same schema as one SQL script for other migration tools', async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      await client.query(migrationSql('scripted'));
    } finally {
      await client.end();
    }
    expect(await tables('scripted')).toEqual(await tables('fresh'));
    expect(await migrate(pool, { schema: 'scripted' })).toMatchObject({ from: SCHEMA_VERSION, applied: [] });
  });
});
