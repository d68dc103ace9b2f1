/**
 * Garbage written into a running service's backend records, the way a buggy
 * script or a hand edit might: every such record is reported (once) and
 * repaired where that is safe, and no shard is left unowned in silence.
 * Real servers, real Workers.
 */

import { type Discovery, type InvalidRecordError, Worker } from '@shardwork/core';
import { uniqueService } from '@shardwork/core/testing';
import { RedisDiscovery } from '@shardwork/discovery-redis';
import { eventually, type RedisTestServer, redisCommand, startRedisServer } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const TTL = 1000;
const SHARDS = 4;

interface Replica {
  readonly worker: Worker;
  readonly reports: { key: string; repaired: boolean; message: string }[];
}

/** Start workers on one backend and say what each reports. */
class Replicas {
  readonly all: Replica[] = [];
  constructor(
    readonly service: string,
    readonly connect: () => Discovery,
  ) {}

  async add(): Promise<Replica> {
    const worker = new Worker({
      service: this.service,
      shards: SHARDS,
      leaseTtlMs: TTL,
      discovery: this.connect(),
      handler: (ctx) => new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve())),
    });
    const replica: Replica = { worker, reports: [] };
    worker.on('record:invalid', ({ error, repaired }: { error: InvalidRecordError; repaired: boolean }) =>
      replica.reports.push({ key: error.key, repaired, message: error.message }),
    );
    worker.on('error', () => undefined);
    this.all.push(replica);
    await worker.start();
    return replica;
  }

  owned(): number {
    return this.all.reduce((n, r) => n + r.worker.status().shards.length, 0);
  }

  repairedKeys(): string[] {
    return this.all.flatMap((r) => r.reports.filter((x) => x.repaired).map((x) => x.key));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((r) => r.worker.stop()));
  }
}

describe('garbage in Redis', () => {
  let server: RedisTestServer;
  const redis = (...args: string[]): Promise<string> => redisCommand(server.port, args);
  let replicas: Replicas | undefined;
  const connections: RedisDiscovery[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    await replicas?.stop();
    await Promise.all(connections.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await server.stop();
  });

  const start = async (count: number): Promise<{ replicas: Replicas; observer: RedisDiscovery }> => {
    const connect = (): RedisDiscovery => {
      const d = new RedisDiscovery({ url: server.url });
      connections.push(d);
      return d;
    };
    replicas = new Replicas(uniqueService('garbage'), connect);
    for (let i = 0; i < count; i++) await replicas.add();
    await eventually(() => expect(replicas?.owned()).toBe(SHARDS), 5000);
    return { replicas, observer: connect() };
  };

  it('re-seeds a token counter that is not a number, so the next crash still moves the shards', async () => {
    const { replicas, observer } = await start(2);
    const keys = observer.keys(replicas.service);
    const before = Math.max(...(await observer.snapshot(replicas.service)).claims.map((c) => c.token));
    await redis('SET', keys.token, 'not-a-number');
    // "Crash" one replica: its lease vanishes at once, as at expiry.
    const [a, b] = replicas.all as [Replica, Replica];
    await observer.unregister(replicas.service, a.worker.status().instance as string);
    await eventually(async () => {
      const snap = await observer.snapshot(replicas.service);
      expect(snap.claims).toHaveLength(SHARDS);
    }, 5000);
    const after = await observer.snapshot(replicas.service);
    for (const c of after.claims) if (c.owner === b.worker.status().instance) expect(c.token).toBeGreaterThan(0);
    expect(Math.max(...after.claims.map((c) => c.token))).toBeGreaterThan(before);
    expect(replicas.repairedKeys()).toEqual([keys.token]);
  });

  it('rewrites an unparsable shard count from the value the live replicas agree on, once', async () => {
    const { replicas, observer } = await start(2);
    const keys = observer.keys(replicas.service);
    await redis('HSET', keys.meta, 'shardCount', 'four');
    const c = await replicas.add();
    await eventually(() => expect(replicas.owned()).toBe(SHARDS), 5000);
    expect(c.reports.filter((r) => r.repaired).map((r) => r.key)).toEqual([`${keys.meta}[shardCount]`]);
    expect(await redis('HGET', keys.meta, 'shardCount')).toContain(String(SHARDS));
    expect(replicas.repairedKeys()).toHaveLength(1);
  });

  /**
   * A claim of a running owner written over by hand: the owner stops acting
   * on it within about one heartbeat (TTL / 3), not at the next version
   * check (30 s: HSET moves no revision), and every replica re-lists.
   */
  const overwriteClaim = async (value: (owner: Replica, other: Replica, token: number) => string) => {
    const { replicas, observer } = await start(2);
    const keys = observer.keys(replicas.service);
    const [a, b] = replicas.all as [Replica, Replica];
    await eventually(() => expect(a.worker.status().shards).toHaveLength(SHARDS / 2), 5000);
    const victim = a.worker.status().shards[0] as { shard: number; token: number };
    const revoked: string[] = [];
    a.worker.on('shard:revoked', ({ shard, token, reason }) => revoked.push(`${shard}:${token}:${reason}`));
    const began = performance.now();
    await redis('HSET', keys.claims, String(victim.shard), value(a, b, victim.token));
    await eventually(() => expect(revoked).toEqual([`${victim.shard}:${victim.token}:claim-lost`]), 5000, 5);
    const tookMs = performance.now() - began;
    // Every shard owned once again, and what the replicas believe is what Redis holds.
    await eventually(async () => {
      const snap = await observer.snapshot(replicas.service);
      const held = snap.claims.map((c) => `${c.shard}:${c.owner}:${c.token}`).sort();
      const believed = replicas.all
        .flatMap((r) => r.worker.status().shards.map((s) => `${s.shard}:${r.worker.status().instance}:${s.token}`))
        .sort();
      expect(believed).toEqual(held);
      expect(held).toHaveLength(SHARDS);
    }, 5000);
    return { tookMs, replicas, keys, victim };
  };

  it('notices a running owner’s claim overwritten with garbage at its next heartbeat, and owns it again', async () => {
    const { tookMs, replicas, keys, victim } = await overwriteClaim(() => 'garbage');
    expect(tookMs).toBeLessThan(TTL);
    expect(replicas.repairedKeys()).toContain(`${keys.claims}[${victim.shard}]`);
  });

  it('notices a running owner’s claim overwritten with another member’s id at its next heartbeat', async () => {
    const { tookMs } = await overwriteClaim(
      (_a, b, token) => `${b.worker.status().instance as string}|${String(token + 1000)}`,
    );
    expect(tookMs).toBeLessThan(TTL);
  });

  it('refuses to rewrite it for a replica that disagrees, naming the key', async () => {
    const { replicas, observer } = await start(1);
    const keys = observer.keys(replicas.service);
    await redis('HSET', keys.meta, 'shardCount', 'four');
    const wrong = new Worker({
      service: replicas.service,
      shards: SHARDS * 2,
      leaseTtlMs: TTL,
      discovery: observer,
      handler: () => undefined,
    });
    await expect(wrong.start()).rejects.toThrow(/shardCount.*not rewritten/s);
    expect(await redis('HGET', keys.meta, 'shardCount')).toContain('four');
    expect(replicas.owned()).toBe(SHARDS);
  });
});
