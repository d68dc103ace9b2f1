import { createJobQueue } from '@shardwork/jobs';
import { describeJobQueueConformance } from '@shardwork/jobs/testing';
import { type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { afterAll, beforeAll } from 'vitest';

let server: RedisTestServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describeJobQueueConformance({
  name: 'redis',
  durable: true,
  refusesUnknownHandlers: false,
  create: (options, namespace) =>
    createJobQueue(`${server.url}?prefix=${namespace}:&partitions=4&leaseTtlMs=1000`, {
      ...options,
      adapter: { revokeTimeoutMs: 2000, ...options.adapter },
    }),
});
