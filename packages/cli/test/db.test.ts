import { freePort, type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, run } from './helpers.js';

describe('shardwork db migrate (postgres://)', () => {
  let server: PostgresTestServer;
  beforeAll(async () => {
    [server] = await Promise.all([startPostgres(), buildOnce()]);
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('creates the schema its URL names, then finds it up to date', async () => {
    const url = `${server.url}?schema=cli_migrated`;
    const first = await run(['db', 'migrate', '--jobs', url]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /^job schema cli_migrated on postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres: version 0 -> \d+ \(applied 1.*\ndiscovery schema cli_migrated_discovery on \S+: version 0 -> \d+/,
    );
    const tables = await server.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'cli_migrated' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['jobs', 'fences', 'migrations']));
    const again = await run(['--json', 'db', 'migrate', '--jobs', url]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      schema: 'cli_migrated',
      applied: [],
      discovery: { schema: 'cli_migrated_discovery', applied: [] },
    });
  });

  it('prints the SQL script without connecting, from a version on', async () => {
    const port = await freePort(); // nothing listens there
    const whole = await run(['db', 'migrate', '--sql', '--jobs', `postgres://127.0.0.1:${port}/app?schema=billing`]);
    expect(whole.code).toBe(0);
    expect(whole.stdout).toMatch(/^-- @shardwork\/jobs-postgres schema "billing", versions 1 to \d+\nBEGIN;/);
    expect(whole.stdout).toContain('CREATE TABLE "billing".jobs');
    const none = await run(['db', 'migrate', '--sql', '--from', '999']);
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(
      /^-- @shardwork\/jobs-postgres schema "shardwork": version 999 is newer than this package's \d+: upgrade the package\n$/,
    );
    // The script works on a fresh schema: the same tables as migrate.
    await server.query(whole.stdout.replaceAll('billing', 'scripted'));
    const after = await run(['db', 'migrate', '--jobs', `${server.url}?schema=scripted`]);
    expect(after.stdout).toContain('is up to date');
  });

  it('refuses a store without tables (exit 1) and a server that is down (exit 2), naming them', async () => {
    const redis = await run(['db', 'migrate', '--jobs', 'redis://127.0.0.1:6379']);
    expect(redis.code).toBe(1);
    expect(redis.stderr).toMatch(/postgres:\/\/ job store; redis:\/\/127\.0\.0\.1:6379 keeps no tables/);
    const port = await freePort();
    const down = await run(['db', 'migrate', '--timeout', '3000', '--jobs', `postgres://u:secret@127.0.0.1:${port}/x`]);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain(`127.0.0.1:${port}`);
    expect(down.stderr).not.toContain('secret');
    const bad = await run(['db', 'migrate', '--jobs', 'postgres://127.0.0.1/x?schema=Bad-Name']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/schema/);
  });
});
