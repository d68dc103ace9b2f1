/**
 * The job adapter in secure deployments, against real redis-servers: TLS
 * with client certificates (URL and options), a wrong CA failing `start()`
 * at once, and a per-queue ACL user with exactly the permissions the README
 * lists, refused on another queue.
 */

import { BackendRefusedError, InvalidOptionsError } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { makeCerts, type RedisTestServer, startRedisServer, type TestCerts, until } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const open: JobQueue[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.stop({ timeoutMs: 0 }).catch(() => undefined)));
});

function queue(url: string, adapter: Record<string, unknown> = {}): JobQueue {
  const q = createJobQueue(url, { adapter: { revokeTimeoutMs: 1000, enqueueTimeoutMs: 2000, ...adapter } });
  q.on('error', () => undefined);
  open.push(q);
  return q;
}

/** Register `work` on `queueName`, start, perform `count` jobs and wait until all ran. */
async function runsJobs(q: JobQueue, queueName: string, count = 5): Promise<void> {
  let done = 0;
  // Counted when the store recorded the completion (every command the scripts use is allowed).
  q.on('job:completed', () => {
    done += 1;
  });
  q.register('work', (args) => args.i, { queue: queueName });
  await q.start();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await q.perform({ handler: 'work', args: { i } })).id);
  await until(() => done === count, 20_000, `${count} jobs completed`);
  // Following a job uses the same user: lookup, result, cancel.
  expect(await q.waitFor(ids[1] as string, { timeoutMs: 5000 })).toBe(1);
  expect((await q.getJob(ids[0] as string))?.state).toBe('completed');
  expect(await q.cancel(ids[0] as string)).toMatchObject({ cancelled: false, state: 'completed' });
}

describe('TLS', () => {
  let certs: TestCerts;
  let server: RedisTestServer;
  beforeAll(async () => {
    certs = await makeCerts();
    server = await startRedisServer({ tls: { ...certs.server, ca: certs.ca } });
  });
  afterAll(async () => {
    await server?.stop();
    await certs?.remove();
  });

  it('runs jobs over TLS with a client certificate from the URL, or from options', async () => {
    const app = await certs.client('jobs');
    const files = `ca=${certs.ca}&cert=${app.cert}&key=${app.key}`;
    await runsJobs(queue(`rediss://127.0.0.1:${server.port}?prefix=tls1:&partitions=2&leaseTtlMs=1000&${files}`), 'q');
    await runsJobs(
      queue(`rediss://127.0.0.1:${server.port}?prefix=tls2:&partitions=2&leaseTtlMs=1000`, {
        tls: { caFile: certs.ca, certFile: app.cert, keyFile: app.key },
      }),
      'q',
    );
  });

  it('fails start() at once with the cause when the CA is wrong', async () => {
    const q = queue(
      `rediss://127.0.0.1:${server.port}?prefix=tls3:&ca=${certs.otherCa}&cert=${certs.server.cert}&key=${certs.server.key}`,
      { startTimeoutMs: 20_000 },
    );
    q.register('work', () => undefined);
    const began = Date.now();
    const error = await q.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect(String(error)).toContain("the server's certificate is not signed by a trusted CA");
    expect(Date.now() - began).toBeLessThan(10_000);
  });

  it('refuses a missing certificate file by name', async () => {
    const q = queue(`rediss://127.0.0.1:${server.port}?ca=/nonexistent/ca.pem`);
    q.register('work', () => undefined);
    const error = await q.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(String(error)).toMatch(/url\.ca.*no such file/);
  });
});

describe('per-queue ACL user', () => {
  let server: RedisTestServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** The least-privilege user of queue `name` under prefix `swj:`, exactly as the README lists it. */
  const queueAcl = (name: string): string[] => [
    'ACL',
    'SETUSER',
    `q-${name}`,
    'reset',
    'on',
    '>pa55',
    `~swj:{${name}}:*`,
    `~swj:coord:{${name}}:*`,
    '~swj:queues',
    `&swj:{${name}}:wake`,
    '&swj:waits:*',
    `&swj:coord:{${name}}:events`,
    '-@all',
    ...'evalsha eval subscribe unsubscribe ping info multi exec time del exists get set incr pexpire hdel hexists hget hgetall hincrby hmget hset hsetnx llen lpop lpush lrange lrem rpush sadd srem sismember smembers smismember type zadd zcard zpopmin zrange zrangebyscore zrem zscore publish'
      .split(' ')
      .map((c) => `+${c}`),
  ];

  it("runs its own queue and is refused on another queue's keys, at once and by name", async () => {
    expect(await server.command(...queueAcl('orders'))).toBe('+OK\r\n');
    const url = `redis://q-orders:pa55@127.0.0.1:${server.port}?partitions=2&leaseTtlMs=1000`;
    await runsJobs(queue(url), 'orders');

    const other = queue(url, { startTimeoutMs: 20_000 });
    other.register('work', () => undefined, { queue: 'payments' });
    const began = Date.now();
    const error = await other.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as BackendRefusedError).reason).toBe('permission');
    expect(String(error)).toContain('NOPERM');
    expect(Date.now() - began).toBeLessThan(10_000);
    // A producer is refused as clearly.
    const producer = queue(url);
    producer.register('work', () => undefined, { queue: 'payments' });
    const refused = await producer.perform({ handler: 'work' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BackendRefusedError);
  });
});
