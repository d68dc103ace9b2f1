/**
 * Garbage in the Redis job adapter's keys, against a real redis-server: a
 * value of another type in a bookkeeping key (the set of queue names, counts,
 * pause flags, fences, cron ticks…) is deleted and reported with
 * `record:invalid` (`repaired: true`), and never stops an enqueue; garbage in
 * the keys that hold the jobs is named in a `QueueCorruptedError` and changes
 * nothing. And after Redis lost its data, a running consumer's queue shows in
 * the admin views again without a producer enqueueing.
 */

import { sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue, type JobQueueEventMap, QueueCorruptedError } from '@shardwork/jobs';
import { type RedisTestServer, startRedisServer, until } from '@shardwork/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { queueBase } from '../src/index.js';

let server: RedisTestServer;
let admin: Redis;
let seq = 0;
const open: JobQueue[] = [];

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.port, '127.0.0.1');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.stop({ timeoutMs: 0 }).catch(() => undefined)));
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

const fresh = (): string => `g${process.pid}r${++seq}:`;

function queue(prefix: string, invalid: JobQueueEventMap['record:invalid'][] = []): JobQueue {
  const q = createJobQueue(`${server.url}?prefix=${prefix}&partitions=2&leaseTtlMs=1000`, {
    adapter: { revokeTimeoutMs: 1000, enqueueTimeoutMs: 500, idleCheckMs: 300 },
  });
  q.on('record:invalid', (e) => invalid.push(e));
  q.on('error', () => undefined);
  open.push(q);
  return q;
}

describe('garbage in the redis job adapter’s keys', () => {
  it('a string where the set of queue names belongs: perform, stats and the CLI’s reads carry on, the key is repaired', async () => {
    const prefix = fresh();
    await admin.set(`${prefix}queues`, 'garbage');
    const invalid: JobQueueEventMap['record:invalid'][] = [];
    const q = queue(prefix, invalid);
    const { id } = await q.perform({ handler: 'work' });
    expect(id).toBeTruthy();
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ repaired: true, error: { name: 'InvalidRecordError', key: `${prefix}queues` } });
    expect(invalid[0]?.error.message).toMatch(/a string where the set of queue names belongs: deleted/);
    expect(await admin.type(`${prefix}queues`)).toBe('set');
    // Another process (the CLI) that meets the garbage in its read repairs it too, and still sees the queue.
    await admin.set(`${prefix}queues`, 'garbage again');
    const reader = queue(prefix);
    expect((await reader.stats()).total.ready).toBe(1);
    await reader.perform({ handler: 'work' });
    expect(Object.keys((await reader.stats()).queues)).toEqual(['default']);
  });

  it.each([
    ['count', 'set', 'the job counts of stats()'],
    ['seen', 'string', 'the handler names ever enqueued'],
    ['ordered', 'string', 'which handlers are ordered'],
    ['paused', 'hash', 'the paused handlers'],
    ['conc', 'list', 'the running counts of maxConcurrency'],
    ['fence', 'string', "the partitions' fencing tokens"],
    ['cron', 'set', 'the newest tick of each periodic job'],
    ['unique', 'string', 'the unique keys of queued jobs'],
  ])('a %s key of another type (a %s) is deleted and reported, and jobs keep flowing', async (name, type, lost) => {
    const prefix = fresh();
    const invalid: JobQueueEventMap['record:invalid'][] = [];
    const q = queue(prefix, invalid);
    const done: string[] = [];
    q.register('work', (_args, ctx) => void done.push(ctx.id), { ordered: true, maxConcurrency: 2 });
    await q.start();
    await q.perform({ handler: 'work', key: 'k' });
    await until(() => done.length === 1, 5000, 'the first job ran');
    const key = `${queueBase(prefix, 'default')}${name}`;
    // In one transaction: a running consumer's script could write the key between a DEL and a write.
    const garbage = admin.multi().del(key);
    if (type === 'string') garbage.set(key, 'garbage');
    else if (type === 'set') garbage.sadd(key, 'garbage');
    else if (type === 'hash') garbage.hset(key, 'garbage', '1');
    else garbage.rpush(key, 'garbage');
    await garbage.exec();
    const next = await q.perform({ handler: 'work', key: 'k' });
    await until(() => done.includes(next.id), 5000, 'a job after the garbage ran');
    const report = invalid.find((e) => e.error.key === key);
    expect(report?.repaired).toBe(true);
    expect(report?.error.message).toContain(`a ${type} where the queue keeps ${lost}`);
    expect((await q.stats()).total.dead).toBe(0);
  });

  it('garbage where the jobs are kept: perform rejects naming the key, nothing is changed', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    await q.perform({ handler: 'work' });
    const key = `${queueBase(prefix, 'default')}jobs`;
    await admin.del(key);
    await admin.set(key, 'garbage');
    const error = await q.perform({ handler: 'work' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueCorruptedError);
    expect((error as QueueCorruptedError).key).toBe(key);
    expect((error as Error).message).toMatch(/holds a string, not the hash of its jobs. Nothing was changed/);
    expect(await admin.get(key)).toBe('garbage');
  });
});

describe('after Redis lost its data', () => {
  it('a running consumer’s queue shows in stats() again without a producer enqueueing', async () => {
    const prefix = fresh();
    const consumer = queue(prefix);
    consumer.register('work', () => undefined);
    await consumer.start();
    const reader = queue(prefix);
    await until(async () => 'default' in (await reader.stats()).queues, 3000, 'the queue is listed');
    const keys = await admin.keys(`${prefix}*`);
    await admin.del(...keys);
    // A fresh reader knows nothing of the queue but what Redis holds.
    const later = queue(prefix);
    await until(async () => 'default' in (await later.stats()).queues, 5000, 'the queue is listed again');
    await sleep(10);
  });
});
