/**
 * Options and URLs (checked before anything connects, with errors that name
 * the option and what to do), the protocol registry, errors of a server that
 * is down, refuses or lacks the database, and the schema migrations.
 */

import {
  BackendRefusedError,
  createDiscovery,
  DiscoveryUnavailableError,
  InvalidOptionsError,
  parseDiscoveryUrl,
} from '@shardwork/core';
import { memberInfo, uniqueService } from '@shardwork/core/testing';
import { freePort } from '@shardwork/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  compilePostgresOptions,
  DEFAULT_SCHEMA,
  discoveryFromUrl,
  PostgresDiscovery,
  SCHEMA_VERSION,
  SchemaMigrationError,
} from '../src/index.js';
import { SYSTEM_HOST, SYSTEM_URL, systemPostgres, uniqueSchema } from './support.js';

const schema = uniqueSchema('options');
const { connect, admin } = systemPostgres(schema);

function invalid(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error('expected InvalidOptionsError');
}

describe('compilePostgresOptions', () => {
  it('fills defaults, takes its own URL parameters out, and keeps the rest for node-postgres', () => {
    const compiled = compilePostgresOptions({
      url: 'postgresql://app:s3cr%40t@db.internal:6543/prod?schema=sw_prod&sslmode=require&callTimeoutMs=1500',
    });
    expect(compiled.schema).toBe('sw_prod');
    expect(compiled.callTimeoutMs).toBe(1500);
    expect(compiled.migrate).toBe(true);
    expect(compiled.connection.connectionString).toBe(
      'postgresql://app:s3cr%40t@db.internal:6543/prod?sslmode=require',
    );
    expect(compiled.connection).toMatchObject({ query_timeout: 1500, connectionTimeoutMillis: 1500, max: 4 });
    expect(compiled.target).toBe('postgresql://app@db.internal:6543/prod');
    const defaults = compilePostgresOptions();
    expect(defaults.schema).toBe(DEFAULT_SCHEMA);
    expect(defaults.callTimeoutMs).toBe(3000);
    expect(defaults.target).toBe('postgres://127.0.0.1:5432/postgres');
    // Explicit options win over the URL.
    expect(compilePostgresOptions({ url: 'postgres://h/db?schema=a', schema: 'b' }).schema).toBe('b');
  });

  it('takes migrate=false from the URL, and refuses any other value by name', () => {
    expect(compilePostgresOptions({ url: 'postgres://h/db?migrate=false' }).migrate).toBe(false);
    expect(compilePostgresOptions({ url: 'postgres://h/db?migrate=true' }).migrate).toBe(true);
    expect(compilePostgresOptions({ url: 'postgres://h/db?migrate=false', migrate: true }).migrate).toBe(true);
    expect(() => compilePostgresOptions({ url: 'postgres://h/db?migrate=maybe' })).toThrow(/migrate.*true or false/);
  });

  it('names the option and what to do, never showing a password', () => {
    expect(invalid(() => compilePostgresOptions({ url: 'mysql://h/db' })).message).toMatch(
      /Invalid option "url": a postgres:\/\/ or postgresql:\/\/ URL/,
    );
    const bad = invalid(() => compilePostgresOptions({ url: 'postgres://u:topsecret@h:99999/db' }));
    expect(bad.message).not.toContain('topsecret');
    expect(invalid(() => compilePostgresOptions({ url: 'postgres://h/db?schema=Bad-Name' })).option).toBe('schema');
    expect(invalid(() => compilePostgresOptions({ url: 'postgres://h/db?schema=a&schema=b' })).option).toBe('schema');
    expect(invalid(() => compilePostgresOptions({ url: 'postgres://h/db?callTimeoutMs=soon' })).option).toBe(
      'callTimeoutMs',
    );
    expect(invalid(() => compilePostgresOptions({ callTimeoutMs: 0 })).option).toBe('callTimeoutMs');
    expect(invalid(() => compilePostgresOptions({ poolSize: 0 })).option).toBe('poolSize');
    expect(invalid(() => compilePostgresOptions({ migrate: 'yes' as never })).option).toBe('migrate');
    expect(invalid(() => compilePostgresOptions({ pool: {} as never })).option).toBe('pool');
    const pool = new pg.Pool();
    expect(invalid(() => compilePostgresOptions({ pool, url: 'postgres://h/db' })).message).toMatch(
      /no url when a pool/,
    );
    void pool.end();
  });

  it('checks a service name before it reaches SQL', async () => {
    const d = connect();
    expect(invalid(() => d.watch('', () => undefined)).option).toBe('service');
    await expect(d.register('a\0b', memberInfo(), 1000)).rejects.toBeInstanceOf(InvalidOptionsError);
  });
});

