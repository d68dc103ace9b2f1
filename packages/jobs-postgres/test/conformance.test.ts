import { createJobQueue } from '@shardwork/jobs';
import { describeJobQueueConformance } from '@shardwork/jobs/testing';
import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import { afterAll, beforeAll } from 'vitest';
import { PostgresJobAdapter } from '../src/index.js';

let server: PostgresTestServer;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

// One schema per test (the namespace), and one in-process coordinator store per test.
describeJobQueueConformance({
  name: 'postgres',
  durable: true,
  refusesUnknownHandlers: false,
  unsupported: ['priority', 'jobPriority'],
  // An instance rather than a URL: a URL's package loads at start, and the suite expects refusals at register.
  create: (options, namespace) =>
    createJobQueue(
      new PostgresJobAdapter({
        url: `${server.url}?schema=${namespace}&partitions=4&leaseTtlMs=1000`,
        revokeTimeoutMs: 2000,
        discovery: `memory://${namespace}`,
        ...options.adapter,
      }),
      options,
    ),
});
