import { createServer, type Server, type Socket } from 'node:net';
import {
  BackendRefusedError,
  createDiscovery,
  type DiscoveryEvent,
  DiscoveryUnavailableError,
  LeaseExpiredError,
} from '@shardwork/core';
import { claimOne, memberInfo, releaseOne, uniqueService } from '@shardwork/core/testing';
import {
  discoveryFromUrl,
  EtcdAuthError,
  EtcdDiscovery,
  EtcdPermissionError,
  serviceKeys,
} from '@shardwork/discovery-etcd';
import { type EtcdCluster, eventually, freePort, sleep, startEtcd } from '@shardwork/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const open: EtcdDiscovery[] = [];
function track<T extends EtcdDiscovery>(discovery: T): T {
  open.push(discovery);
  return discovery;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

describe('etcd backend against one server', () => {
  let etcd: EtcdCluster;
  let raw: Etcd3;
  beforeAll(async () => {
    etcd = await startEtcd();
    raw = new Etcd3({ hosts: etcd.endpoints });
  });
  afterAll(async () => {
    raw?.close();
    await etcd?.stop();
  });

  it('binds members to leases of ceil(ttlMs / 1000) seconds', async () => {
    const d = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const svc = uniqueService('ttl');
    const cases: [number, number][] = [
      [1, 1],
      [1000, 1],
      [1001, 2],
      [2500, 3],
    ];
    for (const [ttlMs, seconds] of cases) {
      const m = memberInfo();
      await d.register(svc, m, ttlMs);
      const kv = (await raw.get(serviceKeys('sw', svc).member(m.id)).exec()).kvs[0];
      expect(kv?.lease).toBeDefined();
      const ttl = await raw.leaseClient.leaseTimeToLive({ ID: kv?.lease ?? '0' });
      expect(Number(ttl.grantedTTL), `ttlMs ${ttlMs}`).toBe(seconds);
    }
  });

  it('refuses a user and password when etcd has authentication off, saying so', async () => {
    const d = track(new EtcdDiscovery({ endpoints: etcd.endpoints, auth: { username: 'app', password: 'pw' } }));
    const error = await d.snapshot(uniqueService()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdAuthError);
    expect((error as Error).message).toContain('etcd has authentication off');
  });

  it('writes the documented key layout, and keeps prefixes apart', async () => {
    const a = track(discoveryFromUrl(`${etcd.url}?prefix=tenant-a/sw`));
    const b = track(discoveryFromUrl(`${etcd.url}?prefix=tenant-b/sw`));
    const svc = uniqueService('layout');
    const m = memberInfo({ labels: { zone: 'z1' } });
    expect(await a.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 5000 })).toEqual({
      shardCount: 4,
      leaseTtlMs: 5000,
      invalid: [],
      repaired: [],
    });
    const { joinSeq } = await a.register(svc, m, 5000);
    const claim = await claimOne(a, svc, m.id, 3);
    expect(claim.ok).toBe(true);
    const keys = serviceKeys('tenant-a/sw', svc);
    const stored = await raw.getAll().prefix(keys.root).exec();
    const byKey = new Map(stored.kvs.map((kv) => [kv.key.toString(), kv]));
    expect([...byKey.keys()].sort()).toEqual([keys.claim(3), keys.member(m.id), keys.meta].sort());
    expect(JSON.parse(byKey.get(keys.meta)?.value.toString() ?? '')).toEqual({ shardCount: 4, leaseTtlMs: 5000 });
    expect(JSON.parse(byKey.get(keys.member(m.id))?.value.toString() ?? '')).toEqual(m);
    expect(Number(byKey.get(keys.member(m.id))?.create_revision)).toBe(joinSeq);
    expect(byKey.get(keys.claim(3))?.value.toString()).toBe(m.id);
    // The token is the create revision × 1000 plus the shard's slot (see tokens.ts).
    expect(Number(byKey.get(keys.claim(3))?.create_revision) * 1000 + 3).toBe(claim.token);
    expect(byKey.get(keys.claim(3))?.lease).toBe(byKey.get(keys.member(m.id))?.lease);
    const other = await b.snapshot(svc);
    expect(other).toMatchObject({ shardCount: undefined, members: [], claims: [], invalid: [] });
  });

  it('is what createDiscovery() loads for etcd:// URLs', async () => {
    const d = await createDiscovery(etcd.url);
    try {
      expect(d).toBeInstanceOf(EtcdDiscovery);
      expect((await d.snapshot(uniqueService())).members).toEqual([]);
    } finally {
      await d.close();
    }
  });

  it('reports foreign and broken records instead of failing', async () => {
    const d = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const svc = uniqueService('garbage');
    const keys = serviceKeys('sw', svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    await raw.put(keys.meta).value('eight');
    await raw.put(keys.member('m-foreign')).value(JSON.stringify({ ...memberInfo({ id: 'm-foreign' }) })); // no lease
    await raw.put(keys.member('m-wrong')).value(JSON.stringify(memberInfo({ id: 'm-other' })));
    await raw.put(keys.claim(1)).value('m-nobody');
    await raw.put(`${keys.root}claims/01`).value(m.id);
    await raw.put(`${keys.root}stray`).value('x');
    const snap = await d.snapshot(svc);
    expect(snap.shardCount).toBeUndefined();
    expect(snap.members.map((x) => x.id)).toEqual([m.id]);
    expect(snap.claims).toEqual([]);
    expect(snap.invalid.map((x) => x.key).sort()).toEqual(
      [
        keys.meta,
        keys.member('m-foreign'),
        keys.member('m-wrong'),
        keys.claim(1),
        `${keys.root}claims/01`,
        `${keys.root}stray`,
      ].sort(),
    );
    expect(await d.ensureGroup(svc, { shardCount: 8, leaseTtlMs: 5000 })).toEqual({
      shardCount: undefined,
      leaseTtlMs: undefined,
      invalid: [
        { key: keys.meta, reason: 'meta record is not a JSON object, so field shardCount cannot be read' },
        { key: keys.meta, reason: 'meta record is not a JSON object, so field leaseTtlMs cannot be read' },
      ],
      repaired: [],
    });
  });

  it('renews only through the instance that registered, and never recreates a revoked lease', async () => {
    const a = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const b = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const svc = uniqueService('renew');
    const m = memberInfo();
    await a.register(svc, m, 2000);
    await expect(b.renew(svc, m.id)).rejects.toBeInstanceOf(LeaseExpiredError);
    await a.renew(svc, m.id);
    const lease = (await raw.get(serviceKeys('sw', svc).member(m.id)).exec()).kvs[0]?.lease ?? '0';
    await raw.leaseClient.leaseRevoke({ ID: lease });
    await expect(a.renew(svc, m.id)).rejects.toBeInstanceOf(LeaseExpiredError);
    const ttl = await raw.leaseClient.leaseTimeToLive({ ID: lease });
    expect(Number(ttl.TTL)).toBe(-1); // still unknown to etcd
    expect((await a.snapshot(svc)).members).toEqual([]);
  });

  it('starts a watch after the last snapshot, so nothing between list and watch is lost', async () => {
    const a = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const b = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const svc = uniqueService('gap');
    const listed = await a.snapshot(svc);
    await b.register(svc, memberInfo(), 5000); // after the list, before the watch
    const events: DiscoveryEvent[] = [];
    const unwatch = a.watch(svc, (e) => events.push(e));
    try {
      await eventually(() => expect(events).toContainEqual(expect.objectContaining({ type: 'change' })), 2000);
      expect(events).not.toContainEqual({ type: 'reset' });
      expect(events[0]?.previous).toBe(listed.revision);
    } finally {
      unwatch();
    }
  });

  it('without a snapshot, starts now without a reset, and delivers the next change', async () => {
    const a = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const b = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const svc = uniqueService('fresh');
    const events: DiscoveryEvent[] = [];
    const unwatch = a.watch(svc, (e) => events.push(e));
    try {
      await sleep(300);
      expect(events).toEqual([]);
      const m = memberInfo();
      const { joinSeq } = await b.register(svc, m, 5000);
      await eventually(
        () =>
          expect(events).toEqual([
            expect.objectContaining({ changes: [{ type: 'member:put', member: { ...m, joinSeq } }] }),
          ]),
        2000,
      );
    } finally {
      unwatch();
    }
  });

  it('rejects every call after close, and leaves a given client open', async () => {
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      const d = new EtcdDiscovery({ client });
      const svc = uniqueService('given');
      const m = memberInfo();
      await d.register(svc, m, 5000);
      await d.close();
      for (const call of [
        () => d.renew(svc, m.id),
        () => d.unregister(svc, m.id),
        () => d.ensureGroup(svc, { shardCount: 1, leaseTtlMs: 1000 }),
        () => d.register(svc, memberInfo(), 1000),
        () => d.drain(svc, m.id),
        () => d.claimMany(svc, m.id, [0, 1]),
        () => d.releaseMany(svc, m.id, [{ shard: 0, token: 1 }]),
        () => d.version(svc),
        () => d.snapshot(svc),
      ]) {
        await expect(call()).rejects.toBeInstanceOf(DiscoveryUnavailableError);
      }
      expect(d.watch(svc, () => undefined)).toBeTypeOf('function');
      // The member was not unregistered by close(), and the client still works.
      expect(await client.get(serviceKeys('sw', svc).member(m.id)).string()).not.toBeNull();
    } finally {
      client.close();
    }
  });
});