describe('by URL', () => {
  it('loads this package for postgres:// and postgresql://', async () => {
    expect(parseDiscoveryUrl('postgres://h/db')).toMatchObject({ protocol: 'postgres' });
    const a = await createDiscovery(`${SYSTEM_URL}?schema=${schema}`);
    const b = await createDiscovery(`${SYSTEM_URL.replace('postgres://', 'postgresql://')}?schema=${schema}`);
    try {
      expect(a).toBeInstanceOf(PostgresDiscovery);
      expect(b).toBeInstanceOf(PostgresDiscovery);
      expect((a as PostgresDiscovery).schema).toBe(schema);
      const svc = uniqueService('url');
      const m = memberInfo();
      await a.register(svc, m, 5000);
      expect((await b.snapshot(svc)).members.map((x) => x.id)).toEqual([m.id]);
    } finally {
      await a.close();
      await b.close();
    }
    expect(discoveryFromUrl('postgres://h/db')).toBeInstanceOf(PostgresDiscovery);
  });

  it("runs on the application's pool and leaves it open", async () => {
    const pool = new pg.Pool({ connectionString: SYSTEM_URL, max: 2 });
    const d = new PostgresDiscovery({ pool, schema });
    expect(d.target).toBe(`postgres://postgres@${SYSTEM_HOST}/test (the given pool)`);
    const svc = uniqueService('pool');
    const m = memberInfo();
    await d.register(svc, m, 5000);
    expect((await d.snapshot(svc)).members).toHaveLength(1);
    await d.close();
    const { rows } = await pool.query('SELECT 1 AS one');
    expect(rows).toEqual([{ one: 1 }]);
    await pool.end();
  });
});

describe('a server that is not there or refuses', () => {
  it('fails fast with DiscoveryUnavailableError (retryable) when nothing listens', async () => {
    const port = await freePort();
    const d = connect({ url: `postgres://postgres:pw@127.0.0.1:${port}/test` });
    const began = performance.now();
    const error = await d.snapshot(uniqueService()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryUnavailableError);
    expect((error as DiscoveryUnavailableError).retryable).toBe(true);
    expect((error as Error).message).toContain(`postgres://postgres@127.0.0.1:${port}/test`);
    expect((error as Error).message).toMatch(/ECONNREFUSED.*is PostgreSQL running/);
    expect((error as Error).message).not.toContain('pw');
    expect(performance.now() - began).toBeLessThan(3000);
  });

  it('refuses a database that does not exist, an unknown role, and TLS the server does not speak', async () => {
    const cases = [
      [`postgres://postgres@${SYSTEM_HOST}/no_such_db_swd`, 'config', /does not exist: create the database/],
      [`postgres://no_such_role_swd@${SYSTEM_HOST}/test`, 'auth', /check the user and password/],
      [`postgres://postgres@${SYSTEM_HOST}/test?sslmode=require`, 'tls', /TLS|SSL/],
    ] as const;
    for (const [url, reason, message] of cases) {
      const error = await connect({ url })
        .snapshot(uniqueService())
        .catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(BackendRefusedError);
      expect(error).toMatchObject({ reason, retryable: false });
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('schema migrations', () => {
  it('creates the schema once under the advisory lock when many start at once', async () => {
    const fresh = uniqueSchema('mig');
    const many = Array.from({ length: 4 }, () => connect({ schema: fresh }));
    try {
      await Promise.all(many.map((d) => d.snapshot(uniqueService())));
      const { rows } = await admin.query(`SELECT version FROM "${fresh}".discovery_migrations`);
      expect(rows).toEqual([{ version: SCHEMA_VERSION }]);
    } finally {
      await admin.query(`DROP SCHEMA "${fresh}" CASCADE`);
    }
  });

  it('refuses a schema that is behind with migrate: false, and one newer than the package', async () => {
    const fresh = uniqueSchema('mig');
    try {
      const behind = await connect({ schema: fresh, migrate: false })
        .snapshot(uniqueService())
        .catch((e: unknown) => e);
      expect(behind).toBeInstanceOf(SchemaMigrationError);
      expect((behind as Error).message).toMatch(/at version 0, this package needs 1: migrate the schema/);
      await connect({ schema: fresh }).snapshot(uniqueService());
      await connect({ schema: fresh, migrate: false }).snapshot(uniqueService());
      await admin.query(`INSERT INTO "${fresh}".discovery_migrations (version, name) VALUES (99, 'future')`);
      const newer = await connect({ schema: fresh })
        .snapshot(uniqueService())
        .catch((e: unknown) => e);
      expect(newer).toBeInstanceOf(SchemaMigrationError);
      expect((newer as Error).message).toMatch(/version 99, newer than this @shardwork\/discovery-postgres/);
    } finally {
      await admin.query(`DROP SCHEMA "${fresh}" CASCADE`);
    }
  });

  it('creates the tables again after the schema was dropped, with tokens above the old ones', async () => {
    const fresh = uniqueSchema('mig');
    const d = connect({ schema: fresh });
    try {
      const svc = uniqueService('dropped');
      const m = memberInfo();
      await d.register(svc, m, 5000);
      const { results } = await d.claimMany(svc, m.id, [0]);
      await admin.query(`DROP SCHEMA "${fresh}" CASCADE`);
      const gone = await d.renew(svc, m.id).catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(DiscoveryUnavailableError);
      expect((gone as Error).message).toMatch(/tables of schema ".*" are missing .*created again at the next call/);
      await expect(d.renew(svc, m.id)).rejects.toMatchObject({ code: 'LEASE_EXPIRED' });
      const again = memberInfo();
      await d.register(svc, again, 5000);
      const next = await d.claimMany(svc, again.id, [0]);
      expect(next.results[0]?.token).toBeGreaterThan(results[0]?.token ?? Number.POSITIVE_INFINITY);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${fresh}" CASCADE`);
    }
  });
});
