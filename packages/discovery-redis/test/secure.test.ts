/**
 * Secure deployments against real redis-servers: TLS with certificates made
 * by openssl (client certificates required), a per-service ACL user with
 * exactly the documented permissions, `syncReplicas` with and without a
 * replica, and the URL forms of Cluster and Sentinel. Every failure mode is
 * checked for a clear error, and for failing fast instead of running into
 * the start timeout.
 */

import { readFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import {
  BackendRefusedError,
  DiscoveryUnavailableError,
  InvalidOptionsError,
  Worker,
  type WorkerOptions,
} from '@shardwork/core';
import { memberInfo, uniqueService } from '@shardwork/core/testing';
import {
  freePort,
  makeCerts,
  type RedisTestServer,
  type SilentServer,
  startRedisServer,
  startSilentServer,
  type TestCerts,
  until,
} from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisDiscovery, type RedisDiscoveryOptions } from '../src/index.js';
import { parseRedisUrl } from '../src/kit/url.js';

const opened: RedisDiscovery[] = [];
function connect(options: RedisDiscoveryOptions): RedisDiscovery {
  const d = new RedisDiscovery({ connectTimeoutMs: 2000, ...options });
  opened.push(d);
  return d;
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Start a worker on `discovery`; resolves with the error start() rejected with, and how long it took. */
async function failedStart(
  discovery: RedisDiscovery,
  options: Partial<WorkerOptions> = {},
): Promise<{ error: unknown; ms: number }> {
  const worker = new Worker({
    service: uniqueService(),
    shards: 4,
    discovery,
    leaseTtlMs: 1000,
    startTimeoutMs: 20_000,
    handler: () => undefined,
    ...options,
  });
  worker.on('error', () => undefined);
  const began = Date.now();
  const error = await worker.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = Date.now() - began;
  await worker.stop().catch(() => undefined);
  if (error === undefined) throw new Error('start() succeeded');
  return { error, ms };
}

/** A worker on `discovery` that owns all of its shards, stopped again. */
async function ownsEveryShard(discovery: RedisDiscovery, service = uniqueService()): Promise<void> {
  const worker = new Worker({ service, shards: 4, discovery, leaseTtlMs: 1000, handler: () => undefined });
  worker.on('error', () => undefined);
  try {
    await worker.start();
    await until(() => worker.status().shards.length === 4, 15_000, 'the worker owns all 4 shards');
  } finally {
    await worker.stop();
  }
}

afterAll(async () => {
  await Promise.all(opened.map((d) => d.close()));
});

describe('URLs of secure and highly available deployments', () => {
  it('reads cluster and sentinel URLs', () => {
    expect(parseRedisUrl('redis+cluster://u:p@10.0.0.1:7000,10.0.0.2,[::1]:7002?prefix=x:')).toMatchObject({
      topology: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      redis: { username: 'u', password: 'p' },
      prefix: 'x:',
    });
    expect(
      parseRedisUrl('redis+sentinel://:pw@s1,s2:26380/mymaster/2?sentinelPassword=sp&syncReplicas=1'),
    ).toMatchObject({
      topology: 'sentinel',
      redis: {
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
        ],
        name: 'mymaster',
        db: 2,
        password: 'pw',
        sentinelPassword: 'sp',
      },
      syncReplicas: 1,
    });
  });

  it('decodes a password with special characters', () => {
    const password = 'p@ss:w/rd%?#&=';
    const url = `redis://app:${encodeURIComponent(password)}@127.0.0.1:6379`;
    expect(parseRedisUrl(url).redis.password).toBe(password);
  });

  it.each([
    ['redis+clutser://h:1', 'one of the schemes redis, rediss, redis+cluster, rediss+cluster'],
    ['redis+cluster://h1:1,h2:2/0', 'a cluster has database 0 only'],
    ['redis+cluster://', 'at least one seed node'],
    ['redis+sentinel://s1:26379', "the primary's name as the path"],
    ['redis://h1:1,h2:2', 'use redis+cluster:// or redis+sentinel://'],
    ['redis://h?ca=/tmp/ca.pem', '"ca" only with a TLS scheme'],
    ['rediss://h?ca=/nonexistent/ca.pem', 'a readable PEM file (no such file)'],
    ['rediss://h?cert=/nonexistent/c.pem', 'a client certificate and its key together'],
    ['redis://u:%zz@h', 'percent-encoded password'],
    ['redis://h?prefix=a&prefix=b', 'each query parameter once'],
    ['redis+cluster://h:99999', 'a port from 1 to 65535'],
  ])('rejects %s', (url, expectation) => {
    const error = thrown(() => new RedisDiscovery({ url }));
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toContain(expectation);
  });

  it('refuses a password with an unencoded #, ? or /, naming neither the password nor a part of it', () => {
    for (const url of [
      'redis://app:s3cr#et@127.0.0.1:6379',
      'redis://app:s3cr?et@127.0.0.1:6379',
      'redis://u:p@ss:w/rd@h',
    ]) {
      const error = thrown(() => new RedisDiscovery({ url }));
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as Error).message).toMatch(/percent-encoded/);
      expect(`${(error as Error).message} ${String((error as InvalidOptionsError).value)}`).not.toMatch(
        /s3cr|ss:w|rd@/,
      );
    }
    // An unencoded "@" splits at the last one.
    expect(parseRedisUrl('redis://u:p@ss@127.0.0.1:6379').redis.password).toBe('p@ss');
  });

  it('refuses an option it does not know, without showing its value', () => {
    const error = thrown(() => new RedisDiscovery({ urll: 'redis://u:hunter2@h' } as never));
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error).toMatchObject({ option: 'urll' });
    expect((error as Error).message).toMatch(/a known option \(url, /);
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('never shows a sentinel password in errors', () => {
    const error = thrown(() => new RedisDiscovery({ url: 'redis+sentinel://s1/m?sentinelPassword=hunter2&x=1' }));
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('rejects a syncReplicas out of range', () => {
    const error = thrown(() => new RedisDiscovery({ syncReplicas: -1 }));
    expect((error as InvalidOptionsError).option).toBe('syncReplicas');
  });
});

describe('TLS', () => {
  let certs: TestCerts;
  let server: RedisTestServer;
  let query: string;

  beforeAll(async () => {
    certs = await makeCerts();
    server = await startRedisServer({ tls: { ...certs.server, ca: certs.ca } });
    query = `ca=${certs.ca}&cert=${certs.server.cert}&key=${certs.server.key}`;
  });
  afterAll(async () => {
    await server?.stop();
    await certs?.remove();
  });

  it('runs a service over TLS with a client certificate, from a URL or from options', async () => {
    const app = await certs.client('app');
    await ownsEveryShard(
      connect({ url: `rediss://127.0.0.1:${server.port}?ca=${certs.ca}&cert=${app.cert}&key=${app.key}` }),
    );
    const d = connect({
      url: `rediss://127.0.0.1:${server.port}`,
      tls: { caFile: certs.ca, certFile: app.cert, keyFile: app.key },
    });
    const svc = uniqueService();
    await d.register(svc, memberInfo(), 5000);
    expect((await d.snapshot(svc)).members).toHaveLength(1);
  });

  it('fails start() at once, naming the cause, when the server is not signed by the given CA', async () => {
    const d = connect({
      url: `rediss://127.0.0.1:${server.port}?ca=${certs.otherCa}&cert=${certs.server.cert}&key=${certs.server.key}`,
    });
    const { error, ms } = await failedStart(d);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as BackendRefusedError).reason).toBe('tls');
    expect(String(error)).toContain("the server's certificate is not signed by a trusted CA");
    expect(ms).toBeLessThan(10_000); // not the 20 s start timeout
  });

  it('fails start() naming the cause without a client certificate, or with one the server does not trust', async () => {
    const without = await failedStart(connect({ url: `rediss://127.0.0.1:${server.port}?ca=${certs.ca}` }));
    expect(without.error).toBeInstanceOf(BackendRefusedError);
    expect(String(without.error)).toMatch(
      /TLS: the server (requires a client certificate|rejected our client certificate)/,
    );
    const foreign = await certs.client('intruder', { foreign: true });
    const untrusted = await failedStart(
      connect({ url: `rediss://127.0.0.1:${server.port}?ca=${certs.ca}&cert=${foreign.cert}&key=${foreign.key}` }),
    );
    expect(untrusted.error).toBeInstanceOf(BackendRefusedError);
    expect(String(untrusted.error)).toMatch(/TLS: the server (rejected our client certificate|requires a client)/);
  });

  it('refuses an expired client certificate before connecting', async () => {
    const old = await certs.client('old', { expired: true });
    const error = thrown(
      () =>
        new RedisDiscovery({ url: `rediss://127.0.0.1:${server.port}?ca=${certs.ca}&cert=${old.cert}&key=${old.key}` }),
    );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).option).toBe('url.cert');
    expect((error as Error).message).toContain('a certificate that has not expired (it expired on');
    const viaOptions = thrown(() => new RedisDiscovery({ tls: { certFile: old.cert, keyFile: old.key } }));
    expect((viaOptions as InvalidOptionsError).option).toBe('tls.certFile');
  });

  it("fails start() naming the cause when the server's certificate has expired", async () => {
    // redis-server would serve an expired certificate as well; a bare TLS listener is enough to see the client's check.
    const tlsServer = createTlsServer({
      cert: readFileSync(certs.expiredServer.cert),
      key: readFileSync(certs.expiredServer.key),
    });
    tlsServer.on('tlsClientError', () => undefined);
    const port = await freePort();
    await new Promise<void>((resolve) => tlsServer.listen(port, '127.0.0.1', resolve));
    try {
      const { error, ms } = await failedStart(connect({ url: `rediss://127.0.0.1:${port}?ca=${certs.ca}` }));
      expect(error).toBeInstanceOf(BackendRefusedError);
      expect(String(error)).toContain("TLS: the server's certificate has expired");
      expect(ms).toBeLessThan(10_000);
    } finally {
      await new Promise((resolve) => tlsServer.close(resolve));
    }
  });

  it('says to check the scheme when rediss:// meets a plain port', async () => {
    // A plain redis-server reads the TLS handshake as the start of a command and waits: no error, only silence.
    const plain = await startRedisServer();
    try {
      const d = connect({ url: `rediss://127.0.0.1:${plain.port}?${query}`, connectTimeoutMs: 1000 });
      const { error } = await failedStart(d, { startTimeoutMs: 2000 });
      expect(String(error)).toContain('with TLS on, a port that serves plain TCP stays silent like this');
    } finally {
      await plain.stop();
    }
  });

  it('fails with a TLS explanation when the server speaks plain TCP', async () => {
    // A listener that answers at once in plain text: the client's handshake reads garbage.
    const plainText = await startSilentServer({ reply: '-ERR not TLS\r\n' });
    const { port } = plainText;
    try {
      const { error } = await failedStart(connect({ url: `rediss://127.0.0.1:${port}?${query}` }));
      expect(error).toBeInstanceOf(BackendRefusedError);
      expect(String(error)).toContain('does not speak TLS on this port');
    } finally {
      await plainText.close();
    }
  });
});

