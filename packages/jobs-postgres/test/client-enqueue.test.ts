import { createJobQueue, InvalidJobError, type JobQueue } from '@shardwork/jobs';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresJobAdapter } from '../src/index.js';
import { privatePostgres } from './private-postgres.js';

const SCHEMA = 'outbox';

describe("perform(job, { client }): enqueue inside the application's transaction", () => {
  const db = privatePostgres(SCHEMA);
  const queues: JobQueue[] = [];
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.stop({ timeoutMs: 0 });
  });
  const producer = (): JobQueue => {
    const q = createJobQueue(new PostgresJobAdapter({ url: `${db.server.url}?schema=${SCHEMA}&partitions=2` }));
    queues.push(q);
    return q;
  };
  const jobs = async (): Promise<string[]> =>
    (await db.server.query<{ id: string }>(`SELECT id FROM ${SCHEMA}.jobs ORDER BY seq`)).map((r) => r.id);

  it('commits the business write and the job together, or neither', async () => {
    await db.server.query('CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)');
    const q = producer();
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO orders VALUES (1)');
      const { id } = await q.perform({ handler: 'invoice', args: { order: 1 } }, { client });
      expect(await jobs()).not.toContain(id);
      await client.query('COMMIT');
      expect(await jobs()).toContain(id);

      await client.query('BEGIN');
      await client.query('INSERT INTO orders VALUES (2)');
      const rolledBack = await q.perform({ handler: 'invoice', args: { order: 2 } }, { client });
      await client.query('ROLLBACK');
      expect(await jobs()).not.toContain(rolledBack.id);
      expect(await db.server.query('SELECT id FROM orders ORDER BY id')).toEqual([{ id: 1 }]);
    } finally {
      client.release();
    }
  });

  it('a unique key inside the transaction: a second perform of it there is a duplicate naming the first', async () => {
    const q = producer();
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const job = { handler: 'sync', args: { user: 7 }, key: 'user-7' };
      q.register('sync', () => undefined, { unique: true });
      const first = await q.perform(job, { client });
      const second = await q.perform(job, { client });
      await client.query('COMMIT');
      expect(second).toEqual({ id: first.id, duplicate: true });
    } finally {
      client.release();
    }
  });

  it('refuses a pool, which has no transaction of the caller, and anything without query()', async () => {
    const q = producer();
    await expect(q.perform({ handler: 'x' }, { client: db.pool })).rejects.toThrow(/pool\.connect\(\)/);
    await expect(q.perform({ handler: 'x' }, { client: { notAClient: true } })).rejects.toThrow(InvalidJobError);
    const outside = await db.pool.connect(); // no BEGIN: stored at once, like a plain perform
    try {
      const { id } = await q.perform({ handler: 'autocommit' }, { client: outside });
      expect(await jobs()).toContain(id);
    } finally {
      outside.release();
    }
    expect(await db.server.query(`SELECT id FROM ${SCHEMA}.jobs WHERE handler = 'x'`)).toEqual([]);
  });

  it('leaves a failed statement to the caller: the perform rejects, the transaction is the caller’s to roll back', async () => {
    const q = producer();
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await expect(client.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
      await expect(q.perform({ handler: 'after_error' }, { client })).rejects.toThrow(/aborted/);
      await client.query('ROLLBACK');
      expect(await db.server.query(`SELECT id FROM ${SCHEMA}.jobs WHERE handler = 'after_error'`)).toEqual([]);
    } finally {
      client.release();
    }
  });
});
