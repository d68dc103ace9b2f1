/**
 * What only the RabbitMQ adapter does, against a private broker: URL options,
 * an unreachable broker, garbage messages, queues declared with other
 * arguments, the delivery limit, the dead queue's contents, a consumer
 * cancelled by the broker, long delays through several tiers, cron leadership
 * moving between consumers.
 */

import { BackendRefusedError, InvalidOptionsError } from '@shardwork/core';
import {
  createJobQueue,
  type JobQueue,
  type JobQueueEventMap,
  QueueUnavailableError,
  UnsupportedFeatureError,
} from '@shardwork/jobs';
import { type RabbitTestServer, startRabbitServer, until } from '@shardwork/testkit';
import { Connection } from 'rabbitmq-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpJobAdapter, AmqpRefusedError, compileAmqpJobOptions, tierFor } from '../src/index.js';
import { delayRoute } from '../src/topology.js';

let broker: RabbitTestServer;
let admin: Connection;
let seq = 0;
const open: JobQueue[] = [];

beforeAll(async () => {
  broker = await startRabbitServer();
  admin = new Connection({ url: broker.url, retryLow: 100, retryHigh: 500 });
  admin.on('error', () => undefined);
  await admin.onConnect(10_000);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.stop({ timeoutMs: 0 }).catch(() => undefined)));
});
afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

const fresh = (): string => `t${process.pid}a${++seq}`;

function queue(prefix: string, options: Record<string, unknown> = {}): JobQueue {
  const q = createJobQueue(new AmqpJobAdapter({ url: `${broker.url}?prefix=${prefix}`, ...options }));
  q.on('error', () => undefined);
  open.push(q);
  return q;
}

/** Take every message off a queue (for dead queues, which no consumer reads). */
async function drain(queue: string): Promise<unknown[]> {
  const channel = await admin.acquire();
  const bodies: unknown[] = [];
  try {
    for (;;) {
      const message = await channel.basicGet({ queue, noAck: true });
      if (message === undefined) return bodies;
      bodies.push(message.body);
    }
  } finally {
    await channel.close();
  }
}

async function depth(queue: string): Promise<number> {
  const channel = await admin.acquire();
  try {
    return (await channel.queueDeclare({ queue, passive: true })).messageCount;
  } finally {
    if (channel.active) await channel.close();
  }
}

describe('amqp job adapter options', () => {
  it('reads user, password, vhost, TLS and its own parameters from the URL, percent-decoded', () => {
    const o = compileAmqpJobOptions({
      url: 'amqps://app%40corp:p%3As%2Fw%40rd@broker.internal:5673/jobs%2Fprod?prefix=acme&heartbeat=4&deliveryLimit=7',
    });
    expect(o).toMatchObject({
      hostname: 'broker.internal',
      port: 5673,
      username: 'app@corp',
      password: 'p:s/w@rd',
      vhost: 'jobs/prod',
      tls: true,
      prefix: 'acme',
      heartbeat: 4,
      deliveryLimit: 7,
      partitions: 0,
    });
    expect(o.target).toBe('amqps://broker.internal:5673/jobs%2Fprod');
    expect(compileAmqpJobOptions({ url: 'amqp://h' })).toMatchObject({ port: 5672, vhost: '/', username: 'guest' });
    expect(compileAmqpJobOptions({ url: 'amqp://h/%2F' }).vhost).toBe('/');
  });

  it.each<[string, string, Record<string, unknown>]>([
    ['an unknown query parameter', 'url', { url: 'amqp://h?prefetch=5' }],
    ['another scheme', 'url', { url: 'redis://h' }],
    ['no URL at all', 'url', { url: 'not a url' }],
    ['a prefix with a slash', 'prefix', { prefix: 'a/b' }],
    ['a prefix in amq.', 'prefix', { prefix: 'amq.x' }],
    ['partitions without a discovery URL', 'discovery', { partitions: 4 }],
    ['a delivery limit of 0', 'deliveryLimit', { deliveryLimit: 0 }],
    ['a heartbeat that is not a number', 'heartbeat', { url: 'amqp://h?heartbeat=soon' }],
    ['an empty queues list', 'queues', { queues: [] }],
  ])('refuses %s, naming %s', (_what, option, options) => {
    expect(() => compileAmqpJobOptions(options)).toThrow(InvalidOptionsError);
    expect(() => compileAmqpJobOptions(options)).toThrow(expect.objectContaining({ option }));
  });

  it('never shows the password in an error', () => {
    expect(() => compileAmqpJobOptions({ url: 'amqp://u:hunter2@h?x=1' })).toThrow(/u:\*\*\*@h/);
    expect(() => compileAmqpJobOptions({ url: 'amqp://u:hunter2@h?x=1' })).not.toThrow(/hunter2/);
  });

  it('picks the largest power-of-two tier not above the time left (1 ms … 2^35 ms)', () => {
    expect([0, 1, 2, 3, 600, 1024, 1025, 40 * 86_400_000, 1e12].map(tierFor)).toEqual([
      1,
      1,
      2,
      2,
      512,
      1024,
      1024,
      2 ** 31,
      2 ** 35,
    ]);
  });
});