describe('per-service ACL user', () => {
  let server: RedisTestServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** The least-privilege user of service `svc` under prefix `sw:`, as the README documents it. */
  const serviceAcl = (svc: string, extra: readonly string[] = []): string[] => [
    'ACL',
    'SETUSER',
    svc,
    'reset',
    'on',
    '>pa55',
    `~sw:{${svc}}:*`,
    `&sw:{${svc}}:events`,
    '-@all',
    '+evalsha',
    '+eval',
    '+subscribe',
    '+unsubscribe',
    '+ping',
    '+info',
    '+time',
    '+get',
    '+set',
    '+incr',
    '+del',
    '+hget',
    '+hmget',
    '+hset',
    '+hdel',
    '+hgetall',
    '+zadd',
    '+zrem',
    '+zscore',
    '+zrange',
    '+zrangebyscore',
    '+publish',
    ...extra,
  ];

  it("runs its own service and is refused on another service's keys, at once and by name", async () => {
    expect(await server.command(...serviceAcl('billing'))).toBe('+OK\r\n');
    const asBilling = connect({ url: `redis://billing:pa55@127.0.0.1:${server.port}?prefix=sw:` });
    await ownsEveryShard(asBilling, 'billing');

    const { error, ms } = await failedStart(asBilling, { service: 'payroll' });
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as BackendRefusedError).reason).toBe('permission');
    expect(String(error)).toContain('NOPERM');
    expect(String(error)).toContain('the package README lists the exact ACL');
    expect(ms).toBeLessThan(10_000);
  });

  it('names the command an ACL forbids', async () => {
    const acl = serviceAcl('ledger').filter((rule) => rule !== '+evalsha' && rule !== '+eval');
    expect(await server.command(...acl)).toBe('+OK\r\n');
    const d = connect({ url: `redis://ledger:pa55@127.0.0.1:${server.port}?prefix=sw:` });
    const { error } = await failedStart(d, { service: 'ledger' });
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect(String(error)).toMatch(/NOPERM.*'evalsha'/);
  });

  it('reports a password with special characters as accepted, and a wrong one as refused', async () => {
    const password = 'p@ss:w/rd%?#&=';
    await server.command('ACL', 'SETUSER', 'special', 'reset', 'on', `>${password}`, '~sw:*', '&sw:*', '+@all');
    await ownsEveryShard(
      connect({ url: `redis://special:${encodeURIComponent(password)}@127.0.0.1:${server.port}?prefix=sw:` }),
    );
    const { error } = await failedStart(connect({ url: `redis://special:wrong@127.0.0.1:${server.port}` }));
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as BackendRefusedError).reason).toBe('auth');
    expect(String(error)).toContain('WRONGPASS');
  });
});

