import { describeDiscoveryConformance } from '@shardwork/core/testing';
import { type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisDiscovery } from '../src/index.js';

let server: RedisTestServer;
let admin: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  await admin.connect();
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describeDiscoveryConformance({
  name: 'redis',
  ttlMs: 1000,
  connect: () => new RedisDiscovery({ url: server.url }),
  async writeGarbage(service) {
    const keys = new RedisDiscovery({ url: server.url }).keys(service);
    const [seconds] = await admin.time();
    // A member with a live lease whose info is not JSON, and a claim that is not "<owner>|<token>".
    await admin.zadd(keys.members, String((Number(seconds) + 60) * 1000), 'ghost');
    await admin.hset(keys.info, 'ghost', '{not json');
    await admin.hset(keys.claims, '7', 'garbage');
  },
});
