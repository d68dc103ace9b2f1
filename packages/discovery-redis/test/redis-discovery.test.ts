import type { Discovery, DiscoveryEvent } from '@shardwork/core';
import { BackendRefusedError, createDiscovery, DiscoveryUnavailableError, InvalidOptionsError } from '@shardwork/core';
import { claimOne, memberInfo, uniqueService } from '@shardwork/core/testing';
import { eventually, freePort, type RedisTestServer, sleep, startRedisServer, TcpProxy } from '@shardwork/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { discoveryFromUrl, RedisDiscovery, type RedisDiscoveryOptions } from '../src/index.js';
import { parseRedisUrl } from '../src/kit/url.js';
import { compileOptions } from '../src/options.js';

/** Retry `fn` until it passes or `withinMs` is over. */

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('URL parsing and options', () => {
  it('parses host, port, credentials, db and prefix', () => {
    expect(parseRedisUrl('redis://user:p%40ss@cache.local:6380/3?prefix=app:')).toEqual({
      topology: 'single',
      nodes: [],
      redis: { host: 'cache.local', port: 6380, db: 3, username: 'user', password: 'p@ss' },
      prefix: 'app:',
    });
    expect(parseRedisUrl('redis://:secret@127.0.0.1')).toEqual({
      topology: 'single',
      nodes: [],
      redis: { host: '127.0.0.1', port: 6379, db: 0, password: 'secret' },
    });
    expect(parseRedisUrl('redis://[::1]:7000/').redis).toMatchObject({ host: '::1', port: 7000, db: 0 });
    expect(parseRedisUrl('redis://h?pollIntervalMs=500&commandTimeoutMs=300&connectTimeoutMs=900')).toMatchObject({
      pollIntervalMs: 500,
      commandTimeoutMs: 300,
      connectTimeoutMs: 900,
    });
  });

  it('turns on TLS for rediss://, with SNI for host names', () => {
    expect(parseRedisUrl('rediss://redis.example.com:6380').redis.tls).toEqual({ servername: 'redis.example.com' });
    expect(parseRedisUrl('rediss://10.0.0.1').redis.tls).toEqual({});
    expect(parseRedisUrl('redis://10.0.0.1').redis.tls).toBeUndefined();
  });

  it.each([
    ['http://127.0.0.1:6379', 'one of the schemes redis, rediss, redis+cluster'],
    ['redis://h/zero', 'database number'],
    ['redis://h?prefx=a', 'query parameters'],
    ['redis://h?pollIntervalMs=soon', 'whole number'],
    ['redis://h#x', 'fragment'],
    ['not a url', 'a URL such as'],
  ])('rejects %s', (url, expectation) => {
    const error = thrown(() => parseRedisUrl(url));
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).option).toBe('url');
    expect((error as Error).message).toContain(expectation);
  });

  it('never shows the password in errors', () => {
    const error = thrown(() => new RedisDiscovery({ url: 'redis://user:hunter2@h/nodb' }));
    expect((error as Error).message).not.toContain('hunter2');
    expect((error as Error).message).toContain('***');
  });

  it('fills defaults and enforces fail-fast connection settings', () => {
    const compiled = compileOptions({ url: 'redis://h:1234/2?prefix=x:' });
    expect(compiled).toMatchObject({
      prefix: 'x:',
      commandTimeoutMs: 1000,
      connectTimeoutMs: 2000,
      pollIntervalMs: 2000,
    });
    expect(compiled.connection.kind).toBe('owned');
    if (compiled.connection.kind !== 'owned') return;
    expect(compiled.connection.options).toMatchObject({
      host: 'h',
      port: 1234,
      db: 2,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      socketTimeout: 1000,
    });
    expect(compileOptions({}).prefix).toBe('sw:');
    expect(compileOptions({}).connection).toMatchObject({ options: { host: '127.0.0.1', port: 6379 } });
  });

  it('lets explicit options win over the URL', () => {
    const compiled = compileOptions({
      url: 'redis://u:p@h/1?prefix=a:&pollIntervalMs=100',
      prefix: 'b:',
      pollIntervalMs: 200,
      username: 'v',
      db: 4,
      tls: true,
      redis: { port: 7777 },
    });
    expect(compiled).toMatchObject({
      prefix: 'b:',
      pollIntervalMs: 200,
      target: 'redis://u:***@h/1?prefix=a:&pollIntervalMs=100',
    });
    expect(compiled.connection).toMatchObject({
      options: { host: 'h', port: 7777, username: 'v', password: 'p', db: 4, tls: {} },
    });
  });

  it.each<[RedisDiscoveryOptions, string]>([
    [{ commandTimeoutMs: 0 }, 'commandTimeoutMs'],
    [{ connectTimeoutMs: 1.5 }, 'connectTimeoutMs'],
    [{ pollIntervalMs: 5 }, 'pollIntervalMs'],
    [{ prefix: 5 as unknown as string }, 'prefix'],
    [{ db: -1 }, 'db'],
    [{ url: 42 as unknown as string }, 'url'],
    [{ redis: { keyPrefix: 'x:' } }, 'redis.keyPrefix'],
    [{ client: {} as Redis }, 'client'],
    [{ client: new Redis({ lazyConnect: true }), url: 'redis://h' }, 'url'],
    [{ password: 7 as unknown as string }, 'password'],
  ])('rejects %o', (options, option) => {
    const error = thrown(() => compileOptions(options));
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).option).toBe(option);
  });

  it('validates call arguments', async () => {
    const d = new RedisDiscovery({ url: 'redis://127.0.0.1:1' });
    await expect(d.ensureGroup('svc', { shardCount: 0, leaseTtlMs: 1000 })).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(d.register('svc', memberInfo(), 0)).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(d.ensureGroup('svc', { shardCount: 2, leaseTtlMs: 0 })).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(d.claimMany('svc', 'm', [-1])).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(d.claimMany('svc', 'm', [0, 1.5])).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(d.releaseMany('svc', 'm', [{ shard: 0, token: Number.NaN }])).rejects.toBeInstanceOf(
      InvalidOptionsError,
    );
    await expect(d.snapshot('')).rejects.toBeInstanceOf(InvalidOptionsError);
    await d.close();
  });
});

