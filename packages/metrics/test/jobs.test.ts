import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { ShardworkMetrics } from '@shardwork/metrics';
import { type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { service, value, waitFor } from './support.js';

const queues: JobQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 }).catch(() => undefined)));
});

function queue(url: string, options?: Parameters<typeof createJobQueue>[1]): JobQueue {
  const q = createJobQueue(url, options);
  queues.push(q);
  return q;
}

describe('job metrics (memory://)', () => {
  it('counts outcomes, durations and waits of a completing and a failing-to-dead job', async () => {
    const q = queue('memory://');
    const m = new ShardworkMetrics();
    m.instrumentJobs(q);
    q.register(
      'ok',
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 30));
      },
      { queue: 'mail' },
    );
    q.register(
      'bad',
      async () => {
        throw new Error('nope');
      },
      { maxFails: 2, backoff: () => 10 },
    );
    await q.start();
    await q.perform({ handler: 'ok', args: {} });
    await q.perform({ handler: 'bad', args: {} });
    const r = m.registry;
    await waitFor(async () => (await value(r, 'shardwork_jobs_total', { handler: 'bad', outcome: 'dead' })) === 1);
    await waitFor(async () => (await value(r, 'shardwork_jobs_total', { handler: 'ok', outcome: 'completed' })) === 1);

    expect(await value(r, 'shardwork_jobs_enqueued_total', { queue: 'mail', handler: 'ok' })).toBe(1);
    expect(await value(r, 'shardwork_jobs_enqueued_total', { queue: 'default', handler: 'bad' })).toBe(1);
    expect(await value(r, 'shardwork_jobs_total', { queue: 'default', handler: 'bad', outcome: 'failed' })).toBe(2);
    expect(await value(r, 'shardwork_jobs_total', { handler: 'ok', outcome: 'failed' })).toBe(0);
    const okDuration = { queue: 'mail', handler: 'ok', outcome: 'completed' };
    expect(await value(r, 'shardwork_job_duration_seconds', okDuration, '_count')).toBe(1);
    // The handler slept 30 ms: the recorded duration is in seconds, not ms.
    const seconds = await value(r, 'shardwork_job_duration_seconds', okDuration, '_sum');
    expect(seconds).toBeGreaterThanOrEqual(0.025);
    expect(seconds).toBeLessThan(10);
    expect(await value(r, 'shardwork_job_duration_seconds', { handler: 'bad', outcome: 'failed' }, '_count')).toBe(2);
    // One wait per attempt: 1 of ok, 2 of bad.
    expect(await value(r, 'shardwork_job_wait_seconds', { handler: 'ok' }, '_count')).toBe(1);
    expect(await value(r, 'shardwork_job_wait_seconds', { handler: 'bad' }, '_count')).toBe(2);
    expect(await value(r, 'shardwork_jobs_running')).toBe(0);
    // The dead job shows in the depth gauge.
    expect(await value(r, 'shardwork_queue_jobs', { queue: 'default', state: 'dead' })).toBe(1);
  });

  it('reads the queue depth per state from stats(), at most every depthIntervalMs', async () => {
    const q = queue('memory://');
    const m = new ShardworkMetrics();
    m.instrumentJobs(q, { depthIntervalMs: 60_000 });
    // Registered but never started: it only enqueues, so the jobs stay ready.
    q.register('later', async () => undefined);
    await q.perform({ handler: 'later', args: { n: 1 } });
    await q.perform({ handler: 'later', args: { n: 2 } });
    await q.performIn({ handler: 'later', args: { n: 3 } }, 3_600_000);
    const r = m.registry;
    expect(await value(r, 'shardwork_queue_jobs', { queue: 'default', state: 'ready' })).toBe(2);
    expect(await value(r, 'shardwork_queue_jobs', { queue: 'default', state: 'scheduled' })).toBe(1);
    expect(await value(r, 'shardwork_queue_jobs', { queue: 'default', state: 'running' })).toBe(0);
    // Cached: a new job is not seen before the interval passed.
    await q.perform({ handler: 'later', args: { n: 4 } });
    expect(await value(r, 'shardwork_queue_jobs', { queue: 'default', state: 'ready' })).toBe(2);
    const text = await m.metrics();
    expect(text).toContain('# TYPE shardwork_queue_jobs gauge');
    expect(text).toContain('shardwork_queue_jobs{queue="default",state="ready"} 2');
  });

  it('keeps the last depth and counts a backend error when stats() fails', async () => {
    const q = queue('memory://');
    const m = new ShardworkMetrics();
    m.instrumentJobs(q, { depthIntervalMs: 0, name: 'mailer' });
    q.register('x', async () => undefined);
    await q.perform({ handler: 'x', args: {} });
    const r = m.registry;
    expect(await value(r, 'shardwork_queue_jobs', { state: 'ready' })).toBe(1);
    const failing = Object.assign(new Error('down'), { code: 'QUEUE_UNAVAILABLE' });
    const original = q.stats.bind(q);
    q.stats = () => Promise.reject(failing);
    const text = await m.metrics();
    expect(text).toContain('shardwork_queue_jobs{queue="default",state="ready"} 1');
    expect(await value(r, 'shardwork_backend_errors_total', { service: 'mailer', code: 'QUEUE_UNAVAILABLE' })).toBe(1);
    // A stats() that never answers holds a scrape at most depthTimeoutMs (default 1 s).
    q.stats = () => new Promise(() => undefined);
    const began = Date.now();
    expect(await value(r, 'shardwork_queue_jobs', { state: 'ready' })).toBe(1);
    expect(Date.now() - began).toBeLessThan(10_000);
    q.stats = original;
  });

  it('asks an adapter without the admin API (amqp) once, not on every scrape', async () => {
    const q = queue('memory://');
    const m = new ShardworkMetrics();
    m.instrumentJobs(q, { depthIntervalMs: 0 });
    q.register('x', async () => undefined);
    await q.perform({ handler: 'x', args: {} });
    const r = m.registry;
    expect(await value(r, 'shardwork_queue_jobs', { state: 'ready' })).toBe(1);
    let calls = 0;
    q.stats = () => {
      calls++;
      return Promise.reject(Object.assign(new Error('no admin API'), { code: 'UNSUPPORTED_FEATURE' }));
    };
    await m.metrics();
    await m.metrics();
    await m.metrics();
    expect(calls).toBe(1);
    expect(await value(r, 'shardwork_backend_errors_total', { code: 'UNSUPPORTED_FEATURE' })).toBe(1);
    expect(await value(r, 'shardwork_queue_jobs', { state: 'ready' })).toBe(1);
  });

  it('refuses bad instrumentJobs options', () => {
    const m = new ShardworkMetrics();
    const q = queue('memory://');
    expect(() => m.instrumentJobs(q, { depthIntervalMs: -1 })).toThrow(/Invalid option "depthIntervalMs"/);
    expect(() => m.instrumentJobs(q, { name: 'has space' })).toThrow(/Invalid option "name"/);
    expect(() => m.instrumentJobs(null as never)).toThrow(/Invalid option "queue"/);
  });
});