describe('etcd backend when etcd is unreachable', () => {
  let silent: Server | undefined;
  const sockets = new Set<Socket>();
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
  });

  it('fails fast with DiscoveryUnavailableError when nothing listens', async () => {
    const port = await freePort();
    const d = track(new EtcdDiscovery({ endpoints: [`127.0.0.1:${port}`], dialTimeoutMs: 3000 }));
    const started = Date.now();
    const error = await d.register(uniqueService(), memberInfo(), 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryUnavailableError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('gives up after dialTimeoutMs when the server accepts but never answers', async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent?.listen(0, '127.0.0.1', () => resolve()));
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const d = track(new EtcdDiscovery({ endpoints: [`127.0.0.1:${port}`], dialTimeoutMs: 500 }));
    for (const call of [
      () => d.snapshot(uniqueService()),
      () => d.ensureGroup(uniqueService(), { shardCount: 2, leaseTtlMs: 1000 }),
    ]) {
      const started = Date.now();
      const error = await call().catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(DiscoveryUnavailableError);
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(1500);
    }
  });

  it('moves on to a live endpoint when the first ones are down', async () => {
    const etcd = await startEtcd();
    try {
      const dead = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
      const d = track(new EtcdDiscovery({ endpoints: [...dead, ...etcd.endpoints] }));
      const svc = uniqueService('multi');
      for (let i = 0; i < 10; i++) {
        const m = memberInfo();
        await d.register(svc, m, 2000);
        await d.renew(svc, m.id);
      }
      expect((await d.snapshot(svc)).members).toHaveLength(10);
    } finally {
      await etcd.stop();
    }
  });
});

