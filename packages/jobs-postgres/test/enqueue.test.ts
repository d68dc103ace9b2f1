import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PartitionCountMismatchError, type StoredJob, storeJobs, wakeChannel } from '../src/index.js';
import { testJob as job, privatePostgres } from './private-postgres.js';

const SCHEMA = 'enq';

describe('storing jobs on a real PostgreSQL', () => {
  const db = privatePostgres(SCHEMA);
  const store = (jobs: StoredJob[], on: pg.Pool | pg.ClientBase = db.pool, givenWindowMs = 60_000) =>
    storeJobs(on, SCHEMA, jobs, { partitions: 4, givenWindowMs });
  const row = async (id: string) =>
    (
      await db.server.query(`SELECT state, partition, args::text AS args, priority FROM ${SCHEMA}.jobs WHERE id = $1`, [
        id,
      ])
    )[0];

  it('stores a batch in one statement: ready or scheduled, args as given, in input order', async () => {
    const later = Date.now() + 60_000;
    const jobs = [
      job({ argsJson: '{"b":1,"a":1.50,"big":12345678901234567890}', partition: 2, priority: 7 }),
      job({ runAt: later }),
    ];
    expect(await store(jobs)).toEqual(jobs.map((j) => ({ id: j.id, duplicate: false })));
    expect(await row(jobs[0]?.id ?? '')).toEqual({
      state: 'ready',
      partition: 2,
      args: '{"b":1,"a":1.50,"big":12345678901234567890}',
      priority: 7,
    });
    expect((await row(jobs[1]?.id ?? ''))?.state).toBe('scheduled');
  });

  it('a given id adds nothing the second time, also after its job is gone, within the window', async () => {
    const first = job({ id: 'order-42', idGiven: true });
    expect(await store([first])).toEqual([{ id: 'order-42', duplicate: false }]);
    expect(await store([{ ...first }])).toEqual([{ id: 'order-42', duplicate: true }]);
    await db.server.query(`DELETE FROM ${SCHEMA}.jobs WHERE id = 'order-42'`);
    expect(await store([{ ...first }])).toEqual([{ id: 'order-42', duplicate: true }]);
    const brief = job({ id: 'brief-1', idGiven: true });
    await store([brief], db.pool, 1);
    await db.server.query(`DELETE FROM ${SCHEMA}.jobs WHERE id = 'brief-1'`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store([{ ...brief }], db.pool, 1)).toEqual([{ id: 'brief-1', duplicate: false }]);
  });

  it('a unique key is held by the first waiting or running job, in the batch and across batches', async () => {
    const [a, b] = [job({ uniqueKey: 'h:u1' }), job({ uniqueKey: 'h:u1' })];
    expect(await store([a as StoredJob, b as StoredJob])).toEqual([
      { id: a?.id, duplicate: false },
      { id: a?.id, duplicate: true },
    ]);
    expect(await store([job({ uniqueKey: 'h:u1' })])).toEqual([{ id: a?.id, duplicate: true }]);
    await db.server.query(`UPDATE ${SCHEMA}.jobs SET state = 'completed' WHERE id = $1`, [a?.id]);
    const c = job({ uniqueKey: 'h:u1' });
    expect(await store([c])).toEqual([{ id: c.id, duplicate: false }]);
  });

  it('two transactions storing one unique key at once: one job, the other told its holder', async () => {
    const [t1, t2] = [await db.pool.connect(), await db.pool.connect()];
    try {
      await t1.query('BEGIN');
      await t2.query('BEGIN');
      const x = job({ uniqueKey: 'h:race' });
      const y = job({ uniqueKey: 'h:race' });
      expect(await store([x], t1)).toEqual([{ id: x.id, duplicate: false }]);
      const second = store([y], t2); // waits for t1 on the unique index
      await new Promise((resolve) => setTimeout(resolve, 100));
      await t1.query('COMMIT');
      expect(await second).toEqual([{ id: x.id, duplicate: true }]);
      await t2.query('COMMIT');
    } finally {
      t1.release();
      t2.release();
    }
  });

  it("inside the caller's transaction: stored and announced only if it commits", async () => {
    const listener = new pg.Client({ connectionString: db.server.url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.payload ?? ''));
    await listener.query(`LISTEN ${wakeChannel(SCHEMA)}`);
    const tx = await db.pool.connect();
    try {
      await tx.query('BEGIN');
      const dropped = job({ partition: 3 });
      await store([dropped], tx);
      await tx.query('ROLLBACK');
      expect(await row(dropped.id)).toBeUndefined();
      await tx.query('BEGIN');
      const kept = job({ partition: 1 });
      await store([kept], tx);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(heard).toEqual([]);
      await tx.query('COMMIT');
      for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(heard).toEqual(['default|1']);
      expect((await row(kept.id))?.state).toBe('ready');
    } finally {
      tx.release();
      await listener.end();
    }
  });

  it('refuses another partition count for a stored queue and stores nothing', async () => {
    const other = job({ queue: 'four' });
    await store([other]);
    const eight = job({ queue: 'four' });
    const error = await storeJobs(db.pool, SCHEMA, [eight], { partitions: 8, givenWindowMs: 0 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PartitionCountMismatchError);
    expect(error).toMatchObject({ queue: 'four', stored: 4, given: 8 });
    expect(await row(eight.id)).toBeUndefined();
  });
});
