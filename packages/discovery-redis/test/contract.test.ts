import type { DiscoveryChange, DiscoveryEvent } from '@shardwork/core';
import { LeaseExpiredError } from '@shardwork/core';
import { claimOne, memberInfo, releaseOne, uniqueService } from '@shardwork/core/testing';
import { eventually, type RedisTestServer, sleep, startRedisServer } from '@shardwork/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisDiscovery, type RedisDiscoveryOptions } from '../src/index.js';
import { CATCH_UP_MS } from '../src/watch.js';

/** The changes of events in a compact, comparable form. */
function describeChange(change: DiscoveryChange): string {
  switch (change.type) {
    case 'member:put':
      return `member:put ${change.member.id}${change.member.draining === true ? ' draining' : ''}`;
    case 'member:removed':
      return `member:removed ${change.id}`;
    case 'claim:put':
      return `claim:put ${change.claim.shard} ${change.claim.owner} ${change.claim.token}`;
    case 'claim:removed':
      return `claim:removed ${change.shard} ${'token' in change ? change.token : `<${change.tokenBelow}`}`;
  }
}

let server: RedisTestServer;
let admin: Redis;
const open: RedisDiscovery[] = [];
const connect = (options: RedisDiscoveryOptions = {}): RedisDiscovery => {
  const d = new RedisDiscovery({ url: server.url, ...options });
  open.push(d);
  return d;
};

/** Calls of EVAL/EVALSHA the server has run so far (all clients). */
async function scriptCalls(): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  // Failed calls are the EVALSHA of a script the server does not know yet (then sent with EVAL).
  for (const match of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+),.*failed_calls=(\d+)/gm)) {
    calls += Number(match[1]) - Number(match[2]);
  }
  return calls;
}

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  await admin.connect();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describe('ensureGroup', () => {
  it('stores both settings once, and gives an old group its missing leaseTtlMs', async () => {
    const d = connect();
    const svc = uniqueService();
    const keys = d.keys(svc);
    await admin.hset(keys.meta, 'shardCount', '6'); // as written by 0.1
    expect(await d.ensureGroup(svc, { shardCount: 8, leaseTtlMs: 3000 })).toEqual({
      shardCount: 6,
      leaseTtlMs: 3000,
      invalid: [],
      repaired: [],
    });
    expect(await admin.hgetall(keys.meta)).toEqual({ shardCount: '6', leaseTtlMs: '3000' });
  });

  it('reports garbage fields, and replaces them only when asked', async () => {
    const d = connect();
    const svc = uniqueService();
    const keys = d.keys(svc);
    await d.ensureGroup(svc, { shardCount: 8, leaseTtlMs: 3000 });
    await admin.hset(keys.meta, 'shardCount', 'eight', 'leaseTtlMs', '-5');
    const seen = await d.ensureGroup(svc, { shardCount: 8, leaseTtlMs: 3000 });
    expect(seen).toEqual({
      shardCount: undefined,
      leaseTtlMs: undefined,
      invalid: [
        { key: `${keys.meta}[shardCount]`, reason: 'shardCount "eight" is not a positive integer' },
        { key: `${keys.meta}[leaseTtlMs]`, reason: 'leaseTtlMs "-5" is not a positive integer' },
      ],
      repaired: [],
    });
    expect(await admin.hget(keys.meta, 'shardCount')).toBe('eight');
    const fixed = await d.ensureGroup(svc, { shardCount: 8, leaseTtlMs: 3000 }, { replaceInvalid: true });
    expect(fixed).toEqual({
      shardCount: 8,
      leaseTtlMs: 3000,
      invalid: [],
      repaired: [
        { key: `${keys.meta}[shardCount]`, reason: 'shardCount "eight" was not a positive integer; replaced with 8' },
        { key: `${keys.meta}[leaseTtlMs]`, reason: 'leaseTtlMs "-5" was not a positive integer; replaced with 3000' },
      ],
    });
    // Reported once: the next caller finds valid fields, and valid fields are never replaced.
    expect(await d.ensureGroup(svc, { shardCount: 9, leaseTtlMs: 1 }, { replaceInvalid: true })).toEqual({
      shardCount: 8,
      leaseTtlMs: 3000,
      invalid: [],
      repaired: [],
    });
    expect((await d.snapshot(svc)).groupAgeMs).toBeGreaterThanOrEqual(0);
  });
});