describe('etcd backend across a server restart', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('keeps watching: a change after the restart is still notified', async () => {
    const watcher = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const writer = track(new EtcdDiscovery({ endpoints: etcd.endpoints }));
    const svc = uniqueService('restart');
    await watcher.snapshot(svc);
    const events: DiscoveryEvent[] = [];
    const unwatch = watcher.watch(svc, (e) => events.push(e));
    try {
      const before = memberInfo();
      await writer.register(svc, before, 30_000);
      await eventually(() => expect(events).toContainEqual(expect.objectContaining({ type: 'change' })), 2000);

      await etcd.restart();
      // The broken watch is re-established and announced as a reset.
      await eventually(() => expect(events).toContainEqual({ type: 'reset' }), 5000);
      events.length = 0;
      const after = memberInfo();
      await eventually(async () => {
        await writer.register(svc, after, 30_000);
      }, 5000);
      await eventually(() => expect(events).toContainEqual(expect.objectContaining({ type: 'change' })), 3000);
      const snap = await watcher.snapshot(svc);
      // Leases survive a restart on the same data dir (etcd extends them on recovery).
      expect(snap.members.map((m) => m.id).sort()).toEqual([before.id, after.id].sort());
      await writer.renew(svc, before.id);
    } finally {
      unwatch();
    }
  });

  it('fails calls within callTimeoutMs while etcd is frozen, and watches again after it thaws', async () => {
    const watcher = track(new EtcdDiscovery({ endpoints: etcd.endpoints, callTimeoutMs: 500 }));
    const writer = track(new EtcdDiscovery({ endpoints: etcd.endpoints, callTimeoutMs: 500 }));
    const svc = uniqueService('frozen');
    const m = memberInfo();
    await writer.register(svc, m, 30_000);
    await watcher.snapshot(svc);
    const events: DiscoveryEvent[] = [];
    const unwatch = watcher.watch(svc, (e) => events.push(e));
    try {
      await sleep(200);
      etcd.signal(0, 'SIGSTOP');
      try {
        for (const call of [
          () => writer.renew(svc, m.id),
          () => watcher.snapshot(svc),
          () => claimOne(writer, svc, m.id, 0),
        ]) {
          const started = Date.now();
          await expect(call()).rejects.toBeInstanceOf(DiscoveryUnavailableError);
          expect(Date.now() - started).toBeLessThan(1000);
        }
      } finally {
        etcd.signal(0, 'SIGCONT');
      }
      await eventually(() => writer.renew(svc, m.id), 3000);
      await eventually(async () => {
        await watcher.snapshot(svc);
      }, 3000);
      events.length = 0;
      await claimOne(writer, svc, m.id, 1);
      await eventually(() => expect(events).toContainEqual(expect.objectContaining({ type: 'change' })), 3000);
    } finally {
      unwatch();
    }
  });
});