describe('against a redis-server', () => {
  let server: RedisTestServer;
  let admin: Redis;
  const open: Discovery[] = [];
  const connect = (options: RedisDiscoveryOptions = {}): RedisDiscovery => {
    const d = new RedisDiscovery({ url: server.url, ...options });
    open.push(d);
    return d;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => 50 });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('is created by URL through the core registry, lazily', async () => {
    const d = await createDiscovery(`${server.url}?prefix=viaurl:`);
    open.push(d);
    expect(d).toBeInstanceOf(RedisDiscovery);
    expect((d as RedisDiscovery).prefix).toBe('viaurl:');
    const e = discoveryFromUrl(server.url);
    open.push(e);
    expect(e.prefix).toBe('sw:');
  });

  it('keeps every key of a service under one hash tag and the prefix', async () => {
    const prefix = `layout${Date.now()}:`;
    const d = connect({ prefix });
    const svc = uniqueService();
    const m = memberInfo();
    await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 5000 });
    await d.register(svc, m, 5000);
    await claimOne(d, svc, m.id, 2);
    const keys = (await admin.keys(`${prefix}*`)).sort();
    expect(keys).toEqual(
      ['claims', 'info', 'members', 'meta', 'rev', 'seq', 'token'].map((k) => `${prefix}{${svc}}:${k}`),
    );
    expect(d.keys(svc).events).toBe(`${prefix}{${svc}}:events`);
    expect(await admin.type(`${prefix}{${svc}}:members`)).toBe('zset');
    expect(await admin.hget(`${prefix}{${svc}}:claims`, '2')).toMatch(new RegExp(`^${m.id}\\|\\d+$`));
    // Lease expiry comes from the server clock, in ms.
    const [seconds] = await admin.time();
    const expiry = Number(await admin.zscore(`${prefix}{${svc}}:members`, m.id));
    expect(Math.abs(expiry - (Number(seconds) * 1000 + 5000))).toBeLessThan(2000);
  });

  it('seeds counters from server time, below 2^53', async () => {
    const d = connect();
    const svc = uniqueService();
    const m = memberInfo();
    const { joinSeq } = await d.register(svc, m, 5000);
    const claim = await claimOne(d, svc, m.id, 0);
    if (!claim.ok) throw new Error('claim failed');
    const [seconds] = await admin.time();
    for (const value of [joinSeq, claim.token]) {
      expect(Number.isSafeInteger(value)).toBe(true);
      expect(value).toBeGreaterThan((Number(seconds) - 60) * 1e6);
    }
  });

  it('fails fast with DiscoveryUnavailableError when nothing listens', async () => {
    const port = await freePort();
    const d = connect({ url: `redis://127.0.0.1:${port}` });
    const started = performance.now();
    const error = await d.snapshot(uniqueService()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryUnavailableError);
    expect((error as DiscoveryUnavailableError).retryable).toBe(true);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(performance.now() - started).toBeLessThan(500);
    // And again while it is retrying in the background.
    await expect(d.register(uniqueService(), memberInfo(), 1000)).rejects.toBeInstanceOf(DiscoveryUnavailableError);
  });

  it('keeps fencing tokens and revisions increasing when Redis restarts with all data lost', async () => {
    const d = connect();
    const svc = uniqueService();
    const m = memberInfo();
    await d.register(svc, m, 10_000);
    const before = await claimOne(d, svc, m.id, 0);
    if (!before.ok) throw new Error('claim failed');
    const revBefore = (await d.snapshot(svc)).revision;
    const events: DiscoveryEvent[] = [];
    const unwatch = d.watch(svc, (e) => events.push(e));
    await sleep(100);

    await server.restart();
    // The member is gone with the data: renew must say so, not resurrect it.
    await eventually(async () => {
      await expect(d.renew(svc, m.id)).rejects.toMatchObject({ code: 'LEASE_EXPIRED' });
    }, 5000);
    const empty = await d.snapshot(svc);
    expect(empty.members).toEqual([]);
    expect(empty.revision).not.toBe(revBefore);
    const m2 = memberInfo();
    await d.register(svc, m2, 10_000);
    const after = await claimOne(d, svc, m2.id, 0);
    if (!after.ok) throw new Error('claim failed');
    expect(after.token).toBeGreaterThan(before.token);
    expect(BigInt((await d.snapshot(svc)).revision)).toBeGreaterThan(BigInt(revBefore));
    // The watcher was told that anything may have changed.
    await eventually(async () => expect(events.map((e) => e.type)).toContain('reset'), 5000);
    unwatch();
  });

  it('keeps tokens increasing after FLUSHALL on a live connection, and watchers notice by polling', async () => {
    const d = connect({ pollIntervalMs: 100 });
    const svc = uniqueService();
    const m = memberInfo();
    await d.register(svc, m, 10_000);
    const before = await claimOne(d, svc, m.id, 3);
    let changes = 0;
    const unwatch = d.watch(svc, () => {
      changes += 1;
    });
    await sleep(300);
    changes = 0;
    await admin.flushall(); // no PUBLISH: only the poll can notice
    await eventually(async () => expect(changes).toBeGreaterThan(0), 1000);
    unwatch();
    await expect(d.renew(svc, m.id)).rejects.toMatchObject({ code: 'LEASE_EXPIRED' });
    const m2 = memberInfo();
    await d.register(svc, m2, 10_000);
    const after = await claimOne(d, svc, m2.id, 3);
    expect(after.token).toBeGreaterThan(before.token);
  });

  it('reports the group age by server time, so the worker can wait out a possible data loss', async () => {
    const d = connect();
    const svc = uniqueService();
    expect((await d.snapshot(svc)).groupAgeMs).toBeUndefined();
    await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 5000 });
    await sleep(120);
    const age = (await d.snapshot(svc)).groupAgeMs ?? -1;
    expect(age).toBeGreaterThanOrEqual(100);
    expect(age).toBeLessThan(2000);
    // A second replica's ensureGroup does not make the group younger.
    await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 5000 });
    expect((await d.snapshot(svc)).groupAgeMs).toBeGreaterThanOrEqual(age);
  });

  it('announces an expiry by its own timer, without relying on the poll', async () => {
    const a = connect({ pollIntervalMs: 60_000 });
    const b = connect();
    const svc = uniqueService();
    const m = memberInfo();
    await b.register(svc, m, 500);
    const started = performance.now();
    let changedAt = 0;
    const unwatch = a.watch(svc, (e) => {
      if (e.changes?.some((c) => c.type === 'member:removed' && c.id === m.id)) changedAt ||= performance.now();
    });
    await eventually(async () => expect(changedAt).toBeGreaterThan(0), 2000);
    unwatch();
    expect(changedAt - started).toBeLessThan(900);
    expect((await a.snapshot(svc)).members).toEqual([]);
  });

  it('reports records it cannot parse and keeps the rest', async () => {
    const d = connect();
    const svc = uniqueService();
    const keys = d.keys(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    await claimOne(d, svc, m.id, 0);
    const [seconds] = await admin.time();
    const later = String((Number(seconds) + 60) * 1000);
    await admin.zadd(keys.members, later, 'no-info', later, 'bad-id', later, 'orphan-owner');
    await admin.hset(keys.info, 'bad-id', JSON.stringify({ ...memberInfo(), joinSeq: 1 }));
    await admin.hset(keys.info, 'orphan-owner', '[]');
    await admin.hset(keys.claims, 'x', `${m.id}|5`, '9', 'orphan-owner|7', '8', `${m.id}|notanumber`);
    await admin.hset(keys.meta, 'shardCount', 'many');
    const snap = await d.snapshot(svc);
    expect(snap.members.map((x) => x.id)).toEqual([m.id]);
    expect(snap.claims.map((c) => c.shard)).toEqual([0]);
    expect(snap.shardCount).toBeUndefined();
    const reasons = Object.fromEntries(snap.invalid.map((r) => [r.key, r.reason]));
    expect(Object.keys(reasons).sort()).toEqual(
      [
        `${keys.members}[no-info]`,
        `${keys.info}[bad-id]`,
        `${keys.info}[orphan-owner]`,
        `${keys.claims}[x]`,
        `${keys.claims}[9]`,
        `${keys.claims}[8]`,
        `${keys.meta}[shardCount]`,
      ].sort(),
    );
    const group = await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 5000 });
    expect(group).toMatchObject({ shardCount: undefined, leaseTtlMs: 5000, repaired: [] });
    expect(group.invalid).toEqual([
      { key: `${keys.meta}[shardCount]`, reason: 'shardCount "many" is not a positive integer' },
    ]);
    // A garbage claim does not block the shard.
    const other = memberInfo();
    await d.register(svc, other, 5000);
    const batch = await d.claimMany(svc, other.id, [8]);
    expect(batch.results[0]?.ok).toBe(true);
    expect(batch.repaired.map((r) => r.key)).toEqual([`${keys.claims}[8]`]);
  });

  it('works with an ACL user, and reports a wrong password as a refusal', async () => {
    await admin.call('ACL', 'SETUSER', 'shardwork', 'reset', 'on', '>s3cret', '~acl:*', '&acl:*', '+@all');
    const d = connect({ url: `redis://shardwork:s3cret@127.0.0.1:${server.port}?prefix=acl:` });
    const svc = uniqueService();
    const m = memberInfo();
    let changes = 0;
    const unwatch = d.watch(svc, () => {
      changes += 1;
    });
    await sleep(150);
    await d.register(svc, m, 5000);
    expect((await claimOne(d, svc, m.id, 1)).ok).toBe(true);
    await eventually(async () => expect(changes).toBeGreaterThan(0), 2000);
    unwatch();
    // Outside its key pattern the user is refused: a configuration error, not an outage.
    const wrongPrefix = connect({ url: `redis://shardwork:s3cret@127.0.0.1:${server.port}?prefix=sw:` });
    const denied = await wrongPrefix.snapshot(svc).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(BackendRefusedError);
    expect((denied as BackendRefusedError).reason).toBe('permission');
    expect(String(denied)).toContain('NOPERM');

    // A wrong password is not an outage either: retrying cannot fix it.
    const wrong = connect({ url: `redis://shardwork:nope@127.0.0.1:${server.port}` });
    const error = await wrong.snapshot(svc).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as BackendRefusedError).reason).toBe('auth');
    expect((error as BackendRefusedError).retryable).toBe(false);
    expect(String(error)).toContain('WRONGPASS');
  });

  it('fails calls within commandTimeoutMs while the connection is stalled, and recovers', async () => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: server.port });
    try {
      const d = connect({ url: `redis://127.0.0.1:${proxy.port}`, commandTimeoutMs: 300, connectTimeoutMs: 300 });
      const svc = uniqueService();
      const m = memberInfo();
      await d.register(svc, m, 10_000);
      proxy.stall();
      const started = performance.now();
      await expect(d.renew(svc, m.id)).rejects.toBeInstanceOf(DiscoveryUnavailableError);
      expect(performance.now() - started).toBeLessThan(700);
      await expect(d.snapshot(svc)).rejects.toBeInstanceOf(DiscoveryUnavailableError);
      proxy.heal();
      await eventually(() => d.renew(svc, m.id), 3000);
      proxy.cut();
      await expect(d.renew(svc, m.id)).rejects.toBeInstanceOf(DiscoveryUnavailableError);
      proxy.heal();
      await eventually(() => d.renew(svc, m.id), 3000);
    } finally {
      await proxy.close();
    }
  });

  it('uses a caller-provided client without closing it', async () => {
    const client = new Redis(server.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const d = new RedisDiscovery({ client });
    const svc = uniqueService();
    const m = memberInfo();
    const events: DiscoveryEvent[] = [];
    const unwatch = d.watch(svc, (e) => events.push(e));
    await sleep(150);
    await d.register(svc, m, 5000);
    await eventually(async () => expect(events.length).toBeGreaterThan(0), 2000);
    unwatch();
    await d.close();
    await expect(d.snapshot(svc)).rejects.toBeInstanceOf(DiscoveryUnavailableError);
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    client.disconnect();
  });

  it('never calls a listener after close, and rejects pending connects on close', async () => {
    const d = connect();
    const svc = uniqueService();
    let calls = 0;
    d.watch(svc, () => {
      calls += 1;
    });
    await sleep(100);
    await d.close();
    const other = connect();
    await other.register(svc, memberInfo(), 5000);
    await sleep(200);
    expect(calls).toBe(0);

    const port = await freePort();
    const never = connect({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 5000 });
    const pending = never.snapshot(svc).catch((e: unknown) => e);
    await never.close();
    expect(await pending).toBeInstanceOf(DiscoveryUnavailableError);
  });
});
