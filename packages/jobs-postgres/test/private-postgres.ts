/**
 * One private PostgreSQL server per test file, with a pool and (optionally)
 * the schema migrated: started before the file's tests, stopped after.
 */

import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { migrate, type StoredJob } from '../src/index.js';

/** The server and pool of the file (read them inside tests). */
export interface PrivatePostgres {
  readonly server: PostgresTestServer;
  readonly pool: pg.Pool;
}

/** Start a private server for this file; `schema`: migrate it first. */
export function privatePostgres(schema?: string, setup?: (pg: PrivatePostgres) => Promise<void>): PrivatePostgres {
  let server: PostgresTestServer | undefined;
  let pool: pg.Pool | undefined;
  const handle: PrivatePostgres = {
    get server() {
      if (server === undefined) throw new Error('the private PostgreSQL server is not started yet');
      return server;
    },
    get pool() {
      if (pool === undefined) throw new Error('the private PostgreSQL server is not started yet');
      return pool;
    },
  };
  beforeAll(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 8 });
    // Idle connections die with a crashed server; the pool makes new ones.
    pool.on('error', () => undefined);
    if (schema !== undefined) await migrate(pool, { schema });
    await setup?.(handle);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });
  return handle;
}

let jobs = 0;

/** A job to store: ready now in partition 0 of queue `default`, args `{"n":<its number>}`, unless `over` says otherwise. */
export function testJob(over: Partial<StoredJob> = {}): StoredJob {
  const n = ++jobs;
  return {
    id: `job-${n}`,
    queue: 'default',
    handler: 'h',
    partition: 0,
    key: undefined,
    uniqueKey: undefined,
    ordered: false,
    argsJson: `{"n":${n}}`,
    enqueuedAt: Date.now(),
    runAt: Date.now(),
    ...over,
  };
}
