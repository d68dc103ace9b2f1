import { NotOwnerError } from '@shardwork/core';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  complete,
  completeInTransaction,
  fail,
  fetchDue,
  type Owner,
  putBack,
  putBackOrphans,
  type StoredJob,
  storeJobs,
  takeOver,
} from '../src/index.js';
import { privatePostgres, testJob } from './private-postgres.js';

const SCHEMA = 'fence';
let queue = 'q0';
let queues = 0;
const job = (over: Partial<StoredJob> = {}): StoredJob => testJob({ queue, ...over });

describe('fenced partition steps on a real PostgreSQL', () => {
  const db = privatePostgres(SCHEMA, async ({ server }) => {
    await server.query(`CREATE TABLE ${SCHEMA}.effects (job text NOT NULL, owner bigint NOT NULL)`);
  });
  beforeEach(() => {
    queue = `q${++queues}`;
  });
  const owner = (token: number, partition = 0): Owner => ({ queue, partition, token });
  const take = async (o: Owner, max: number) =>
    (await fetchDue(db.pool, SCHEMA, o, { handlers: ['h'], ordered: [], limited: new Map() }, max)).jobs;
  const store = (jobs: StoredJob[]) => storeJobs(db.pool, SCHEMA, jobs, { partitions: 4, givenWindowMs: 0 });
  const stateOf = async (id: string) =>
    (await db.server.query<{ state: string }>(`SELECT state FROM ${SCHEMA}.jobs WHERE id = $1`, [id]))[0]?.state;
  const effects = async (id: string) =>
    (await db.server.query<{ owner: string }>(`SELECT owner FROM ${SCHEMA}.effects WHERE job = $1`, [id])).map((r) =>
      Number(r.owner),
    );

  it('fetches due jobs of its handlers, oldest first, and records their completion', async () => {
    const [a, b, other, later] = [
      job({ runAt: Date.now() - 2000 }),
      job({ runAt: Date.now() - 1000 }),
      job({ handler: 'not-mine' }),
      job({ runAt: Date.now() + 60_000 }),
    ] as StoredJob[];
    await store([b as StoredJob, a as StoredJob, other as StoredJob, later as StoredJob]);
    expect(await takeOver(db.pool, SCHEMA, owner(1))).toBeDefined();
    const fetched = await take(owner(1), 10);
    expect(fetched.map((f) => f.id)).toEqual([a?.id, b?.id]);
    expect(fetched[0]).toMatchObject({ handler: 'h', args: a?.argsJson, fails: 0 });
    expect(await complete(db.pool, SCHEMA, owner(1), [{ id: a?.id ?? '', result: '{"ok":true}' }])).toEqual([a?.id]);
    expect(await stateOf(a?.id ?? '')).toBe('completed');
    expect(await stateOf(b?.id ?? '')).toBe('running');
    expect(await stateOf(later?.id ?? '')).toBe('scheduled');
  });

  it('a takeover puts back what the old owner ran; the old owner then fetches and completes nothing', async () => {
    const a = job();
    await store([a, job()]);
    await takeOver(db.pool, SCHEMA, owner(1));
    expect(await take(owner(1), 1)).toHaveLength(1);
    expect(await takeOver(db.pool, SCHEMA, owner(2))).toBeDefined();
    expect(await stateOf(a.id)).toBe('ready');
    // The zombie (token 1): nothing fetched, its completion refused.
    expect(await take(owner(1), 10)).toEqual([]);
    expect(await complete(db.pool, SCHEMA, owner(1), [{ id: a.id, result: 'null' }])).toEqual([]);
    expect(await stateOf(a.id)).toBe('ready');
    // A token older than the fence cannot take the partition back.
    expect(await takeOver(db.pool, SCHEMA, owner(1))).toBeUndefined();
    expect((await take(owner(2), 10)).map((f) => f.id)).toContain(a.id);
  });

  it("a zombie's transactional writes never commit: the takeover came first, all roll back together", async () => {
    const a = job();
    await store([a]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 1);
    await takeOver(db.pool, SCHEMA, owner(2)); // the old owner paused past its lease meanwhile
    const error = await completeInTransaction(db.pool, SCHEMA, owner(1), a.id, async (tx) => {
      await tx.query(`INSERT INTO ${SCHEMA}.effects VALUES ($1, 1)`, [a.id]);
      return 'done';
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotOwnerError);
    expect(String((error as Error).message)).toMatch(/Partition 0 \(token 1\) is no longer owned.*fencing token is 2/);
    expect(await effects(a.id)).toEqual([]);
    // The new owner runs it once, in its own transaction.
    await take(owner(2), 1);
    await completeInTransaction(db.pool, SCHEMA, owner(2), a.id, async (tx) => {
      await tx.query(`INSERT INTO ${SCHEMA}.effects VALUES ($1, 2)`, [a.id]);
    });
    expect(await effects(a.id)).toEqual([2]);
    expect(await stateOf(a.id)).toBe('completed');
  });

  it("a takeover during the owner's transaction waits for it: writes and completion commit once, nothing is put back", async () => {
    const a = job();
    await store([a]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 1);
    let takeover: Promise<boolean> | undefined;
    let tookOverEarly = false;
    await completeInTransaction(db.pool, SCHEMA, owner(1), a.id, async (tx) => {
      await tx.query(`INSERT INTO ${SCHEMA}.effects VALUES ($1, 1)`, [a.id]);
      takeover = takeOver(db.pool, SCHEMA, owner(2)).then((taken) => {
        tookOverEarly = true;
        return taken !== undefined && taken.recovered.length === 0;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The new owner's fence update waits for this transaction's FOR SHARE lock.
      expect(tookOverEarly).toBe(false);
    });
    expect(await takeover).toBe(true);
    expect(await effects(a.id)).toEqual([1]);
    expect(await stateOf(a.id)).toBe('completed');
    expect(await take(owner(2), 10)).toEqual([]);
  });

  it('an owner frozen inside its transaction holds the fence only for idleTimeoutMs: the takeover goes on, its writes roll back', async () => {
    const a = job();
    await store([a]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 1);
    let takeover: Promise<unknown> | undefined;
    const error = await completeInTransaction(
      db.pool,
      SCHEMA,
      owner(1),
      a.id,
      async (tx) => {
        await tx.query(`INSERT INTO ${SCHEMA}.effects VALUES ($1, 1)`, [a.id]);
        takeover = takeOver(db.pool, SCHEMA, owner(2));
        // Frozen (as a SIGSTOP would): no statement for longer than the idle limit.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        await tx.query('SELECT 1');
      },
      { idleTimeoutMs: 400 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(await takeover).toMatchObject({ recovered: [{ id: a.id }] });
    expect(await effects(a.id)).toEqual([]);
    expect(await stateOf(a.id)).toBe('ready');
  });

  it('forgetting completion (keepCompleted: false) deletes the rows, but keeps a long outcome somebody waits for', async () => {
    const [a, b, c] = [job(), job(), job()];
    await store([a, b, c]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 3);
    await db.server.query(`UPDATE ${SCHEMA}.jobs SET waited = true WHERE id = $1`, [b.id]);
    await db.server.query(`UPDATE ${SCHEMA}.jobs SET cancel = '{"reason":"x"}' WHERE id = $1`, [c.id]);
    const long = JSON.stringify('x'.repeat(8000));
    const ids = await complete(
      db.pool,
      SCHEMA,
      owner(1),
      [
        { id: a.id, result: '1' },
        { id: b.id, result: long },
        { id: c.id, result: '3' },
      ],
      { forget: true },
    );
    expect(ids.sort()).toEqual([a.id, b.id].sort());
    expect(await stateOf(a.id)).toBeUndefined(); // deleted
    expect(await stateOf(b.id)).toBe('completed'); // its waiter reads it back
    expect(await stateOf(c.id)).toBe('cancelled');
  });

  it('puts back what a fetch took whose reply was lost, and nothing the owner runs', async () => {
    const [a, b] = [job(), job()];
    await store([a, b]);
    await takeOver(db.pool, SCHEMA, owner(1));
    const taken = await take(owner(1), 2); // the reply the consumer never saw
    expect(taken).toHaveLength(2);
    expect(await putBackOrphans(db.pool, SCHEMA, owner(1), [a.id])).toBe(1);
    expect(await stateOf(a.id)).toBe('running');
    expect(await stateOf(b.id)).toBe('ready');
    expect(await putBackOrphans(db.pool, SCHEMA, owner(2), [])).toBe(0); // not the partition's token: nothing
    expect(await stateOf(a.id)).toBe('running');
  });

  it('a job that is not running under the token refuses the transaction: nothing commits', async () => {
    const a = job();
    await store([a]);
    await takeOver(db.pool, SCHEMA, owner(1));
    const error = await completeInTransaction(db.pool, SCHEMA, owner(1), a.id, async (tx) => {
      await tx.query(`INSERT INTO ${SCHEMA}.effects VALUES ($1, 1)`, [a.id]);
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotOwnerError);
    expect(String((error as Error).message)).toMatch(/not running under this token/);
    expect(await effects(a.id)).toEqual([]);
  });

  it('a job cancelled while it ran ends cancelled: its completion is refused', async () => {
    const a = job();
    await store([a]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 1);
    await db.server.query(`UPDATE ${SCHEMA}.jobs SET cancel = '{"message":"user asked"}' WHERE id = $1`, [a.id]);
    expect(await complete(db.pool, SCHEMA, owner(1), [{ id: a.id, result: '42' }])).toEqual([]);
    const [row] = await db.server.query<{ state: string; result: unknown; error: unknown }>(
      `SELECT state, result, error FROM ${SCHEMA}.jobs WHERE id = $1`,
      [a.id],
    );
    expect(row).toEqual({ state: 'cancelled', result: null, error: { message: 'user asked' } });
  });

  it('records failures: retrying until its due time, then dead; a dead job frees its unique key', async () => {
    const a = job({ uniqueKey: 'h:once' });
    await store([a]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 1);
    const error = '{"name":"Error","message":"boom"}';
    expect(await fail(db.pool, SCHEMA, owner(1), [{ id: a.id, error, retryInMs: 60_000 }])).toEqual([
      [a.id, 'retrying'],
    ]);
    // Not due yet: nothing to fetch; a unique duplicate is refused meanwhile.
    expect(await take(owner(1), 10)).toEqual([]);
    expect((await store([job({ uniqueKey: 'h:once' })]))[0]).toEqual({ id: a.id, duplicate: true });
    await db.server.query(`UPDATE ${SCHEMA}.jobs SET run_at = 0 WHERE id = $1`, [a.id]);
    const [again] = await take(owner(1), 10);
    expect(again).toMatchObject({ id: a.id, fails: 1 });
    expect(await fail(db.pool, SCHEMA, owner(1), [{ id: a.id, error, retryInMs: null }])).toEqual([[a.id, 'dead']]);
    const [row] = await db.server.query<{ state: string; fails: number; error: unknown }>(
      `SELECT state, fails, error FROM ${SCHEMA}.jobs WHERE id = $1`,
      [a.id],
    );
    expect(row).toEqual({ state: 'dead', fails: 2, error: { name: 'Error', message: 'boom' } });
    const next = job({ uniqueKey: 'h:once' });
    expect(await store([next])).toEqual([{ id: next.id, duplicate: false }]);
  });

  it('puts aborted attempts back to ready under its token only', async () => {
    const [a, b] = [job(), job()];
    await store([a, b]);
    await takeOver(db.pool, SCHEMA, owner(1));
    await take(owner(1), 2);
    expect(await putBack(db.pool, SCHEMA, owner(1), [a.id])).toBe(1);
    expect(await stateOf(a.id)).toBe('ready');
    expect(await stateOf(b.id)).toBe('running');
    // A stale token puts nothing back, and records no failure.
    await takeOver(db.pool, SCHEMA, owner(2));
    expect(await putBack(db.pool, SCHEMA, owner(1), [b.id])).toBe(0);
    expect(await fail(db.pool, SCHEMA, owner(1), [{ id: b.id, error: '{}', retryInMs: null }])).toEqual([]);
  });
});
