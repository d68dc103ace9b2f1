/**
 * What only the Redis adapter does, against a real redis-server: garbage
 * records, data loss, an unreachable server, fencing of a zombie's writes,
 * cron catch-up, option errors.
 */

import { InvalidOptionsError, sleep } from '@shardwork/core';
import {
  createJobQueue,
  type JobQueue,
  type JobQueueEventMap,
  QueueDataLostError,
  QueueUnavailableError,
} from '@shardwork/jobs';
import { freePort, type RedisTestServer, startRedisServer, TcpProxy, until } from '@shardwork/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileRedisJobOptions, partitionOf, queueBase } from '../src/index.js';

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

function queue(prefix: string, partitions = 2): JobQueue {
  const q = createJobQueue(`${server.url}?prefix=${prefix}&partitions=${partitions}&leaseTtlMs=1000`, {
    adapter: { revokeTimeoutMs: 1000, enqueueTimeoutMs: 300 },
  });
  open.push(q);
  return q;
}

const fresh = (): string => `t${process.pid}r${++seq}:`;

describe('redis job adapter', () => {
  it('dead-sets a garbage record with a reason and a record:invalid event, and keeps consuming', async () => {
    const prefix = fresh();
    const producer = queue(prefix);
    producer.register('work', () => undefined);
    const bad = await producer.perform({ handler: 'work' });
    const good = await producer.perform({ handler: 'work' });
    await admin.hset(`${queueBase(prefix, 'default')}jobs`, bad.id, '{"truncated":');
    const consumer = queue(prefix);
    const invalid: JobQueueEventMap['record:invalid'][] = [];
    const completed: string[] = [];
    consumer.on('record:invalid', (e) => invalid.push(e));
    consumer.on('job:completed', ({ job }) => completed.push(job.id));
    consumer.on('error', () => undefined);
    consumer.register('work', () => undefined);
    await consumer.start();
    await until(() => completed.includes(good.id) && invalid.length === 1, 5000, 'good done, bad reported');
    expect(invalid[0]?.error.key).toContain(bad.id);
    expect(invalid[0]?.error.message).toMatch(/not JSON/);
    await until(async () => (await consumer.list('dead')).total === 1, 2000, 'bad dead-set');
    const dead = await consumer.list('dead');
    expect(dead.jobs[0]?.id).toBe(bad.id);
    expect(dead.jobs[0]?.lastError?.message).toMatch(/not JSON/);
  });

  it('reports a Redis that lost its data as an error, not as an empty queue, and carries on', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    const errors: unknown[] = [];
    q.on('error', ({ error }) => errors.push(error));
    const done: string[] = [];
    q.register('work', (_args, ctx) => void done.push(ctx.id));
    await q.start();
    await q.perform({ handler: 'work' });
    await until(() => done.length === 1, 3000, 'first job ran');
    // Everything of this queue vanishes, as after a restart without persistence.
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    const again = await q.perform({ handler: 'work' });
    expect(errors.some((e) => e instanceof QueueDataLostError)).toBe(true);
    expect((errors.find((e) => e instanceof QueueDataLostError) as Error).message).toMatch(/appendonly/);
    await until(() => done.includes(again.id), 5000, 'the queue carries on');
  });

  it('rejects perform clearly when Redis is unreachable, after retrying for enqueueTimeoutMs', async () => {
    const port = await freePort();
    const q = createJobQueue(`redis://127.0.0.1:${port}?prefix=${fresh()}`, { adapter: { enqueueTimeoutMs: 400 } });
    open.push(q);
    const began = Date.now();
    const attempt = q.perform({ handler: 'work' });
    await expect(attempt).rejects.toThrow(QueueUnavailableError);
    await expect(q.perform({ handler: 'work' })).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port}`));
    expect(Date.now() - began).toBeGreaterThanOrEqual(350);
  });

  it('says whether a rejected perform may have stored its job (ambiguous), and a retry with the same id stores it once', async () => {
    // A dead port: nothing was ever sent.
    const port = await freePort();
    const down = createJobQueue(`redis://127.0.0.1:${port}?prefix=${fresh()}`, { adapter: { enqueueTimeoutMs: 200 } });
    open.push(down);
    const refused = await down.perform({ handler: 'work' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QueueUnavailableError);
    expect((refused as QueueUnavailableError).ambiguous).toBe(false);
    // A connection that goes silent after the script was sent: the job may be stored.
    const prefix = fresh();
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: server.port });
    try {
      const producer = createJobQueue(`redis://127.0.0.1:${proxy.port}?prefix=${prefix}&partitions=2`, {
        adapter: { enqueueTimeoutMs: 600, commandTimeoutMs: 300, connectTimeoutMs: 300 },
      });
      open.push(producer);
      await producer.perform({ handler: 'work' }); // connected, scripts loaded
      proxy.stall();
      const id = `pay-${prefix}`;
      const lost = await producer.perform({ handler: 'work' }, { id }).catch((error: unknown) => error);
      expect(lost).toBeInstanceOf(QueueUnavailableError);
      expect((lost as QueueUnavailableError).ambiguous).toBe(true);
      expect((lost as Error).message).toMatch(/may have reached the store.*same id/);
      proxy.heal();
      // The stalled call never reached Redis here, so the retry stores it; a second retry adds nothing.
      await until(
        async () => (await producer.perform({ handler: 'work' }, { id }).catch(() => undefined)) !== undefined,
        5000,
        'Redis again',
      );
      expect(await producer.perform({ handler: 'work' }, { id })).toEqual({ id, duplicate: true });
      expect(await admin.hexists(`${prefix}{default}:jobs`, id)).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a partition count that differs from the one stored for the queue', async () => {
    const prefix = fresh();
    await queue(prefix).perform({ handler: 'work' });
    const other = queue(prefix, 5);
    await expect(other.perform({ handler: 'work' })).rejects.toThrow(InvalidOptionsError);
    await expect(other.perform({ handler: 'work' })).rejects.toThrow(/partition count stored for queue "default"/);
  });

  it('refuses a consumer with another partition count in words of a queue and its partitions', async () => {
    const prefix = fresh();
    const first = queue(prefix, 2);
    first.register('work', () => undefined);
    await first.start();
    const second = queue(prefix, 4);
    second.register('work', () => undefined);
    const error = await second.start().catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /Queue "default" has 2 partitions .* started with partitions: 4\. Every producer and consumer of queue "default" must use the same partitions/,
    );
  });

  it('refuses the completion of a zombie whose partition has a newer token, so the job runs again', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const completed: string[] = [];
    const started: { partition: number | undefined; token: number | undefined }[] = [];
    q.on('job:completed', ({ job }) => completed.push(job.id));
    q.register('slow', async (_args, ctx) => {
      started.push({ partition: ctx.partition, token: ctx.token });
      await held;
    });
    await q.start();
    const { id } = await q.perform({ handler: 'slow', key: 'k' });
    await until(() => started.length === 1, 3000, 'it started');
    expect(started[0]?.partition).toBe(partitionOf('k', 2));
    // Another owner fenced the partition meanwhile (as after this replica froze past its lease).
    await admin.hset(
      `${queueBase(prefix, 'default')}fence`,
      String(started[0]?.partition),
      String((started[0]?.token ?? 0) + 1_000_000_000),
    );
    release();
    await sleep(300);
    expect(completed).toEqual([]);
    expect(await admin.hexists(`${queueBase(prefix, 'default')}jobs`, id)).toBe(1);
  });

  it('lists the owner, token and fence of every partition', async () => {
    const q = queue(fresh());
    q.register('work', () => undefined);
    await q.start();
    await until(
      async () => (await q.partitions()).every((p) => p.fence !== undefined && p.fence === p.token),
      3000,
      'fenced',
    );
    const owners = await q.partitions();
    expect(owners.map((o) => o.partition)).toEqual([0, 1]);
    for (const o of owners) expect(o).toMatchObject({ queue: 'default', pid: process.pid });
    expect(new Set(owners.map((o) => o.owner)).size).toBe(1);
  });

  it.each([
    ['all', 2],
    ['once', 1],
    ['skip', 0],
  ] as const)('catches up on ticks nobody enqueued with catchUp "%s" (%i in the gap)', async (catchUp, expected) => {
    const prefix = fresh();
    const first = queue(prefix);
    const ticks: number[] = [];
    first.register('beat', (_args, ctx) => void ticks.push(ctx.scheduledAt.getTime()));
    first.periodic('beat', '* * * * * *', { handler: 'beat' }, { catchUp });
    await first.start();
    await until(() => ticks.length >= 1, 3000, 'a first tick');
    await first.stop({ timeoutMs: 1000 });
    const stoppedAt = Date.now();
    await sleep(2600);
    const second = queue(prefix);
    const later: number[] = [];
    second.register('beat', (_args, ctx) => void later.push(ctx.scheduledAt.getTime()));
    second.periodic('beat', '* * * * * *', { handler: 'beat' }, { catchUp });
    const resumedAt = Date.now();
    await second.start();
    await sleep(1500);
    const gap = later.filter((t) => t > stoppedAt && t < resumedAt);
    expect(gap).toHaveLength(expected);
    // And the ticks after the gap run once each.
    const after = later.filter((t) => t >= resumedAt);
    expect(new Set(after).size).toBe(after.length);
    expect(after.length).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ['redis://h?partitions=many', 'partitions'],
    ['redis://h?partitions=0', 'partitions'],
    ['redis://h?leaseTtlMs=10', 'leaseTtlMs'],
    ['redis://h?colour=blue', 'url'],
    ['redis://h?prefix=a{b}', 'prefix'],
  ])('refuses %s naming %s', (url, option) => {
    expect(() => compileRedisJobOptions({ url })).toThrow(expect.objectContaining({ option }));
  });

  it('refuses an unknown URL parameter with the job adapter’s own list, echoing the URL as given (redacted)', () => {
    const url = 'redis://app:s3cret@127.0.0.1:6379/0?prefix=x:&partitions=4&bogus=1';
    let message = '';
    try {
      compileRedisJobOptions({ url });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('prefix, partitions, leaseTtlMs, commandTimeoutMs, connectTimeoutMs, syncReplicas');
    expect(message).toContain('"bogus" is none of them');
    expect(message).toContain('(got "redis://app:***@127.0.0.1:6379/0?prefix=x:&partitions=4&bogus=1")');
    expect(message).not.toContain('s3cret');
    expect(message.match(/got/g)).toHaveLength(1);
    // A parameter of the discovery backend that the job adapter has no use for is refused too.
    expect(() => compileRedisJobOptions({ url: 'redis://h?pollIntervalMs=500' })).toThrow(
      /"pollIntervalMs" is none of them/,
    );
  });

  it('hashes keys to partitions stably (FNV-1a)', () => {
    expect(partitionOf('tenant-7', 16)).toBe(partitionOf('tenant-7', 16));
    expect(new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`k${i}`, 8))).size).toBe(8);
    expect(partitionOf('', 7)).toBe(0x811c9dc5 % 7);
  });
});
