/**
 * shardwork on a real Redis Cluster (3 primaries, 3 replicas), the ways a
 * user connects: a `redis+cluster://` URL, the `clusterNodes` option and an
 * ioredis `Cluster` of their own. Services and queues spread over the
 * primaries; listings visit every primary; nothing crosses slots (pause and
 * unpause touch every queue). Failover is in redis-ha.test.ts.
 */

import { Worker } from '@shardwork/core';
import { RedisDiscovery } from '@shardwork/discovery-redis';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RedisTestCluster, startRedisCluster, until } from '@shardwork/testkit';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let cluster: RedisTestCluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

/** Service names whose slots fall on every primary. */
async function servicesOnEveryPrimary(prefix: string): Promise<string[]> {
  const byPrimary = new Map<number, string>();
  for (let i = 0; byPrimary.size < 3 && i < 100; i++) {
    const name = `svc${i}`;
    const primary = await cluster.primaryOf(`${prefix}{${name}}:meta`);
    if (!byPrimary.has(primary)) byPrimary.set(primary, name);
  }
  expect(byPrimary.size).toBe(3);
  return [...byPrimary.values()];
}

describe('discovery on Redis Cluster', () => {
  it('runs services on every primary from a URL, and lists them all', async () => {
    const services = await servicesOnEveryPrimary('sw:');
    const discovery = new RedisDiscovery({ url: cluster.url });
    const workers = services.map(
      (service) => new Worker({ service, shards: 4, discovery, leaseTtlMs: 1000, handler: () => undefined }),
    );
    try {
      for (const worker of workers) await worker.start();
      await until(() => workers.every((w) => w.status().shards.length === 4), 20_000, 'every worker owns its 4 shards');
      expect(await discovery.services()).toEqual([...services].sort());
    } finally {
      for (const worker of workers) await worker.stop();
      await discovery.close();
    }
  });

  it("takes the clusterNodes option or the caller's ioredis Cluster", async () => {
    const fromOption = new RedisDiscovery({ clusterNodes: cluster.startupNodes, prefix: 'opt:' });
    const client = new Cluster([...cluster.startupNodes], { enableOfflineQueue: false });
    const fromClient = new RedisDiscovery({ client, prefix: 'opt:' });
    const worker = new Worker({
      service: 'own-client',
      shards: 2,
      discovery: fromOption,
      leaseTtlMs: 1000,
      handler: () => undefined,
    });
    try {
      await worker.start();
      await until(() => worker.status().shards.length === 2, 20_000, 'the worker owns both shards');
      // The caller's client sees what the other connection wrote, and is left open by close().
      const snapshot = await fromClient.snapshot('own-client');
      const me = worker.status().instance;
      expect(me).toBeDefined();
      expect(snapshot.claims.map((c) => c.owner)).toEqual([me, me]);
      await fromClient.close();
      expect(client.status).toBe('ready');
    } finally {
      await worker.stop();
      await fromOption.close();
      client.disconnect();
    }
  });
});

describe('jobs on Redis Cluster', () => {
  it('runs queues on every primary, and pauses and unpauses across them', async () => {
    const queues = await servicesOnEveryPrimary('swj:');
    const q: JobQueue = createJobQueue(`${cluster.url}?partitions=2&leaseTtlMs=1000`, { concurrency: 4 });
    q.on('error', () => undefined);
    const done = new Map<string, number>();
    for (const name of queues) {
      q.register(
        `h-${name}`,
        () => {
          done.set(name, (done.get(name) ?? 0) + 1);
        },
        { queue: name },
      );
    }
    try {
      await q.start();
      for (const name of queues) for (let i = 0; i < 10; i++) await q.perform({ handler: `h-${name}`, args: { i } });
      await until(() => queues.every((name) => done.get(name) === 10), 20_000, '10 jobs ran in each queue');

      const [first] = queues;
      if (first === undefined) throw new Error('no queue');
      await q.pause(`h-${first}`);
      await q.perform({ handler: `h-${first}` });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(done.get(first)).toBe(10);
      await q.unpause(`h-${first}`);
      await until(() => done.get(first) === 11, 20_000, 'the paused job ran after unpause');

      const stats = await q.stats();
      expect(Object.keys(stats.queues).sort()).toEqual(expect.arrayContaining([...queues].sort()));
    } finally {
      await q.stop();
    }
  });
});