describe('job metrics (redis://)', () => {
  let redis: RedisTestServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('reads the queue depth of a Redis queue and counts completions', async () => {
    const prefix = service('rq');
    const url = `${redis.url}?prefix=${prefix}&leaseTtlMs=1000`;
    const producer = queue(url);
    const m = new ShardworkMetrics();
    m.instrumentJobs(producer, { depthIntervalMs: 0 });
    await producer.perform({ handler: 'work', args: { n: 1 }, queue: 'q1' });
    await producer.perform({ handler: 'work', args: { n: 2 }, queue: 'q1' });
    expect(await value(m.registry, 'shardwork_queue_jobs', { queue: 'q1', state: 'ready' })).toBe(2);
    expect(await value(m.registry, 'shardwork_jobs_enqueued_total', { queue: 'q1', handler: 'work' })).toBe(2);

    const consumer = queue(url);
    const mc = new ShardworkMetrics();
    mc.instrumentJobs(consumer, { depthIntervalMs: 0 });
    consumer.register('work', async () => undefined, { queue: 'q1' });
    await consumer.start();
    await waitFor(async () => (await value(mc.registry, 'shardwork_jobs_total', { outcome: 'completed' })) === 2);
    await waitFor(async () => (await value(m.registry, 'shardwork_queue_jobs', { queue: 'q1', state: 'ready' })) === 0);
  });
});
