/**
 * A private PostgreSQL with `ssl = on`: the queue over TLS with node-postgres's
 * URL parameters, and an application user with only the grants the README
 * lists, the schemas migrated beforehand by `migrateUrl` (what `shardwork db
 * migrate` runs) as an administrator.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { makeCerts, type PostgresTestServer, startPostgres, type TestCerts, until } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrateUrl } from '../src/index.js';

let certs: TestCerts;
let server: PostgresTestServer;
let dir: string;
const queues: JobQueue[] = [];

beforeAll(async () => {
  certs = await makeCerts();
  // PostgreSQL reads its key only if the server's user owns it and nobody else may read it.
  dir = mkdtempSync(join(tmpdir(), 'swj-pg-tls-'));
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  copyFileSync(certs.server.cert, cert);
  copyFileSync(certs.server.key, key);
  chmodSync(key, 0o600);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    for (const path of [dir, cert, key]) chownSync(path, uid, gid);
  }
  server = await startPostgres({ settings: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key } });
}, 60_000);
afterEach(async () => {
  for (const q of queues.splice(0)) await q.stop({ timeoutMs: 0 });
});
afterAll(async () => {
  await server?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** A queue that runs `work` jobs into `ran`, started. */
async function consumer(url: string, ran: string[], adapter: Record<string, unknown> = {}): Promise<JobQueue> {
  const q = createJobQueue(url, { adapter: { revokeTimeoutMs: 500, ...adapter } });
  q.on('error', () => undefined);
  q.register('work', (_args, ctx) => void ran.push(ctx.id));
  queues.push(q);
  await q.start();
  return q;
}

describe('TLS and least privilege', () => {
  it('runs over TLS with sslmode=verify-full and the CA: every connection of the queue is encrypted', async () => {
    const ca = encodeURIComponent(certs.ca);
    const url = `postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=verify-full&sslrootcert=${ca}&schema=tls&partitions=2&leaseTtlMs=1000`;
    const ran: string[] = [];
    const q = await consumer(url, ran);
    const { id } = await q.perform({ handler: 'work' });
    await until(() => ran.includes(id), 10_000, 'the job ran over TLS');
    const rows = await server.query<{ ssl: boolean; n: string }>(
      `SELECT s.ssl, count(*) AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
       WHERE a.usename = 'postgres' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() GROUP BY s.ssl`,
    );
    expect(rows.map((r) => r.ssl)).toEqual([true]);
  });

  it('refuses a server certificate from another CA, naming TLS, instead of retrying', async () => {
    const other = encodeURIComponent(certs.otherCa);
    const q = createJobQueue(
      `postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=verify-full&sslrootcert=${other}&schema=tls2`,
    );
    queues.push(q);
    const error = await q.perform({ handler: 'work' }).catch((e: unknown) => e);
    expect(String((error as Error).message)).toMatch(/certificate|self.signed|TLS|SSL/i);
  });

  it('runs as a user with only the README grants once db migrate made the schemas (migrate: false)', async () => {
    const tls = `sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`;
    const admin = `postgres://postgres@127.0.0.1:${server.port}/postgres?${tls}&schema=least`;
    const done = await migrateUrl(admin);
    expect(done).toMatchObject({ schema: 'least', discovery: { schema: 'least_discovery' } });
    await server.query('CREATE ROLE app LOGIN');
    for (const schema of ['least', 'least_discovery']) {
      await server.query(`GRANT USAGE ON SCHEMA ${schema} TO app`);
      await server.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO app`);
      await server.query(`GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA ${schema} TO app`);
    }
    const url = `postgres://app@127.0.0.1:${server.port}/postgres?${tls}&schema=least&partitions=2&leaseTtlMs=1000`;
    const ran: string[] = [];
    const q = await consumer(url, ran, { migrate: false });
    const ids = await q.performMany(Array.from({ length: 10 }, (_, n) => ({ handler: 'work', args: { n } })));
    await until(() => ran.length === 10, 15_000, 'every job ran as app');
    expect(new Set(ran)).toEqual(new Set(ids.map((r) => r.id)));
    expect((await q.stats()).total.ready).toBe(0);
    // Without migrate: false the same user cannot create a schema, and the error says so.
    const creating = createJobQueue(url.replace('schema=least', 'schema=least_new'));
    queues.push(creating);
    await expect(creating.perform({ handler: 'work' })).rejects.toThrow(/permission denied/);
    // With it, a schema nobody migrated is named, with what to run.
    const unmigrated = createJobQueue(url.replace('schema=least', 'schema=least_none'), {
      adapter: { migrate: false },
    });
    queues.push(unmigrated);
    await expect(unmigrated.perform({ handler: 'work' })).rejects.toThrow(
      /schema "least_none" are at version 0 .*shardwork db migrate/,
    );
  });
});