describe('etcd backend with authentication', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await admin.role('root').create();
      await admin.user('root').create('root-pw');
      await admin.user('root').addRole('root');
      const app = await admin.role('shardwork-app').create();
      await app.grant({ permission: 'Readwrite', range: admin.range({ prefix: 'apps/sw/' }) });
      await admin.user('app').create('app-pw');
      await admin.user('app').addRole('shardwork-app');
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('works for a user limited to its prefix', async () => {
    const a = track(discoveryFromUrl(`etcd://app:app-pw@${etcd.endpoints.join(',')}?prefix=apps/sw`));
    const b = track(discoveryFromUrl(`etcd://app:app-pw@${etcd.endpoints.join(',')}?prefix=apps/sw`));
    const svc = uniqueService('auth');
    const events: DiscoveryEvent[] = [];
    await a.snapshot(svc);
    const unwatch = a.watch(svc, (e) => events.push(e));
    try {
      expect((await a.ensureGroup(svc, { shardCount: 2, leaseTtlMs: 2000 })).shardCount).toBe(2);
      const m = memberInfo();
      await b.register(svc, m, 2000);
      const claim = await claimOne(b, svc, m.id, 1);
      expect(claim.ok).toBe(true);
      await b.renew(svc, m.id);
      await eventually(() => expect(events).toContainEqual(expect.objectContaining({ type: 'change' })), 2000);
      expect((await a.snapshot(svc)).claims).toEqual([{ shard: 1, owner: m.id, token: claim.token }]);
      expect(await releaseOne(b, svc, m.id, 1, claim.token)).toBe(true);
      await b.unregister(svc, m.id);
      expect((await a.snapshot(svc)).members).toEqual([]);
    } finally {
      unwatch();
    }
  });

  it('refuses a wrong password, keys outside the granted prefix and a missing user, not retryable', async () => {
    const wrong = track(discoveryFromUrl(`etcd://app:nope@${etcd.endpoints[0]}?prefix=apps/sw`));
    const denied = await wrong.snapshot(uniqueService()).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(EtcdAuthError);
    expect((denied as EtcdAuthError).retryable).toBe(false);
    expect((denied as Error).message).toMatch(/user "app": wrong user name or password/);
    const outside = track(discoveryFromUrl(`etcd://app:app-pw@${etcd.endpoints[0]}?prefix=other/sw`));
    const svc = uniqueService();
    const error = await outside.snapshot(svc).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdPermissionError);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as Error).message).toMatch(/permission denied/);
    expect((error as EtcdPermissionError).scope.key).toBe(`other/sw/${svc}/`);
    const anonymous = track(discoveryFromUrl(`etcd://${etcd.endpoints[0]}?prefix=apps/sw`));
    const nobody = await anonymous.snapshot(uniqueService()).catch((e: unknown) => e);
    expect(nobody).toBeInstanceOf(EtcdAuthError);
    expect((nobody as Error).message).toMatch(/names no user/);
  });
});
