/**
 * The Redis Cluster and Sentinel test harnesses (@shardwork/testkit: redis-cluster.ts,
 * redis-sentinel.ts) checked with plain ioredis clients: the
 * topology they report is the one the servers have, a kill -9 of a primary
 * fails over within seconds, a client keeps working after it, and what was
 * replicated before the kill is still there. Failover times and the longest
 * gap a writing client saw are printed.
 */

import { readFileSync } from 'node:fs';
import {
  eventually,
  makeCerts,
  type RedisTestCluster,
  type RedisTestSentinel,
  sleep,
  startRedisCluster,
  startRedisSentinel,
  type TestCerts,
} from '@shardwork/testkit';
import * as IORedis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const { Cluster, Redis } = IORedis;

/** What a client writing in the background saw. */
interface TrafficReport {
  readonly ok: number;
  readonly failed: number;
  /** Longest time between two acknowledged writes. */
  readonly longestGapMs: number;
  /** Time of the last acknowledged write. */
  readonly lastOkAt: number;
  /** The write numbers that were acknowledged. */
  readonly acknowledged: readonly number[];
}

/** Call `write(n)` for n = 0, 1, … every 10 ms until `stop()`, recording which were acknowledged and when. */
function traffic(write: (n: number) => Promise<unknown>): { stop(): Promise<TrafficReport> } {
  let running = true;
  const okAt: number[] = [];
  const acknowledged: number[] = [];
  let failed = 0;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      try {
        await write(n);
        okAt.push(Date.now());
        acknowledged.push(n);
      } catch {
        failed++;
      }
      await sleep(10);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      let longestGapMs = 0;
      for (let i = 1; i < okAt.length; i++) longestGapMs = Math.max(longestGapMs, (okAt[i] ?? 0) - (okAt[i - 1] ?? 0));
      return { ok: okAt.length, failed, longestGapMs, lastOkAt: okAt.at(-1) ?? 0, acknowledged };
    },
  };
}

const KEYS = Array.from({ length: 200 }, (_, i) => `key:${i}`);

async function expectAllKeys(client: IORedis.Cluster | IORedis.Redis, except: string[] = []): Promise<void> {
  const values = await Promise.all(KEYS.map((key) => client.get(key)));
  const wrong = KEYS.filter((key, i) => !except.includes(key) && values[i] !== `v${i}`);
  expect(wrong).toEqual([]);
}

