import { until } from '@shardwork/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { type StoredJob, storeJobs, WakeSubscriber } from '../src/index.js';
import { privatePostgres, testJob } from './private-postgres.js';

const SCHEMA = 'wake';
const job = (partition: number): StoredJob => testJob({ queue: 'mail', partition, argsJson: '{}' });

describe('wake-ups by LISTEN/NOTIFY on a real PostgreSQL', () => {
  const db = privatePostgres(SCHEMA);

  it('hears the partition of each stored ready job; after a server crash it listens again and wakes everyone', async () => {
    const heard: string[] = [];
    const errors: unknown[] = [];
    const subscriber = new WakeSubscriber({
      connection: { connectionString: db.server.url },
      schema: SCHEMA,
      onWake: (m) =>
        heard.push(
          m.type === 'ready' ? `${m.queue}|${m.partition}` : m.type === 'all' && m.queue === undefined ? '*' : m.type,
        ),
      onError: (error) => errors.push(error),
    });
    await subscriber.start();
    try {
      const store = (jobs: StoredJob[]) => storeJobs(db.pool, SCHEMA, jobs, { partitions: 4, givenWindowMs: 0 });
      await store([job(2), job(2), job(3)]);
      await until(() => heard.length >= 2, 5000, 'two wake-ups');
      expect(heard.sort()).toEqual(['mail|2', 'mail|3']);
      // A scheduled job wakes its owner too: it may fall due before the time the owner sleeps until.
      heard.length = 0;
      await store([{ ...job(1), runAt: Date.now() + 60_000 }]);
      await until(() => heard.length >= 1, 5000, 'a wake-up for the scheduled job');
      expect(heard).toEqual(['mail|1']);
      await db.server.crash({ downMs: 300 });
      await until(() => heard.includes('*'), 15_000, 'woken after the reconnect');
      expect(errors).toHaveLength(1);
      heard.length = 0;
      const client = new pg.Client({ connectionString: db.server.url });
      await client.connect();
      try {
        await storeJobs(client, SCHEMA, [job(0)], { partitions: 4, givenWindowMs: 0 });
      } finally {
        await client.end();
      }
      await until(() => heard.includes('mail|0'), 5000, 'a wake-up after the reconnect');
    } finally {
      await subscriber.close();
    }
  }, 60_000);
});
