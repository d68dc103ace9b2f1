/**
 * What the tests of this package share: the private PostgreSQL server that
 * `global-setup.ts` starts for the run (trust authentication, database
 * `test`), a schema of their own per test file (dropped afterwards), and a
 * pool to look at or tamper with the tables directly.
 */

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import { PostgresDiscovery, type PostgresDiscoveryOptions } from '../src/index.js';

/** The shared test server's database (see `global-setup.ts`). */
export const SYSTEM_URL = sharedUrl();

/** `host:port` of the shared test server. */
export const SYSTEM_HOST = new URL(SYSTEM_URL).host;

function sharedUrl(): string {
  const url = process.env.SHARDWORK_TEST_POSTGRES;
  if (url === undefined) {
    throw new Error('SHARDWORK_TEST_POSTGRES is not set: run these tests with vitest --project=discovery-postgres');
  }
  return url;
}

/** A schema name of its own for one test file. */
export function uniqueSchema(tag: string): string {
  return `swd_${tag}_${randomBytes(4).toString('hex')}`;
}

/**
 * Connections for one test file in `schema` of the system server: `connect`
 * opens a discovery (closed after each test), `admin` runs SQL; the schema is
 * dropped after the file.
 */
export function systemPostgres(schema: string): {
  connect(options?: PostgresDiscoveryOptions): PostgresDiscovery;
  admin: pg.Pool;
} {
  const admin = new pg.Pool({ connectionString: SYSTEM_URL, max: 2 });
  admin.on('error', () => undefined);
  const open: PostgresDiscovery[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end();
  });
  return {
    admin,
    connect(options = {}) {
      const d = new PostgresDiscovery({ url: SYSTEM_URL, schema, ...options });
      open.push(d);
      return d;
    },
  };
}
