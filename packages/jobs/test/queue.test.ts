import { InvalidOptionsError, UnknownProtocolError } from '@shardwork/core';
import {
  createJobQueue,
  type FeatureRefusal,
  type JobAdapter,
  JobQueue,
  type JobQueueEventMap,
  SimpleQueue,
  UnsupportedFeatureError,
} from '@shardwork/jobs';
import { type AdapterRuntime, type CompiledRegistration, registerJobQueue } from '@shardwork/jobs/adapter';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

describe('choosing the adapter by URL', () => {
  afterEach(() => {
    delete process.env.SHARDWORK_JOBS;
  });

  it('refuses a malformed URL or an unknown scheme at construction', () => {
    expect(() => createJobQueue('localhost:6379')).toThrow(InvalidOptionsError);
    expect(() => createJobQueue('sqs://queue')).toThrow(UnknownProtocolError);
    expect(() => createJobQueue('sqs://queue')).toThrow(/job queue adapter.*memory:\/\//);
    process.env.SHARDWORK_JOBS = 'nonsense';
    expect(() => createJobQueue()).toThrow(/SHARDWORK_JOBS/);
  });

  it('uses SHARDWORK_JOBS, else memory://', async () => {
    const q = createJobQueue();
    await q.stats();
    expect(q.status().adapter).toBe('memory');
    await q.stop();
  });

  it('loads a registered protocol with the compiled queue options', async () => {
    let seen: unknown;
    registerJobQueue('custom', (url, options) => {
      seen = { url, concurrency: options.concurrency, adapter: options.adapter };
      return new SimpleQueue();
    });
    process.env.SHARDWORK_JOBS = 'custom://somewhere';
    const q = createJobQueue(undefined, { concurrency: 3, adapter: { region: 'x' } });
    q.register('h', () => undefined);
    await q.perform({ handler: 'h' });
    expect(seen).toEqual({ url: 'custom://somewhere', concurrency: 3, adapter: { region: 'x' } });
    await q.stop();
  });

  it('loads the package of a URL on first use (amqp:// → @shardwork/jobs-amqp)', async () => {
    // Nothing listens on port 1: the adapter loads, then says the broker is unreachable.
    const q = createJobQueue('amqp://127.0.0.1:1', { adapter: { enqueueTimeoutMs: 200 } });
    await expect(q.perform({ handler: 'h' })).rejects.toThrow(/Job queue amqp unavailable: amqp:\/\/127\.0\.0\.1:1/);
    expect(q.status().adapter).toBe('amqp');
    await q.stop();
  });

  it.each([
    [{ concurrency: 0 }, 'concurrency'],
    [{ maxArgsBytes: 1.5 }, 'maxArgsBytes'],
    [{ stopTimeoutMs: -1 }, 'stopTimeoutMs'],
    [{ adapter: 'x' }, 'adapter'],
  ])('refuses queue options %o naming %s', (options, option) => {
    expect(() => createJobQueue('memory://', options as never)).toThrow(expect.objectContaining({ option }));
  });

  it('names every feature an adapter refuses, over all registrations, in one error', async () => {
    class Limited extends SimpleQueue {
      checkRegistration(registration: CompiledRegistration): void {
        const refusals: FeatureRefusal[] = [];
        if (registration.uniqueKey !== undefined) refusals.push({ feature: 'unique', why: 'no state' });
        if (registration.priority !== 1) refusals.push({ feature: 'priority', why: 'no priorities' });
        if (refusals.length > 0) throw new UnsupportedFeatureError('limited', refusals);
      }
    }
    registerJobQueue('limited', () => new Limited());
    const q = createJobQueue('limited://x');
    q.register('a', () => undefined, { unique: true, priority: 5 });
    q.register('b', () => undefined);
    q.register('c', () => undefined, { priority: 2 });
    const error = await q.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedFeatureError);
    expect((error as UnsupportedFeatureError).refusals.map((r) => `${r.handler}:${r.feature}`)).toEqual([
      'a:unique',
      'a:priority',
      'c:priority',
    ]);
    expect((error as Error).message).toMatch(
      /does not support 3 features asked for: unique \(handler "a"\): no state; priority \(handler "a"\): no priorities; priority \(handler "c"\)/,
    );
  });

  it('prints adapter errors when nobody listens for them (a store that is down is not silent)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      let runtime: AdapterRuntime | undefined;
      class Noisy extends SimpleQueue {
        override attach(rt: AdapterRuntime): void {
          runtime = rt;
          super.attach(rt);
        }
      }
      const q = createJobQueue(new Noisy());
      await q.stats();
      runtime?.emit('error', { error: new Error('store unreachable, retrying') });
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('store unreachable, retrying'));
      const heard: unknown[] = [];
      q.on('error', ({ error }) => heard.push(error));
      warn.mockClear();
      runtime?.emit('error', { error: new Error('heard') });
      expect(heard).toHaveLength(1);
      expect(warn).not.toHaveBeenCalled();
      await q.stop();
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses to start an in-process queue with a periodic job whose handler is not registered', async () => {
    const q = createJobQueue('memory://');
    q.register('beat', () => undefined);
    q.periodic('report', '* * * * *', { handler: 'report' });
    await expect(q.start()).rejects.toThrow(
      expect.objectContaining({ name: 'UnknownHandlerError', message: expect.stringMatching(/periodic job "report"/) }),
    );
  });

  it('refuses something that is neither a URL nor an adapter', () => {
    expect(() => new JobQueue(42 as unknown as JobAdapter)).toThrow(expect.objectContaining({ option: 'adapter' }));
  });
});