describe('the delay chain', () => {
  it('spells a delay in binary: the tiers with digit 1 add up to it, largest first, entered at the largest', () => {
    const route = delayRoute(3300);
    expect(route.top).toBe(2048);
    expect(route.tiers).toEqual([2048, 1024, 128, 64, 32, 4]);
    expect(Object.keys(route.headers)).toHaveLength(12);
    expect(route.headers).toMatchObject({
      'sw-wait-2048': '1',
      'sw-wait-512': '0',
      'sw-wait-4': '1',
      'sw-wait-1': '0',
    });
    for (const ms of [1, 2, 3, 7, 1000, 65_535, 86_400_000, 2 ** 36 - 1]) {
      const { top, tiers } = delayRoute(ms);
      expect(tiers.reduce((a, b) => a + b, 0)).toBe(ms);
      expect(top).toBe(tierFor(ms));
      expect(tiers[0]).toBe(top);
    }
    // Beyond the chain (about 795 days): every tier; the job comes back early and goes round again.
    expect(delayRoute(1e12).tiers).toHaveLength(36);
  });
});

describe('amqp job adapter against a broker', () => {
  it('rejects perform clearly when the broker is unreachable, within enqueueTimeoutMs', async () => {
    const q = createJobQueue(new AmqpJobAdapter({ url: 'amqp://127.0.0.1:1', enqueueTimeoutMs: 300 }));
    q.on('error', () => undefined);
    open.push(q);
    const began = Date.now();
    await expect(q.perform({ handler: 'h' })).rejects.toThrow(QueueUnavailableError);
    await expect(q.perform({ handler: 'h' })).rejects.toThrow(/amqp:\/\/127\.0\.0\.1:1/);
    expect(Date.now() - began).toBeLessThan(5000);
  });

  it('fails start() clearly when the broker is unreachable, within startTimeoutMs', async () => {
    const q = createJobQueue(new AmqpJobAdapter({ url: 'amqp://127.0.0.1:1', startTimeoutMs: 500 }));
    q.on('error', () => undefined);
    q.register('h', () => undefined);
    const began = Date.now();
    await expect(q.start()).rejects.toThrow(QueueUnavailableError);
    expect(Date.now() - began).toBeLessThan(5000);
    expect(q.state).toBe('stopped');
  });

  it('refuses a wrong password at once with BackendRefusedError, naming what to check, for perform and start', async () => {
    const url = broker.url.replace(/\/\/([^:]+):([^@]+)@/, '//$1:not-the-password@');
    const q = createJobQueue(
      new AmqpJobAdapter({ url: `${url}?prefix=${fresh()}`, enqueueTimeoutMs: 10_000, startTimeoutMs: 20_000 }),
    );
    open.push(q);
    const events: string[] = [];
    q.on('error', (e) => events.push(String(e)));
    q.register('x', () => undefined);
    let began = Date.now();
    const performed = await q.perform({ handler: 'x' }).catch((e: unknown) => e);
    expect(Date.now() - began).toBeLessThan(5000);
    expect(performed).toBeInstanceOf(BackendRefusedError);
    expect((performed as BackendRefusedError).reason).toBe('auth');
    expect((performed as Error).message).toMatch(
      /ACCESS_REFUSED - Login was refused.*Check the user name and password/,
    );
    expect((performed as Error).message).not.toMatch(/undefined:|not-the-password/);
    began = Date.now();
    await expect(q.start()).rejects.toThrow(BackendRefusedError);
    expect(Date.now() - began).toBeLessThan(5000);
    expect(events[0]).toMatch(/^BackendRefusedError: RabbitMQ at .* refused/);
  });

  it('names every feature it refuses, over every registration, in one error', async () => {
    const q = createJobQueue(`${broker.url}?prefix=${fresh()}`);
    open.push(q);
    q.register('a', () => undefined, { unique: true, priority: 3 });
    q.register('b', () => undefined, { ordered: true });
    const error = await q.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedFeatureError);
    expect((error as UnsupportedFeatureError).refusals.map((r) => `${r.handler}:${r.feature}`)).toEqual([
      'a:unique',
      'a:priority',
      'b:ordered',
    ]);
  });

  it('moves a garbage message to the dead queue with the reason, reports it, and keeps consuming', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    const invalid: JobQueueEventMap['record:invalid'][] = [];
    q.on('record:invalid', (e) => invalid.push(e));
    const ran: string[] = [];
    q.register('work', (_args, ctx) => void ran.push(ctx.id));
    await q.start();
    const publisher = admin.createPublisher({ confirm: true });
    await publisher.send(`${prefix}.q.default.work`, Buffer.from('{"not": "a job"'));
    await publisher.send({ routingKey: `${prefix}.q.default.work`, contentType: 'application/json' }, { v: 1, id: 7 });
    await publisher.close();
    const { id } = await q.perform({ handler: 'work' });
    await until(() => ran.includes(id) && invalid.length === 2, 3000, 'the good job ran and both were reported');
    const dead = (await drain(`${prefix}.dead.default`)) as { invalid: string; raw: string }[];
    expect(dead.map((d) => d.invalid).sort()).toEqual(['id is not a string', 'the body is not JSON']);
    expect(dead.find((d) => d.invalid === 'the body is not JSON')?.raw).toBe('{"not": "a job"');
    expect(invalid[0]?.error.message).toMatch(/Ignoring unparsable record/);
  });

  it('keeps a dead job in the dead queue with its last error, attempts and reason', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    const dead: string[] = [];
    q.on('job:dead', ({ job }) => dead.push(job.id));
    q.register(
      'doomed',
      (args) => {
        throw new Error(`no ${String(args.x)}`);
      },
      { maxFails: 2, backoff: () => 20 },
    );
    await q.start();
    const { id } = await q.perform({ handler: 'doomed', args: { x: 'way' }, key: 'k' });
    await until(() => dead.includes(id), 3000, 'it died');
    const [body] = (await drain(`${prefix}.dead.default`)) as Record<string, unknown>[];
    expect(body).toMatchObject({
      id,
      handler: 'doomed',
      key: 'k',
      fails: 2,
      deadReason: 'max-fails',
      args: { x: 'way' },
      lastError: { name: 'Error', message: 'no way' },
    });
  });

  it('refuses a queue that exists with other arguments, naming it, instead of consuming from it', async () => {
    const prefix = fresh();
    await admin.queueDeclare({ queue: `${prefix}.q.default.h`, durable: true });
    const q = queue(prefix);
    q.register('h', () => undefined);
    await expect(q.start()).rejects.toThrow(AmqpRefusedError);
    const producer = queue(prefix);
    await expect(producer.perform({ handler: 'h' })).rejects.toThrow(
      new RegExp(`declare ${prefix}\\.q\\.default\\.h.*PRECONDITION_FAILED`),
    );
  });

  it('moves a message the broker delivered more than deliveryLimit times to the dead queue', async () => {
    const prefix = fresh();
    const producer = queue(prefix, { deliveryLimit: 2 });
    const { id } = await producer.perform({ handler: 'stuck' });
    // Each consumer takes it, never finishes, and is stopped at once: the job goes back (one delivery each).
    for (let i = 0; i < 6 && (await depth(`${prefix}.dead.default`)) === 0; i++) {
      const q = queue(prefix, { deliveryLimit: 2 });
      let started = false;
      q.register('stuck', () => {
        started = true;
        return new Promise(() => undefined);
      });
      await q.start();
      await until(() => started || i > 2, 2000, 'it started').catch(() => undefined);
      await q.stop({ timeoutMs: 0 });
    }
    const [body] = (await drain(`${prefix}.dead.default`)) as Record<string, unknown>[];
    expect(body).toMatchObject({ id, handler: 'stuck' });
  });

  it('recovers a consumer the broker cancelled (its queue was deleted) and goes on consuming', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    const errors: unknown[] = [];
    q.on('error', ({ error }) => errors.push(error));
    const ran: string[] = [];
    q.register('work', (_args, ctx) => void ran.push(ctx.id));
    await q.start();
    const first = await q.perform({ handler: 'work' });
    await until(() => ran.includes(first.id), 2000, 'the first job ran');
    await admin.queueDelete({ queue: `${prefix}.q.default.work` });
    await until(() => errors.some((e) => /cancelled the consumer/.test(String(e))), 3000, 'the cancel was reported');
    // The consumer declares its queue again; a job performed now reaches it.
    await until(async () => (await depth(`${prefix}.q.default.work`).catch(() => -1)) >= 0, 5000, 're-declared');
    const producer = queue(prefix);
    const second = await producer.perform({ handler: 'work' });
    await until(() => ran.includes(second.id), 5000, 'the second job ran');
  });

  it('runs a job due in 3.3 s after a tour of several tiers, never early', async () => {
    const prefix = fresh();
    const q = queue(prefix);
    const started: number[] = [];
    q.register('later', () => void started.push(Date.now()));
    await q.start();
    const t0 = Date.now();
    await q.performIn({ handler: 'later' }, 3300);
    await until(() => started.length === 1, 5000, 'it ran');
    expect((started[0] as number) - t0).toBeGreaterThanOrEqual(3300);
    expect((started[0] as number) - t0).toBeLessThan(3300 + 1000);
    // 3300 ms = 2048 + 1024 + 128 + 64 + 32 + 4: the tiers it passed through exist.
    expect(await depth(`${prefix}.wait.2048`)).toBe(0);
    expect(await depth(`${prefix}.wait.128`)).toBe(0);
  });

  it('moves cron leadership to another consumer when the leader stops: each tick once, none missed', async () => {
    const prefix = fresh();
    const ticks: { tick: number; by: string }[] = [];
    const consumer = (name: string): JobQueue => {
      const q = queue(prefix);
      q.register('beat', (_args, ctx) => void ticks.push({ tick: ctx.scheduledAt.getTime(), by: name }));
      q.periodic('beat', '* * * * * *', { handler: 'beat' });
      return q;
    };
    const a = consumer('a');
    const b = consumer('b');
    await a.start();
    await b.start();
    await until(() => ticks.length >= 2, 4000, 'two ticks');
    await a.stop({ timeoutMs: 1000 });
    const stoppedAt = Date.now();
    await until(() => ticks.filter((t) => t.tick > stoppedAt).length >= 2, 4000, 'two more ticks');
    const all = ticks.map((t) => t.tick);
    expect(new Set(all).size).toBe(all.length);
    const sorted = [...all].sort((x, y) => x - y);
    for (let i = 1; i < sorted.length; i++) expect((sorted[i] as number) - (sorted[i - 1] as number)).toBe(1000);
  });
});