describe('Redis Cluster harness', () => {
  let cluster: RedisTestCluster | undefined;
  let client: IORedis.Cluster | undefined;
  /** The primary killed by the failover test, and the replica that took over. */
  let victim = -1;
  let heir = -1;

  const started = (): { cluster: RedisTestCluster; client: IORedis.Cluster } => {
    if (cluster === undefined || client === undefined) throw new Error('the cluster did not start');
    return { cluster, client };
  };

  beforeAll(async () => {
    const began = Date.now();
    cluster = await startRedisCluster();
    console.log(`cluster: 6 nodes up with all slots served in ${Date.now() - began} ms`);
    client = new Cluster([...cluster.startupNodes]);
    client.on('error', () => undefined);
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('starts three primaries with a replica each and tells which node serves a key', async () => {
    const { cluster, client } = started();
    expect(cluster.nodes.map((n) => n.role).sort()).toEqual([
      'primary',
      'primary',
      'primary',
      'replica',
      'replica',
      'replica',
    ]);
    expect(new Set(cluster.nodes.map((n) => n.pid)).size).toBe(6);
    expect(cluster.url).toBe(`redis+cluster://${cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`);
    expect(cluster.startupNodes).toEqual(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    const primaries = cluster.nodes.filter((n) => n.role === 'primary').map((n) => n.index);
    const replicas = await Promise.all(primaries.map((p) => cluster.replicasOf(p)));
    expect(replicas.map((r) => r.length)).toEqual([1, 1, 1]);
    expect(replicas.flat().sort()).toEqual(cluster.nodes.filter((n) => n.role === 'replica').map((n) => n.index));

    await Promise.all(KEYS.map((key, i) => client.set(key, `v${i}`)));
    const sizes = await Promise.all(primaries.map(async (p) => Number((await cluster.command(p, 'DBSIZE')).slice(1))));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(KEYS.length);
    expect(Math.min(...sizes)).toBeGreaterThan(0); // the keys spread over every primary
    // The node primaryOf names answers for the key itself (no MOVED).
    for (const key of KEYS.slice(0, 12)) {
      const owner = await cluster.primaryOf(key);
      expect(primaries).toContain(owner);
      expect(await cluster.command(owner, 'GET', key)).toBe(
        `$${`v${KEYS.indexOf(key)}`.length}\r\nv${KEYS.indexOf(key)}\r\n`,
      );
    }
  });

  it('fails a killed primary over to its replica; the client keeps working and nothing replicated is lost', async () => {
    const { cluster, client } = started();
    for (const node of cluster.nodes.filter((n) => n.role === 'primary')) {
      expect(await cluster.command(node.index, 'WAIT', '1', '5000')).toBe(':1\r\n');
    }
    victim = await cluster.primaryOf('key:0');
    const [replica] = await cluster.replicasOf(victim);
    const writes = traffic((n) => client.set(`traffic:${n}`, String(n)));
    await sleep(300);
    const failover = await cluster.failover(victim, { how: 'kill' });
    const failedOverAt = Date.now();
    heir = failover.newPrimary;
    expect(failover).toMatchObject({ how: 'kill', oldPrimary: victim, newPrimary: replica });
    expect(cluster.nodes[victim]).toMatchObject({ role: 'down', pid: undefined });
    expect(cluster.nodes[heir]?.role).toBe('primary');
    expect(await cluster.primaryOf('key:0')).toBe(heir);

    const recovered = await eventually(async () => {
      await client.set('key:0', 'after');
      return Date.now() - failedOverAt;
    }, 15_000);
    await sleep(500);
    const report = await writes.stop();
    console.log(
      `cluster kill failover: ${failover.ms} ms until cluster_state:ok (node timeout 1000 ms); ` +
        `client wrote key:0 ${recovered} ms after that; background writes ${report.ok} ok, ${report.failed} failed, ` +
        `longest gap ${report.longestGapMs} ms`,
    );
    expect(failover.ms).toBeLessThan(20_000);
    expect(report.lastOkAt).toBeGreaterThan(failedOverAt);
    expect(await client.get('key:0')).toBe('after');
    await expectAllKeys(client, ['key:0']);
  });

  it('brings the killed node back as a replica, and a manual failover hands the slots back without losing a write', async () => {
    const { cluster, client } = started();
    if (victim === -1) throw new Error('needs the failover test before it');
    await cluster.restartNode(victim);
    expect(cluster.nodes[victim]?.role).toBe('replica');
    expect(cluster.nodes[victim]?.pid).toBeTypeOf('number');
    expect(await cluster.replicasOf(heir)).toEqual([victim]);

    // Writes into the failed-over slot (hash tag {key:0}) while the replica takes over.
    const writes = traffic((n) => client.set(`{key:0}:${n}`, String(n)));
    await sleep(300);
    const failover = await cluster.failover(heir, { how: 'manual' });
    await sleep(300);
    const report = await writes.stop();
    console.log(
      `cluster manual failover: ${failover.ms} ms; background writes ${report.ok} ok, ${report.failed} failed, ` +
        `longest gap ${report.longestGapMs} ms`,
    );
    expect(failover).toMatchObject({ how: 'manual', oldPrimary: heir, newPrimary: victim });
    expect(cluster.nodes[victim]?.role).toBe('primary');
    expect(cluster.nodes[heir]?.role).toBe('replica');
    expect(await cluster.primaryOf('key:0')).toBe(victim);
    expect(report.ok).toBeGreaterThan(10);
    const values = await Promise.all(report.acknowledged.map((n) => client.get(`{key:0}:${n}`)));
    expect(values.filter((v, i) => v !== String(report.acknowledged[i]))).toEqual([]);
    await expectAllKeys(client, ['key:0']);
  });
});

describe('Redis Cluster harness with TLS', () => {
  let certs: TestCerts | undefined;
  let cluster: RedisTestCluster | undefined;
  let client: IORedis.Cluster | undefined;

  beforeAll(async () => {
    certs = await makeCerts();
    cluster = await startRedisCluster({ tls: { ...certs.server, ca: certs.ca } });
    const app = await certs.client('app');
    client = new Cluster([...cluster.startupNodes], {
      redisOptions: { tls: { ca: readFileSync(certs.ca), cert: readFileSync(app.cert), key: readFileSync(app.key) } },
    });
    client.on('error', () => undefined);
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
    await certs?.remove();
  });

  it('serves a TLS Cluster client, on TLS cluster bus and replication links, through a kill failover', async () => {
    if (cluster === undefined || client === undefined) throw new Error('the cluster did not start');
    expect(cluster.url).toMatch(/^rediss\+cluster:\/\/127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){5}$/);
    expect(await cluster.command(0, 'CONFIG', 'GET', 'tls-cluster')).toContain('yes');
    expect(await cluster.command(0, 'CONFIG', 'GET', 'tls-replication')).toContain('yes');
    await Promise.all(KEYS.map((key, i) => client?.set(key, `v${i}`)));
    for (const node of cluster.nodes.filter((n) => n.role === 'primary')) {
      expect(await cluster.command(node.index, 'WAIT', '1', '5000')).toBe(':1\r\n');
    }
    const victim = await cluster.primaryOf('key:0');
    const failover = await cluster.failover(victim, { how: 'kill' });
    console.log(`TLS cluster kill failover: ${failover.ms} ms until cluster_state:ok`);
    expect(await cluster.primaryOf('key:0')).toBe(failover.newPrimary);
    await eventually(() => client?.set('key:0', 'after'), 15_000);
    await expectAllKeys(client, ['key:0']);
  });
});

describe('Redis Sentinel harness', () => {
  let setup: RedisTestSentinel | undefined;
  /** A client with default options, and one that also listens for +switch-master. */
  let plain: IORedis.Redis | undefined;
  let detector: IORedis.Redis | undefined;

  const started = (): { setup: RedisTestSentinel; plain: IORedis.Redis; detector: IORedis.Redis } => {
    if (setup === undefined || plain === undefined || detector === undefined) throw new Error('sentinel did not start');
    return { setup, plain, detector };
  };
  /** The data node port a client is connected to. */
  const connectedTo = async (client: IORedis.Redis): Promise<number> =>
    Number(/laddr=[^ ]*:(\d+)/.exec(String(await client.call('CLIENT', 'INFO')))?.[1]);

  beforeAll(async () => {
    const began = Date.now();
    setup = await startRedisSentinel();
    console.log(`sentinel: primary, replica and 3 sentinels agreeing in ${Date.now() - began} ms`);
    plain = new Redis({ sentinels: [...setup.sentinels], name: setup.name });
    detector = new Redis({ sentinels: [...setup.sentinels], name: setup.name, failoverDetector: true });
    for (const client of [plain, detector]) client.on('error', () => undefined);
  });

  afterAll(async () => {
    plain?.disconnect();
    detector?.disconnect();
    await setup?.stop();
  });

  it('starts a primary, a replica and three sentinels that agree on the primary', async () => {
    const { setup, plain } = started();
    const [primary, replica] = setup.nodes;
    expect(setup.nodes.map((n) => n.role)).toEqual(['primary', 'replica']);
    expect(setup.url).toBe(`redis+sentinel://${setup.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/mymaster`);
    expect(await setup.primaryPort()).toBe(primary?.port);
    for (const sentinel of setup.sentinels) {
      expect(await setup.command(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')).toContain(
        `\r\n${primary?.port}\r\n`,
      );
    }
    expect(await setup.command(replica?.port ?? 0, 'ROLE')).toContain('slave');
    await Promise.all(KEYS.map((key, i) => plain.set(key, `v${i}`)));
    expect(await connectedTo(plain)).toBe(primary?.port);
  });

  it('fails a killed primary over; a Sentinel client finds the new one and nothing replicated is lost', async () => {
    const { setup, plain } = started();
    const [primary, replica] = setup.nodes;
    expect(await setup.command(primary?.port ?? 0, 'WAIT', '1', '5000')).toBe(':1\r\n');
    const writes = traffic((n) => plain.set(`traffic:${n}`, String(n)));
    await sleep(300);
    const failover = await setup.failover({ how: 'kill' });
    const failedOverAt = Date.now();
    expect(failover).toMatchObject({ how: 'kill', oldPort: primary?.port, newPort: replica?.port });
    expect(await setup.primaryPort()).toBe(replica?.port);
    expect(setup.nodes.map((n) => n.role)).toEqual(['down', 'primary']);
    expect(primary?.pid).toBeUndefined();

    const recovered = await eventually(async () => {
      await plain.set('key:0', 'after');
      return Date.now() - failedOverAt;
    }, 15_000);
    await sleep(500);
    const report = await writes.stop();
    console.log(
      `sentinel kill failover: ${failover.ms} ms until the sentinels named the new primary (down-after 2000 ms); ` +
        `client wrote key:0 ${recovered} ms after that; background writes ${report.ok} ok, ${report.failed} failed, ` +
        `longest gap ${report.longestGapMs} ms`,
    );
    expect(failover.ms).toBeLessThan(20_000);
    expect(report.lastOkAt).toBeGreaterThan(failedOverAt);
    expect(await connectedTo(plain)).toBe(replica?.port);
    await expectAllKeys(plain, ['key:0']);
  });

  it('brings the killed primary back as a replica; after a manual failover only a client with failoverDetector follows', async () => {
    const { setup, plain, detector } = started();
    const [old, current] = setup.nodes;
    await setup.restartOld();
    expect(setup.nodes.map((n) => n.role)).toEqual(['replica', 'primary']);
    expect(old?.pid).toBeTypeOf('number');
    // It synced from the new primary: the data is back on it.
    await eventually(
      async () => expect(await setup.command(old?.port ?? 0, 'GET', 'key:1')).toBe('$2\r\nv1\r\n'),
      5000,
    );

    const failover = await setup.failover({ how: 'manual' });
    console.log(`sentinel manual failover: ${failover.ms} ms until the sentinels named the new primary`);
    expect(failover).toMatchObject({ how: 'manual', oldPort: current?.port, newPort: old?.port });
    expect(await setup.primaryPort()).toBe(old?.port);
    expect(setup.nodes.map((n) => n.role)).toEqual(['primary', 'replica']);
    expect(await setup.command(current?.port ?? 0, 'ROLE')).toContain('slave');

    // The old primary was demoted, not killed: a plain client stays connected to it.
    await eventually(async () => {
      await detector.set('key:0', 'manual');
      expect(await connectedTo(detector)).toBe(old?.port);
    }, 15_000);
    await expect(plain.set('key:0', 'stale')).rejects.toThrow(/READONLY/);
    await expectAllKeys(detector, ['key:0']);
  });
});
