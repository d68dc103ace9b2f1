/**
 * What the RabbitMQ adapter keeps under the faults one process can make
 * (issue 20): an attempt ended by lost ownership counts nothing and runs again
 * in its key's order; a delayed job reaches its work queue only when due, so
 * no consumer moves it on the way and a hand-over cannot run it twice; a cron
 * leader whose event loop was blocked across ticks enqueues every one of them
 * once; a leader that lost its token publishes no tick after its successor.
 * The multi-process versions are in test/jobs-amqp-faults.test.ts.
 */

import { NotOwnerError } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RabbitTestServer, sleep, startRabbitServer, TcpProxy, until } from '@shardwork/testkit';
import { Connection } from 'rabbitmq-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpJobAdapter } from '../src/index.js';

let broker: RabbitTestServer;
let admin: Connection;
let seq = 0;
const open: JobQueue[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  broker = await startRabbitServer();
  admin = new Connection({ url: broker.url, retryLow: 100, retryHigh: 500 });
  admin.on('error', () => undefined);
  await admin.onConnect(10_000);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.stop({ timeoutMs: 0 }).catch(() => undefined)));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

const fresh = (): string => `f${process.pid}a${++seq}`;

function queue(prefix: string, options: Record<string, unknown> = {}, url = broker.url): JobQueue {
  const q = createJobQueue(new AmqpJobAdapter({ url: `${url}?prefix=${prefix}`, ...options }), { concurrency: 8 });
  q.on('error', () => undefined);
  open.push(q);
  return q;
}

/** A partitioned queue coordinated in this process. */
function partitioned(prefix: string, partitions: number): JobQueue {
  return queue(prefix, { partitions, discovery: `memory://${prefix}`, leaseTtlMs: 1000, revokeTimeoutMs: 2000 });
}

/** Block this process's event loop (timers, sockets) for `ms`, as a GC pause or SIGSTOP would. */
function freeze(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

describe('lost ownership is not a failure', () => {
  it('partitioned: a NotOwnerError while the partition stays here runs the job again here, before its key’s next job, counting nothing', async () => {
    const prefix = fresh();
    const q = partitioned(prefix, 1);
    const ran: string[] = [];
    const failures: string[] = [];
    q.on('job:failed', ({ job }) => failures.push(`failed ${job.id}`));
    q.on('job:dead', ({ job }) => failures.push(`dead ${job.id}`));
    let refused = false;
    q.register(
      'pay',
      (args, ctx) => {
        ran.push(`${String(args.n)}@${ctx.attempt}`);
        // The ledger saw a newer token (say): the handler fences itself, though the partition never moved.
        if (args.n === 1 && !refused) {
          refused = true;
          throw new NotOwnerError(ctx.partition ?? -1, ctx.token ?? -1, 'the ledger has a newer token');
        }
      },
      { ordered: true },
    );
    await q.start();
    await q.performMany([
      { handler: 'pay', key: 'acct-7', args: { n: 1 } },
      { handler: 'pay', key: 'acct-7', args: { n: 2 } },
    ]);
    await until(() => ran.length === 3, 5000, 'job 1 ran again, then job 2');
    expect(ran).toEqual(['1@1', '1@1', '2@1']);
    await sleep(300);
    expect(ran).toHaveLength(3);
    expect(failures).toEqual([]);
  });

  it('plain: a NotOwnerError puts the job back and it runs again, counting nothing', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    const ran: number[] = [];
    const failures: string[] = [];
    q.on('job:failed', ({ job }) => failures.push(`failed ${job.id}`));
    q.on('job:dead', ({ job }) => failures.push(`dead ${job.id}`));
    q.register('mail', (_args, ctx) => {
      ran.push(ctx.attempt);
      if (ran.length === 1) throw new NotOwnerError(-1, -1, 'fenced by the mail service');
    });
    await q.start();
    await q.perform({ handler: 'mail' });
    await until(() => ran.length === 2, 5000, 'it ran again');
    expect(ran).toEqual([1, 1]);
    expect(failures).toEqual([]);
  });
});

describe('a paused consumer', () => {
  it('does not start, when it resumes, the jobs the broker gave to another consumer while it was paused', async () => {
    const prefix = fresh();
    const starts: { id: string; by: 'paused' | 'other'; at: number }[] = [];
    const consumer = (by: 'paused' | 'other', heartbeat: number): JobQueue => {
      const q = queue(prefix, { heartbeat });
      q.register('work', async (_args, ctx) => {
        starts.push({ id: ctx.id, by, at: Date.now() });
        await sleep(20);
      });
      return q;
    };
    // The broker drops the first one after about two missed heartbeats of 1 s; the other keeps its connection.
    const paused = consumer('paused', 1);
    await paused.start();
    const producer = queue(prefix);
    const zombies: string[] = [];
    for (let round = 0; round < 3; round++) {
      const other = consumer('other', 10);
      await other.start();
      const batch = await producer.performMany(Array.from({ length: 40 }, () => ({ handler: 'work' })));
      // Both hold deliveries as the process freezes; the first one's go to the other meanwhile.
      freeze(3500);
      const resumed = Date.now();
      await until(() => batch.every((r) => starts.some((s) => s.id === r.id)), 10_000, 'every job ran');
      await sleep(500);
      // A job the paused one starts after the pause, that the other one ran too: the paused one ran it as a zombie.
      // (One that was running when it froze may run again on the other: that is the promised at-least-once.)
      for (const { id } of starts.filter((s) => s.by === 'paused' && s.at >= resumed)) {
        if (starts.some((s) => s.id === id && s.by === 'other')) zombies.push(id);
      }
      await other.stop({ timeoutMs: 1000 });
      await sleep(2500);
    }
    expect(zombies).toEqual([]);
  });
});