describe('syncReplicas', () => {
  it('fails writes that no replica has, and passes them once a replica follows', async () => {
    const primary = await startRedisServer();
    const replica = await startRedisServer({ extraArgs: ['--replicaof', '127.0.0.1', '1'] });
    try {
      const d = connect({ url: `${primary.url}?syncReplicas=1`, commandTimeoutMs: 300 });
      const svc = uniqueService();
      const error = await d.register(svc, memberInfo(), 5000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DiscoveryUnavailableError);
      expect(String(error)).toContain('only 0 of 1 replicas (syncReplicas)');

      await replica.command('REPLICAOF', '127.0.0.1', String(primary.port));
      await until(
        async () => (await primary.command('INFO', 'replication')).includes('connected_slaves:1'),
        15_000,
        'the replica follows the primary',
      );
      await until(
        async () =>
          d.register(svc, memberInfo(), 5000).then(
            () => true,
            () => false,
          ),
        15_000,
        'a write reaches the replica',
      );
      expect((await d.snapshot(svc)).members.length).toBeGreaterThan(0);
    } finally {
      await replica.stop();
      await primary.stop();
    }
  });
});

describe('startTimeoutMs against a server that accepts and never answers', () => {
  let silent: SilentServer;
  let port: number;
  beforeAll(async () => {
    silent = await startSilentServer();
    port = silent.port;
  });
  afterAll(async () => {
    await silent?.close();
  });

  it.each(['redis', 'rediss'])('holds for %s://', async (scheme) => {
    const d = connect({ url: `${scheme}://127.0.0.1:${port}`, connectTimeoutMs: 1000 });
    const { error, ms } = await failedStart(d, { startTimeoutMs: 3000 });
    expect(String(error)).toContain(`127.0.0.1:${port}`);
    expect(ms).toBeGreaterThanOrEqual(2900);
    expect(ms).toBeLessThan(3000 + 1500);
  });
});

describe('a database number the server does not have', () => {
  let server: RedisTestServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('fails start() at once with BackendRefusedError, and writes nothing to database 0', async () => {
    const d = connect({ url: `${server.url}/99` });
    const { error, ms } = await failedStart(d);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect(error).toMatchObject({ reason: 'config' });
    expect(String(error)).toMatch(/DB index is out of range.*fix the \/<db> of the URL/);
    expect(ms).toBeLessThan(5000);
    expect(await server.command('DBSIZE')).toBe(':0\r\n');
  });
});