describe('batches, drain and version', () => {
  it('claims and releases a batch in one script call, each claim with its own token', async () => {
    const d = connect();
    const svc = uniqueService();
    const m = memberInfo();
    const other = memberInfo();
    await d.register(svc, m, 5000);
    await d.register(svc, other, 5000);
    const held = await claimOne(d, svc, other.id, 2);
    if (!held.ok) throw new Error('claim failed');
    const before = await scriptCalls();
    const batch = await d.claimMany(svc, m.id, [0, 1, 2, 3]);
    expect((await scriptCalls()) - before).toBe(1);
    expect(batch.repaired).toEqual([]);
    expect(batch.results[2]).toEqual({ ok: false, owner: other.id, token: held.token });
    const tokens = [0, 1, 3].map((i) => {
      const r = batch.results[i];
      if (!r?.ok) throw new Error(`shard ${i} not claimed`);
      return r.token;
    });
    expect(tokens[0]).toBeGreaterThan(held.token);
    expect(tokens[1]).toBe((tokens[0] ?? 0) + 1);
    expect(tokens[2]).toBe((tokens[1] ?? 0) + 1);

    const mid = await scriptCalls();
    const released = await d.releaseMany(svc, m.id, [
      { shard: 0, token: tokens[0] ?? 0 },
      { shard: 1, token: 12345 },
      { shard: 2, token: held.token },
      { shard: 3, token: tokens[2] ?? 0 },
    ]);
    expect((await scriptCalls()) - mid).toBe(1);
    expect(released).toEqual([true, false, false, true]);
    expect((await d.snapshot(svc)).claims.map((c) => c.shard).sort()).toEqual([1, 2]);
    expect(await d.claimMany(svc, m.id, [])).toEqual({ results: [], repaired: [] });
    await d.unregister(svc, m.id);
    await expect(d.claimMany(svc, m.id, [5])).rejects.toBeInstanceOf(LeaseExpiredError);
  });

  it('drains a live member once, keeps its lease and claims, and refuses a gone one', async () => {
    const d = connect();
    const svc = uniqueService();
    const m = memberInfo({ shardCount: 4, leaseTtlMs: 5000 });
    await d.register(svc, m, 5000);
    await claimOne(d, svc, m.id, 1);
    await d.drain(svc, m.id);
    const snap = await d.snapshot(svc);
    expect(snap.members).toEqual([
      expect.objectContaining({ id: m.id, draining: true, shardCount: 4, leaseTtlMs: 5000 }),
    ]);
    expect(snap.claims).toHaveLength(1);
    await d.drain(svc, m.id); // changes nothing
    expect(await d.version(svc)).toBe(snap.revision);
    await d.renew(svc, m.id);
    expect((await d.snapshot(svc)).members[0]?.draining).toBe(true);
    // A new registration of the id is a fresh record: not draining.
    await d.register(svc, m, 5000);
    expect((await d.snapshot(svc)).members[0]?.draining).toBeUndefined();
    await d.unregister(svc, m.id);
    await expect(d.drain(svc, m.id)).rejects.toBeInstanceOf(LeaseExpiredError);
  });

  it('lists each member with the time its lease has left, by the server clock', async () => {
    const d = connect();
    const svc = uniqueService();
    const m = memberInfo();
    await d.register(svc, m, 5000);
    await sleep(200);
    const left = (await d.snapshot(svc)).members[0]?.expiresInMs ?? Number.NaN;
    expect(left).toBeGreaterThan(3000);
    expect(left).toBeLessThanOrEqual(4800);
    await d.renew(svc, m.id);
    expect((await d.snapshot(svc)).members[0]?.expiresInMs).toBeGreaterThan(left);
  });

  it('answers version with the revision, unchanged by heartbeats', async () => {
    const d = connect();
    const svc = uniqueService();
    expect(await d.version(svc)).toBe('0');
    const m = memberInfo();
    await d.register(svc, m, 5000);
    const snap = await d.snapshot(svc);
    expect(snap.version).toBeUndefined();
    expect(await d.version(svc)).toBe(snap.revision);
    await d.renew(svc, m.id);
    expect(await d.version(svc)).toBe(snap.revision);
    await claimOne(d, svc, m.id, 0);
    expect(BigInt(await d.version(svc))).toBe(BigInt(snap.revision) + 1n);
  });
});