describe('delayed jobs', () => {
  it('reach their work queue only when due: no consumer has to move them on the way', async () => {
    const prefix = fresh();
    const producer = queue(prefix);
    const target = `${prefix}.q.default.later`;
    const t0 = Date.now();
    await producer.performIn({ handler: 'later' }, 1500);
    await producer.performAt({ handler: 'later' }, new Date(t0 + 2700));
    const arrived: number[] = [];
    const channel = await admin.acquire();
    try {
      await channel.basicConsume({ queue: target, noAck: true }, () => void arrived.push(Date.now()));
      await until(() => arrived.length === 2, 5000, 'both arrived');
    } finally {
      await channel.close();
    }
    expect(arrived[0]).toBeGreaterThanOrEqual(t0 + 1500);
    expect(arrived[1]).toBeGreaterThanOrEqual(t0 + 2700);
  });

  it('partitioned: replicas joining and leaving while delayed jobs come due run each of them once', async () => {
    const prefix = fresh();
    const starts = new Map<string, number>();
    const consumer = (): JobQueue => {
      const q = partitioned(prefix, 6);
      q.register('later', (_args, ctx) => void starts.set(ctx.id, (starts.get(ctx.id) ?? 0) + 1));
      return q;
    };
    const a = consumer();
    const b = consumer();
    await a.start();
    await b.start();
    const producer = queue(prefix, { partitions: 6, discovery: `memory://${prefix}` });
    const ids: string[] = [];
    const producing = (async () => {
      for (let i = 0; i < 400; i++) {
        const { id } = await producer.performIn({ handler: 'later', key: `k${i % 17}` }, 50 + ((i * 37) % 1500));
        ids.push(id);
        if (i % 20 === 0) await sleep(50);
      }
    })();
    // Hand-overs with jobs coming due: one replica joins, another leaves (no fault anywhere).
    await sleep(800);
    const c = consumer();
    await c.start();
    await sleep(800);
    await a.stop({ timeoutMs: 2000 });
    await producing;
    await until(() => ids.every((id) => starts.has(id)), 15_000, 'every delayed job ran');
    await sleep(1000);
    const twice = [...starts].filter(([, n]) => n > 1);
    expect(twice, `ran twice: ${twice.map(([id]) => id).join(', ')}`).toEqual([]);
  });
});

describe('cron leader', () => {
  /** A consumer with an every-second periodic job, `catchUp: 'all'`; ticks it ran go to `ticks`. */
  function cronConsumer(
    prefix: string,
    ticks: number[],
    options: Record<string, unknown> = {},
    url = broker.url,
  ): JobQueue {
    const q = queue(prefix, options, url);
    q.register('beat', (_args, ctx) => void ticks.push(ctx.scheduledAt.getTime()));
    q.periodic('beat', '* * * * * *', { handler: 'beat' }, { catchUp: 'all', horizonMs: 60_000 });
    return q;
  }

  /** Every second from the oldest to the newest tick, once each. */
  function expectEveryTickOnce(ticks: number[]): void {
    const sorted = [...ticks].sort((x, y) => x - y);
    const first = sorted[0] as number;
    const last = sorted[sorted.length - 1] as number;
    const expected = Array.from({ length: (last - first) / 1000 + 1 }, (_, i) => first + i * 1000);
    expect(sorted).toEqual(expected);
  }

  it('enqueues every tick once when the leader’s event loop was blocked across two ticks', async () => {
    const prefix = fresh();
    const ticks: number[] = [];
    // A heartbeat of 10 s: the broker keeps the frozen leader, which must make up for the ticks itself.
    const q = cronConsumer(prefix, ticks, { heartbeat: 10 });
    await q.start();
    await until(() => ticks.length >= 2, 5000, 'two ticks');
    // From 0.7 s into a second to 0.3 s past the second after: two ticks fall while it is blocked.
    await sleep(1700 - (Date.now() % 1000));
    freeze(1600);
    const resumed = Date.now();
    await until(() => ticks.some((t) => t >= resumed + 1000), 5000, 'a tick after the freeze');
    await sleep(300);
    expectEveryTickOnce(ticks);
  });

  it('a leader cut off from the broker around a tick: its successor enqueues every tick once, and it none', async () => {
    const prefix = fresh();
    const ticks: number[] = [];
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: broker.port });
    proxies.push(proxy);
    // The leader reaches the broker through the proxy; the other one directly.
    const leader = cronConsumer(prefix, ticks, {}, `amqp://guest:guest@127.0.0.1:${proxy.port}`);
    await leader.start();
    const other = cronConsumer(prefix, ticks);
    await other.start();
    await until(() => ticks.length >= 2, 5000, 'two ticks');
    await sleep(1800 - (Date.now() % 1000));
    proxy.cut();
    await sleep(2500);
    proxy.heal();
    const healed = Date.now();
    await until(() => ticks.some((t) => t >= healed + 2000), 6000, 'ticks after the heal');
    await sleep(300);
    expectEveryTickOnce(ticks);
  });
});
