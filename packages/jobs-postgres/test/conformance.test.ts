import { createJobQueue } from '@shardwork/jobs';
import { describeJobQueueConformance } from '@shardwork/jobs/testing';
import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import pg from 'pg';
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
  // The application's own client: BEGIN on it, and the suite performs with { client }.
  transaction: async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query('BEGIN');
    const end = async (sql: string): Promise<void> => {
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    return { client, commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
  },
});