describe('deltas', () => {
  /** Watch `svc` on `d` after it is established; returns the events and a snapshot revision to start from. */
  async function follow(d: RedisDiscovery, svc: string): Promise<{ events: DiscoveryEvent[]; listed: string }> {
    const events: DiscoveryEvent[] = [];
    d.watch(svc, (e) => events.push(e));
    await sleep(150);
    return { events, listed: (await d.snapshot(svc)).revision };
  }

  it('announces exactly the changes of another connection, in order, with consecutive revisions', async () => {
    const a = connect();
    const b = connect();
    const svc = uniqueService();
    await b.ensureGroup(svc, { shardCount: 8, leaseTtlMs: 5000 });
    const { events, listed } = await follow(a, svc);
    const m1 = memberInfo({ labels: { zone: 'a"b' } });
    const m2 = memberInfo();
    const r1 = await b.register(svc, m1, 5000);
    await b.register(svc, m2, 5000);
    const { results } = await b.claimMany(svc, m1.id, [0, 1, 2]);
    const t = results.map((r) => (r.ok ? r.token : -1));
    await releaseOne(b, svc, m1.id, 1, t[1] ?? -1);
    await b.drain(svc, m1.id);
    await b.unregister(svc, m1.id);
    await eventually(() => expect(events).toHaveLength(6), 2000);

    expect(events.map((e) => (e.changes ?? []).map(describeChange))).toEqual([
      [`member:put ${m1.id}`],
      [`member:put ${m2.id}`],
      [`claim:put 0 ${m1.id} ${t[0]}`, `claim:put 1 ${m1.id} ${t[1]}`, `claim:put 2 ${m1.id} ${t[2]}`],
      [`claim:removed 1 ${t[1]}`],
      [`member:put ${m1.id} draining`],
      [`member:removed ${m1.id}`],
    ]);
    let revision = BigInt(listed);
    for (const event of events) {
      expect(event.type).toBe('change');
      expect(event.previous).toBe(String(revision));
      revision += 1n;
      expect(event.revision).toBe(String(revision));
    }
    expect(revision).toBe(BigInt((await a.snapshot(svc)).revision));
    // Full members, with the backend's join order, and tokens beyond 2^50 exactly.
    const put = events[0]?.changes?.[0];
    expect(put).toEqual({ type: 'member:put', member: { ...m1, joinSeq: r1.joinSeq } });
    expect(t[0]).toBeGreaterThan(2 ** 50);
    expect(Number.isSafeInteger(t[0])).toBe(true);
  });

  it('shows a lost message as a gap in the next event', async () => {
    const a = connect();
    const b = connect();
    const svc = uniqueService();
    const m = memberInfo();
    await b.register(svc, m, 5000);
    const { events, listed } = await follow(a, svc);
    await admin.incr(b.keys(svc).rev); // a change whose message is lost
    await claimOne(b, svc, m.id, 0);
    await eventually(() => expect(events).toHaveLength(1), 2000);
    expect(BigInt(events[0]?.previous ?? '0')).toBe(BigInt(listed) + 1n);
    expect(BigInt(events[0]?.revision ?? '0')).toBe(BigInt(listed) + 2n);
  });

  it('hints a re-list when a heartbeat reply is ahead of the messages and none catches up', async () => {
    const a = connect();
    const svc = uniqueService();
    const m = memberInfo();
    await a.register(svc, m, 5000);
    const { events, listed } = await follow(a, svc);
    await admin.incr(a.keys(svc).rev);
    await a.renew(svc, m.id);
    await sleep(CATCH_UP_MS / 2);
    expect(events).toEqual([]); // a message may still be on its way
    await eventually(() => expect(events).toEqual([{ type: 'change', revision: String(BigInt(listed) + 1n) }]), 2000);
    // A late message for what the hint covered is not delivered: events never go back.
    await admin.publish(a.keys(svc).events, JSON.stringify({ revision: listed, previous: '1', changes: [] }));
    await claimOne(a, svc, m.id, 0);
    await eventually(() => expect(events).toHaveLength(2), 2000);
    expect(events[1]?.previous).toBe(String(BigInt(listed) + 1n));
  });

  it('turns an unparsable message or record into an event without changes', async () => {
    const a = connect();
    const svc = uniqueService();
    const { events } = await follow(a, svc);
    const channel = a.keys(svc).events;
    await admin.publish(channel, 'not json');
    const bad = JSON.stringify({
      revision: '100',
      previous: '99',
      changes: [{ type: 'member:put', id: 'x', record: '{"id":"x"}' }],
    });
    await admin.publish(channel, bad);
    await eventually(() => expect(events).toHaveLength(2), 2000);
    expect(events).toEqual([{ type: 'change' }, { type: 'change', revision: '100', previous: '99' }]);
  });

  it('announces a crashed member as member:removed, with its claims, just after its lease runs out', async () => {
    const a = connect({ pollIntervalMs: 60_000 });
    const b = connect();
    const svc = uniqueService();
    const watcher = memberInfo();
    const crashed = memberInfo();
    await a.register(svc, watcher, 3000);
    const heartbeat = setInterval(() => void a.renew(svc, watcher.id).catch(() => undefined), 1000);
    try {
      const { events } = await follow(a, svc);
      await b.register(svc, crashed, 400);
      const registeredAt = performance.now();
      await b.claimMany(svc, crashed.id, [0, 1]);
      await b.close(); // no unregister: a crash
      await a.renew(svc, watcher.id); // arms the timer from the heartbeat reply
      const removed = await eventually(
        () => {
          const event = events.find((e) => e.changes?.some((c) => c.type === 'member:removed'));
          if (event === undefined) throw new Error('not yet');
          return { event, at: performance.now() };
        },
        3000,
        5,
      );
      expect(removed.event.changes).toEqual([{ type: 'member:removed', id: crashed.id }]);
      expect(removed.at - registeredAt).toBeGreaterThanOrEqual(390);
      expect(removed.at - registeredAt).toBeLessThan(400 + 150);
      expect((await a.snapshot(svc)).claims).toEqual([]);
    } finally {
      clearInterval(heartbeat);
    }
  });
});

