/**
 * The private PostgreSQL harness the PostgreSQL fault tests stand on: a crash
 * (kill -9 of every process of the server) and an immediate restart keep what
 * was committed; a pause stops answers without closing connections.
 */

import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('PostgreSQL test harness', () => {
  let server: PostgresTestServer;
  beforeAll(async () => {
    server = await startPostgres();
    await server.query('CREATE TABLE kept (n int PRIMARY KEY)');
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  const count = async (): Promise<number> =>
    Number((await server.query<{ n: string }>('SELECT count(*) AS n FROM kept'))[0]?.n);

  it('serves on its own loopback port, not the system server', async () => {
    expect(server.port).not.toBe(5432);
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    const [row] = await server.query<{ port: string }>("SELECT current_setting('port') AS port");
    expect(Number(row?.port)).toBe(server.port);
  });

  it('keeps every committed row through a kill -9 of the server and an immediate restart', async () => {
    await server.query('INSERT INTO kept SELECT generate_series(1, 100)');
    const before = server.pid;
    await server.crash({ downMs: 100 });
    expect(server.pid).not.toBe(before);
    expect(await count()).toBe(100);
    await server.query('INSERT INTO kept VALUES (101)');
    await server.restart({ mode: 'immediate' });
    expect(await count()).toBe(101);
  }, 90_000);

  it('ends the connections of the old server: a client sees its connection fail', async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    const ended = new Promise<unknown>((resolve) => client.on('error', resolve));
    await server.crash();
    const error = await ended;
    expect(error).toBeInstanceOf(Error);
    await client.end().catch(() => undefined);
  }, 90_000);

  it('pauses: a query on an open connection gets no answer until resume', async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      server.pause();
      let answered = false;
      const query = client.query('SELECT 1').then(() => {
        answered = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(answered).toBe(false);
      server.resume();
      await query;
      expect(answered).toBe(true);
    } finally {
      server.resume();
      await client.end().catch(() => undefined);
    }
  }, 60_000);
});
