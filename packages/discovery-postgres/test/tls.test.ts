/**
 * TLS to a private PostgreSQL server with `ssl = on`: node-postgres's URL
 * parameters (`sslmode`, `sslrootcert`) work as in the application's other
 * PostgreSQL code, and a certificate the client does not trust is refused at
 * once (`BackendRefusedError`, reason `tls`, in core's words), not retried.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendRefusedError } from '@shardwork/core';
import { memberInfo, uniqueService } from '@shardwork/core/testing';
import { makeCerts, type PostgresTestServer, startPostgres, type TestCerts } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDiscovery } from '../src/index.js';

let certs: TestCerts;
let server: PostgresTestServer;
let dir: string;

beforeAll(async () => {
  certs = await makeCerts();
  // PostgreSQL reads its key only if the server's user owns it and nobody else may read it.
  dir = mkdtempSync(join(tmpdir(), 'swd-pg-tls-'));
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
});
afterAll(async () => {
  await server?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('connects with sslmode=verify-full and the CA, and works', async () => {
    const url = `postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`;
    const d = new PostgresDiscovery({ url });
    try {
      const svc = uniqueService('tls');
      const m = memberInfo();
      await d.register(svc, m, 5000);
      const events: unknown[] = [];
      d.watch(svc, (e) => events.push(e));
      expect((await d.snapshot(svc)).members.map((x) => x.id)).toEqual([m.id]);
      const [row] = await server.query<{ ssl: boolean }>(
        "SELECT bool_or(ssl) AS ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE query LIKE 'LISTEN%'",
      );
      expect(row?.ssl).toBe(true); // the LISTEN connection uses TLS too
    } finally {
      await d.close();
    }
  });

  it('refuses a server certificate from a CA it does not trust, at once', async () => {
    const url = `postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.otherCa)}`;
    const d = new PostgresDiscovery({ url });
    try {
      const began = performance.now();
      const error = await d.snapshot(uniqueService()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendRefusedError);
      expect(error).toMatchObject({ reason: 'tls', retryable: false });
      expect((error as Error).message).toMatch(/TLS: /);
      expect(performance.now() - began).toBeLessThan(2000);
    } finally {
      await d.close();
    }
  });
});