describe('steady state', () => {
  it('sends nothing but heartbeats while a watched service is idle', async () => {
    const ttl = 600;
    const svc = uniqueService();
    const replicas = [
      connect({ pollIntervalMs: 100 }),
      connect({ pollIntervalMs: 100 }),
      connect({ pollIntervalMs: 100 }),
    ];
    const members = replicas.map(() => memberInfo());
    for (const [i, d] of replicas.entries()) {
      await d.register(svc, members[i] ?? memberInfo(), ttl);
      d.watch(svc, () => undefined);
    }
    let heartbeats = 0;
    const beat = async (): Promise<void> => {
      await Promise.all(replicas.map((d, i) => d.renew(svc, members[i]?.id ?? '')));
      heartbeats += replicas.length;
    };
    await sleep(150); // subscriptions established, baseline checks done
    await beat();
    const before = await scriptCalls();
    heartbeats = 0;
    for (let i = 0; i < 12; i += 1) {
      await sleep(ttl / 3);
      await beat();
    }
    // 4 TTLs, 12 heartbeat rounds, a 100 ms poll interval: still only the heartbeats. (Every
    // other lease keeps at least 2/3 TTL while each heartbeat re-arms the expiry timer.)
    expect((await scriptCalls()) - before).toBe(heartbeats);
    expect((await replicas[0]?.snapshot(svc))?.members).toHaveLength(3);
  });

  it('keeps polling a service watched without heartbeats', async () => {
    const d = connect({ pollIntervalMs: 100 });
    const svc = uniqueService();
    d.watch(svc, () => undefined);
    await sleep(150);
    const before = await scriptCalls();
    await sleep(550);
    expect((await scriptCalls()) - before).toBeGreaterThanOrEqual(3);
  });
});