describe('amqp job adapter with a user of its own', () => {
  it('runs on a vhost and user from a percent-encoded URL with only the permissions its README lists', async () => {
    const prefix = fresh();
    await broker.ctl('add_vhost', 'jobs/x');
    await broker.ctl('add_user', 'app@corp', 'p:s/w@rd');
    // The least privilege of the package README: configure, write and read under the prefix, and the default exchange.
    await broker.ctl(
      'set_permissions',
      '-p',
      'jobs/x',
      'app@corp',
      `^${prefix}\\..*`,
      `^(${prefix}\\..*|amq\\.default)$`,
      `^${prefix}\\..*`,
    );
    const url = `amqp://app%40corp:p%3As%2Fw%40rd@127.0.0.1:${broker.port}/jobs%2Fx?prefix=${prefix}`;
    const q = createJobQueue(url);
    q.on('error', () => undefined);
    open.push(q);
    const ran: string[] = [];
    const ticks: number[] = [];
    const dead: string[] = [];
    q.on('job:dead', ({ job }) => dead.push(job.id));
    q.register('work', (_args, ctx) => void ran.push(ctx.id));
    q.register(
      'fail',
      () => {
        throw new Error('no');
      },
      { maxFails: 2, backoff: () => 30 },
    );
    q.register('beat', (_args, ctx) => void ticks.push(ctx.scheduledAt.getTime()));
    q.periodic('beat', '* * * * * *', { handler: 'beat' });
    await q.start();
    const now = await q.perform({ handler: 'work' });
    const later = await q.performIn({ handler: 'work' }, 300);
    const failing = await q.perform({ handler: 'fail' });
    await until(
      () => ran.includes(now.id) && ran.includes(later.id) && dead.includes(failing.id) && ticks.length > 0,
      4000,
      'jobs, a delayed job, a dead job and a tick',
    );
    // Outside its prefix, the same user is refused.
    const other = createJobQueue(`amqp://app%40corp:p%3As%2Fw%40rd@127.0.0.1:${broker.port}/jobs%2Fx?prefix=other`);
    other.on('error', () => undefined);
    open.push(other);
    await expect(other.perform({ handler: 'work' })).rejects.toThrow(/ACCESS_REFUSED/);
  });
});

describe('amqp job adapter counts', () => {
  it('counts ready messages and consumers per broker queue: work, dead and delay tiers', async () => {
    const prefix = fresh();
    const adapter = new AmqpJobAdapter({ url: `${broker.url}?prefix=${prefix}` });
    const q = createJobQueue(adapter);
    q.on('error', () => undefined);
    open.push(q);
    await q.performMany([{ handler: 'mail' }, { handler: 'mail' }, { handler: 'sms', queue: 'urgent' }]);
    await q.performIn({ handler: 'mail' }, 60_000);
    const counts = await adapter.brokerCounts();
    const of = (name: string) => counts.find((c) => c.name === name);
    expect(of(`${prefix}.q.default.mail`)).toEqual({
      name: `${prefix}.q.default.mail`,
      kind: 'work',
      messages: 2,
      consumers: 0,
    });
    expect(of(`${prefix}.q.urgent.sms`)).toMatchObject({ kind: 'work', messages: 1 });
    expect(of(`${prefix}.dead.default`)).toMatchObject({ kind: 'dead', messages: 0 });
    // 60 s: the 32,768 ms tier first.
    expect(of(`${prefix}.wait.32768`)).toMatchObject({ kind: 'delay', messages: 1 });
  });
});