describe('SimpleQueue specifics', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs a job due in 40 days at its time, not early (timers longer than 2^31 ms are stepped)', async () => {
    const q = new JobQueue(new SimpleQueue());
    const ran: number[] = [];
    q.register('far', () => void ran.push(Date.now()));
    await q.start();
    const due = Date.now() + 40 * 86_400_000;
    await q.performAt({ handler: 'far' }, due);
    await vi.advanceTimersByTimeAsync(39 * 86_400_000);
    expect(ran).toEqual([]);
    await vi.advanceTimersByTimeAsync(86_400_000 + 10);
    expect(ran).toHaveLength(1);
    expect(Math.abs((ran[0] as number) - due)).toBeLessThan(50);
    await q.stop();
  });

  it('reports every job it drops at stop, with the reason, and counts them', async () => {
    const q = createJobQueue('memory://');
    const dropped: JobQueueEventMap['job:dropped'][] = [];
    q.on('job:dropped', (e) => dropped.push(e));
    q.register('paused', () => undefined);
    q.register('later', () => undefined);
    await q.pause('paused');
    await q.start();
    const queued = await q.perform({ handler: 'paused' });
    const scheduled = await q.performIn({ handler: 'later' }, 60_000);
    const result = await q.stop({ timeoutMs: 0 });
    expect(result).toEqual({ aborted: 0, dropped: 2 });
    expect(new Map(dropped.map((d) => [d.job.id, d.reason]))).toEqual(
      new Map([
        [queued.id, 'queued'],
        [scheduled.id, 'scheduled'],
      ]),
    );
  });

  it('reports the jobs of a queue that never started when it is stopped', async () => {
    const q = createJobQueue('memory://');
    const dropped: string[] = [];
    q.on('job:dropped', ({ job }) => dropped.push(job.id));
    q.register('h', () => undefined);
    const { id } = await q.perform({ handler: 'h' });
    expect(await q.stop()).toEqual({ aborted: 0, dropped: 1 });
    expect(dropped).toEqual([id]);
  });

  it('prints failures when nobody listens for them', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const q = createJobQueue('memory://');
      q.register(
        'bad',
        () => {
          throw new Error('nobody hears me');
        },
        { maxFails: 1 },
      );
      await q.start();
      await q.perform({ handler: 'bad' });
      await vi.advanceTimersByTimeAsync(10);
      expect(warn).toHaveBeenCalledWith(
        expect.stringMatching(/bad .* attempt 1 failed, dead \(max-fails\): nobody hears me/),
      );
      await q.stop();
    } finally {
      warn.mockRestore();
    }
  });

  it('sends what it prints to the logger option, with fields, and nothing to the console', async () => {
    const spies = (['debug', 'info', 'warn', 'error'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => undefined),
    );
    try {
      const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
      const at = (level: string) => (fields: Record<string, unknown>, message: string) =>
        void lines.push({ level, fields, message });
      const q = createJobQueue('memory://', {
        logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
      });
      q.register(
        'bad',
        () => {
          throw new Error('nobody hears me');
        },
        { maxFails: 1 },
      );
      await q.start();
      const { id } = await q.perform({ handler: 'bad' });
      await vi.advanceTimersByTimeAsync(10);
      expect(lines).toContainEqual({
        level: 'warn',
        fields: expect.objectContaining({ queue: 'default', handler: 'bad', jobId: id, attempt: 1 }),
        message: expect.stringMatching(/attempt 1 failed, dead \(max-fails\): nobody hears me/),
      });
      await q.stop();
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
      expect(() => createJobQueue('memory://', { logger: 'loud' as never })).toThrow(
        expect.objectContaining({ option: 'logger' }),
      );
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('counts what this process did in status()', async () => {
    const q = createJobQueue('memory://');
    q.register('ok', () => undefined, { unique: true });
    q.register(
      'bad',
      () => {
        throw new Error('x');
      },
      { maxFails: 2, backoff: () => 1 },
    );
    q.on('job:failed', () => undefined);
    await q.start();
    await q.perform({ handler: 'ok' });
    await q.perform({ handler: 'ok' });
    await q.perform({ handler: 'bad' });
    await vi.advanceTimersByTimeAsync(20);
    expect(q.status().counts).toEqual({ enqueued: 2, duplicates: 1, started: 3, completed: 1, failed: 2, dead: 1 });
    await q.stop();
  });
});

describe('what events carry for metrics', () => {
  it('says how long a job waited after it was due and how long a failed attempt ran', async () => {
    const q = createJobQueue<{ slow: { fail: boolean } }>('memory://', { concurrency: 1 });
    const started: JobQueueEventMap['job:started'][] = [];
    const failed: JobQueueEventMap['job:failed'][] = [];
    q.on('job:started', (e) => started.push(e));
    q.on('job:failed', (e) => failed.push(e));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    q.register(
      'slow',
      async (args) => {
        await gate;
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (args.fail) throw new Error('boom');
      },
      { maxFails: 1 },
    );
    await q.start();
    await q.perform({ handler: 'slow', args: { fail: true } });
    // The second job waits behind the first (concurrency 1) for at least 30 ms.
    await q.perform({ handler: 'slow', args: { fail: false } });
    release();
    await vi.waitFor(() => expect(started).toHaveLength(2), { timeout: 2000 });
    expect(started[0]?.waitMs).toBeGreaterThanOrEqual(0);
    expect(started[1]?.waitMs).toBeGreaterThanOrEqual(25);
    await vi.waitFor(() => expect(failed).toHaveLength(1), { timeout: 2000 });
    expect(failed[0]?.durationMs).toBeGreaterThanOrEqual(25);
    await q.stop();
  });
});