describe('garbage in Redis', () => {
  it('re-seeds a token counter that is not a number, and reports it once', async () => {
    const d = connect();
    const svc = uniqueService();
    const keys = d.keys(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    const first = await claimOne(d, svc, m.id, 0);
    if (!first.ok) throw new Error('claim failed');
    await admin.set(keys.token, 'garbage');
    const batch = await d.claimMany(svc, m.id, [1, 2]);
    expect(batch.results.every((r) => r.ok)).toBe(true);
    expect(batch.repaired).toEqual([
      { key: keys.token, reason: 'counter "garbage" is not a safe integer; re-seeded from server time' },
    ]);
    const token = batch.results[0]?.ok ? batch.results[0].token : 0;
    expect(token).toBeGreaterThan(first.token);
    expect((await d.claimMany(svc, m.id, [3])).repaired).toEqual([]);

    await admin.del(keys.token);
    await admin.hset(keys.token, 'x', '1'); // another type altogether
    const typed = await d.claimMany(svc, m.id, [4]);
    expect(typed.results[0]?.ok).toBe(true);
    expect(typed.repaired).toEqual([{ key: keys.token, reason: expect.stringContaining('WRONGTYPE') }]);
  });

  it('overwrites an unparsable claim or a claim of a non-member, and reports it', async () => {
    const d = connect();
    const svc = uniqueService();
    const keys = d.keys(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    await admin.hset(keys.claims, '3', 'junk', '4', 'ghost|17');
    const batch = await d.claimMany(svc, m.id, [3, 4]);
    expect(batch.results.map((r) => r.ok)).toEqual([true, true]);
    expect(batch.repaired).toEqual([
      { key: `${keys.claims}[3]`, reason: 'claim "junk" is not "<owner>|<token>"; overwritten' },
      { key: `${keys.claims}[4]`, reason: 'claim of "ghost", which is not a member; overwritten' },
    ]);
    expect((await d.snapshot(svc)).invalid).toEqual([]);
  });

  it('re-seeds garbage revision and join order counters instead of failing', async () => {
    const d = connect();
    const svc = uniqueService();
    const keys = d.keys(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    await admin.set(keys.rev, 'NaN');
    await admin.set(keys.seq, '1e99');
    const snap = await d.snapshot(svc);
    expect(snap.revision).toMatch(/^\d+$/);
    expect(snap.invalid).toEqual([
      { key: keys.rev, reason: 'counter "NaN" is not a safe integer; re-seeded from server time' },
    ]);
    expect((await d.snapshot(svc)).invalid).toEqual([]);
    const other = memberInfo();
    const { joinSeq } = await d.register(svc, other, 5000);
    expect(Number.isSafeInteger(joinSeq)).toBe(true);
    expect((await d.snapshot(svc)).members.map((x) => x.id).sort()).toEqual([m.id, other.id].sort());
  });
});

describe('ACL', () => {
  it('needs only the commands the README lists', async () => {
    const commands = [
      ...['evalsha', 'eval', 'subscribe', 'unsubscribe', 'ping', 'info'],
      ...['time', 'get', 'set', 'incr', 'del', 'hget', 'hmget', 'hset', 'hdel', 'hgetall'],
      ...['zadd', 'zrem', 'zscore', 'zrange', 'zrangebyscore', 'publish'],
    ];
    await admin.call(
      'ACL',
      'SETUSER',
      'narrow',
      'reset',
      'on',
      '>pw',
      '~nacl:*',
      '&nacl:*',
      ...commands.map((c) => `+${c}`),
    );
    const d = connect({ url: `redis://narrow:pw@127.0.0.1:${server.port}?prefix=nacl:` });
    const svc = uniqueService();
    const keys = d.keys(svc);
    const events: DiscoveryEvent[] = [];
    d.watch(svc, (e) => events.push(e));
    await sleep(150);
    await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 5000 });
    const m = memberInfo();
    await d.register(svc, m, 5000);
    await d.renew(svc, m.id);
    await admin.set(keys.token, 'x');
    const batch = await d.claimMany(svc, m.id, [0, 1]);
    expect(batch.repaired).toHaveLength(1);
    const token = batch.results[0]?.ok ? batch.results[0].token : 0;
    expect(await d.releaseMany(svc, m.id, [{ shard: 0, token }])).toEqual([true]);
    await d.drain(svc, m.id);
    expect((await d.snapshot(svc)).members).toHaveLength(1);
    await d.version(svc);
    await d.unregister(svc, m.id);
    await eventually(() => expect(events.filter((e) => e.changes !== undefined)).toHaveLength(6), 2000);
    // Renewals that check held claims and forgetting a stopped service need nothing more.
    expect(await d.forgetService(svc)).toBe(true);
  });
});

describe('renew with held claims', () => {
  it('finds a claim written over by hand (no revision moved) and makes every watcher re-list', async () => {
    const [d, watcher] = [connect(), connect()];
    const svc = uniqueService();
    const keys = d.keys(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    const { results } = await d.claimMany(svc, m.id, [0, 1]);
    const [t0, t1] = results.map((r) => r.token) as [number, number];
    const events: DiscoveryEvent[] = [];
    watcher.watch(svc, (e) => events.push(e));
    await sleep(150);
    const before = await d.version(svc);
    await admin.hset(keys.claims, '1', 'garbage');
    // The hand edit alone tells nobody.
    expect(await d.version(svc)).toBe(before);
    const held = [
      { shard: 0, token: t0 },
      { shard: 1, token: t1 },
    ];
    expect(await d.renew(svc, m.id, held)).toEqual({ lost: [{ shard: 1, token: t1 }] });
    expect(await d.version(svc)).not.toBe(before);
    await eventually(() => expect(events.some((e) => e.type === 'change' && e.changes === undefined)).toBe(true), 2000);
    // Nothing wrong, nothing announced.
    const quiet = await d.version(svc);
    expect(await d.renew(svc, m.id, held.slice(0, 1))).toEqual({ lost: [] });
    expect(await d.version(svc)).toBe(quiet);
  });
});
