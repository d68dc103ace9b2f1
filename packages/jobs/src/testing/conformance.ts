/**
 * The job adapter conformance suite: one set of vitest tests that every
 * adapter runs unchanged: in-process with fake time, Redis and RabbitMQ
 * against real servers with real time.
 *
 * ```ts
 * import { describeJobQueueConformance } from '@shardwork/jobs/testing';
 * describeJobQueueConformance({
 *   name: 'redis',
 *   durable: true,
 *   refusesUnknownHandlers: false,
 *   create: (options, namespace) => createJobQueue(`${url}?prefix=${namespace}:`, options),
 * });
 * ```
 *
 * @module
 */

import { IllegalStateError, InvalidOptionsError, NonRetryableError, sleep } from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { JobFeature } from '../errors.js';
import {
  InvalidJobArgsError,
  InvalidJobError,
  JobArgsTooLargeError,
  JobNotFoundError,
  JobTimeoutError,
  UnknownHandlerError,
  UnsupportedFeatureError,
} from '../errors.js';
import type { JobQueueEventMap } from '../events.js';
import type { JobContext } from '../job.js';
import type { JobQueueOptions, RegisterOptions } from '../options.js';
import type { JobQueue } from '../queue.js';

/** How the suite reaches an adapter. */
export interface JobQueueHarness {
  /** Adapter name, used in test titles. */
  readonly name: string;
  /**
   * Create a queue. Calls with the same `namespace` (one per test) must share
   * one store, so that a producer and a consumer, or a queue and its
   * successor, see the same jobs on durable adapters; different namespaces
   * must never see each other's jobs.
   */
  create(options: JobQueueOptions, namespace: string): JobQueue | Promise<JobQueue>;
  /** Jobs outlive the queue object: a second queue on the namespace sees them. */
  readonly durable: boolean;
  /** `perform` refuses handlers this queue has not registered (only an in-process adapter can know). */
  readonly refusesUnknownHandlers: boolean;
  /** Run every test on vitest's fake timers (in-process adapters), advancing them instead of sleeping. */
  readonly fakeTime?: boolean;
  /**
   * Slack added to every time bound, in ms, for adapters on real servers.
   * @defaultValue 0 with fake time, else 400
   */
  readonly slackMs?: number;
  /** Features the adapter refuses; their cases check the refusal instead. */
  readonly unsupported?: readonly JobFeature[];
}

type Anything = Record<string, unknown>;

/** What a recorded event looks like: `started:<id>:1`. */
function eventLog(queue: JobQueue): string[] {
  const log: string[] = [];
  queue.on('job:enqueued', ({ job }) => log.push(`enqueued:${job.id}`));
  queue.on('job:started', ({ job, attempt }) => log.push(`started:${job.id}:${attempt}`));
  queue.on('job:completed', ({ job, attempt }) => log.push(`completed:${job.id}:${attempt}`));
  queue.on('job:failed', ({ job, attempt }) => log.push(`failed:${job.id}:${attempt}`));
  queue.on('job:dead', ({ job, attempt }) => log.push(`dead:${job.id}:${attempt}`));
  return log;
}

/** A promise and its resolver, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

let namespaceSeq = 0;

/** Register the conformance tests for one adapter inside the current vitest file. */
export function describeJobQueueConformance(harness: JobQueueHarness): void {
  const fake = harness.fakeTime === true;
  const slack = harness.slackMs ?? (fake ? 0 : 400);
  const unsupported = new Set(harness.unsupported ?? []);
  const has = (feature: JobFeature): boolean => !unsupported.has(feature);

  describe(`job queue conformance: ${harness.name}`, () => {
    let namespace = '';
    const open: JobQueue[] = [];

    /** Let `ms` pass: fake timers advance, real ones are slept through. */
    const advance = (ms: number): Promise<unknown> => (fake ? vi.advanceTimersByTimeAsync(ms) : sleep(ms));

    /** Poll `check` until it holds, letting time pass in small steps. */
    async function until(check: () => boolean | Promise<boolean>, withinMs: number, what: string): Promise<void> {
      const began = Date.now();
      for (;;) {
        if (await check()) return;
        if (Date.now() - began > withinMs + slack) throw new Error(`not within ${withinMs + slack} ms: ${what}`);
        await advance(fake ? 5 : 10);
      }
    }

    async function queue(options: JobQueueOptions = {}): Promise<JobQueue> {
      const q = await harness.create(options, namespace);
      q.on('error', () => undefined);
      open.push(q);
      return q;
    }

    async function stop(q: JobQueue, timeoutMs = 0): ReturnType<JobQueue['stop']> {
      const stopping = q.stop({ timeoutMs });
      if (fake) await vi.advanceTimersByTimeAsync(timeoutMs + 10);
      return stopping;
    }

    beforeEach(() => {
      namespace = `conf${process.pid}n${++namespaceSeq}${Date.now().toString(36)}`;
      if (fake) {
        vi.useFakeTimers({
          toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'Date'],
        });
      }
    });
    afterEach(async () => {
      for (const q of open.splice(0)) await stop(q).catch(() => undefined);
      if (fake) vi.useRealTimers();
    });

    /** A case that needs `feature`; where the adapter lacks it, the case checks the refusal instead. */
    function feature(name: JobFeature, title: string, run: () => Promise<void>, options?: RegisterOptions): void {
      if (has(name)) {
        it(title, run);
        return;
      }
      it(`refuses ${name} clearly (${title})`, async () => {
        const q = await queue();
        if (options !== undefined) {
          expect(() => q.register('needs_feature', () => undefined, options)).toThrow(UnsupportedFeatureError);
        } else if (name === 'pause') {
          await expect(q.pause('x')).rejects.toThrow(UnsupportedFeatureError);
        } else if (name === 'admin') {
          await expect(q.stats()).rejects.toThrow(UnsupportedFeatureError);
        } else if (name === 'scheduled') {
          q.register('x', () => undefined);
          await expect(q.performIn({ handler: 'x' }, 1000)).rejects.toThrow(UnsupportedFeatureError);
        } else if (name === 'jobId') {
          q.register('x', () => undefined);
          await expect(q.perform({ handler: 'x' }, { id: 'order-1' })).rejects.toThrow(UnsupportedFeatureError);
        }
      });
    }

    describe('enqueue and run', () => {
      it('runs a performed job once, with a JSON copy of its args and a full context', async () => {
        const q = await queue();
        const seen: { args: Anything; ctx: JobContext; owned: boolean; aborted: boolean }[] = [];
        q.register('echo', (args, ctx) => {
          seen.push({ args, ctx, owned: ctx.owned, aborted: ctx.signal.aborted });
        });
        await q.start();
        const args = { a: 1, nested: { list: [1, 'x', null, true], empty: {} }, text: 'ünïcødé', skip: undefined };
        const before = Date.now();
        const result = await q.perform({ handler: 'echo', args, key: 'k-1' });
        args.a = 2; // a later change by the caller must not reach the job
        expect(result.id).toMatch(/^[A-Za-z0-9_-]{21}$/);
        expect(result.duplicate).toBe(false);
        await until(() => seen.length === 1, 1000, 'the job ran');
        await advance(100);
        expect(seen).toHaveLength(1);
        const [run] = seen;
        expect(run?.args).toEqual({ a: 1, nested: { list: [1, 'x', null, true], empty: {} }, text: 'ünïcødé' });
        expect(run?.ctx).toMatchObject({ id: result.id, handler: 'echo', queue: 'default', key: 'k-1', attempt: 1 });
        expect(run?.ctx.enqueuedAt.getTime()).toBeGreaterThanOrEqual(before - slack);
        expect(run?.ctx.scheduledAt.getTime()).toBeGreaterThanOrEqual(run?.ctx.enqueuedAt.getTime() ?? 0);
        expect(run?.owned).toBe(true);
        expect(run?.aborted).toBe(false);
        expect(q.status()).toMatchObject({ state: 'running', consuming: true, handlers: ['echo'] });
      });

      it('routes a job to the queue its registration names, unless the job names one', async () => {
        const q = await queue();
        const queues: string[] = [];
        q.register('mail', (_args, ctx) => void queues.push(ctx.queue), { queue: 'mailers' });
        // A process consumes the queues its registrations name: 'urgent' is one of them here.
        q.register('page', () => undefined, { queue: 'urgent' });
        await q.start();
        await q.perform({ handler: 'mail' });
        await q.perform({ handler: 'mail', queue: 'urgent' });
        await until(() => queues.length === 2, 1000, 'both ran');
        expect(queues.sort()).toEqual(['mailers', 'urgent']);
      });

      it('performMany enqueues every job of a batch, with ids in input order', async () => {
        const q = await queue();
        const ran: number[] = [];
        q.register('n', (args) => void ran.push(args.n as number));
        await q.start();
        const results = await q.performMany(Array.from({ length: 20 }, (_, n) => ({ handler: 'n', args: { n } })));
        expect(results).toHaveLength(20);
        expect(new Set(results.map((r) => r.id)).size).toBe(20);
        await until(() => ran.length === 20, 2000, 'all 20 ran');
        expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
      });

      feature('jobId', 'a caller-chosen id: the job runs once however often it is performed with that id', async () => {
        const q = await queue();
        const ran: string[] = [];
        const hold = gate();
        q.register('pay', async (_args, ctx) => {
          ran.push(ctx.id);
          await hold.promise;
        });
        const log = eventLog(q);
        await q.start();
        const id = `order-42:pay/${namespace}`;
        expect(await q.perform({ handler: 'pay', args: { n: 1 } }, { id })).toEqual({ id, duplicate: false });
        await until(() => ran.length === 1, 1000, 'the job started');
        // While it runs…
        expect(await q.perform({ handler: 'pay', args: { n: 2 } }, { id })).toEqual({ id, duplicate: true });
        hold.open();
        await until(() => log.includes(`completed:${id}:1`), 1000, 'the job completed');
        // …and after it completed (within the idempotency window), also inside a batch.
        expect(await q.perform({ handler: 'pay' }, { id })).toEqual({ id, duplicate: true });
        const other = `order-43:pay/${namespace}`;
        expect(
          await q.performMany([
            { handler: 'pay', id },
            { handler: 'pay', id: other },
          ]),
        ).toEqual([
          { id, duplicate: true },
          { id: other, duplicate: false },
        ]);
        await until(() => ran.length === 2, 1000, 'the other job ran');
        await advance(200);
        expect(ran).toEqual([id, other]);
      });

      it('refuses a malformed id, a repeated id in a batch, or a job field it does not know, naming it', async () => {
        const q = await queue();
        q.register('n', () => undefined);
        await q.start();
        for (const id of ['', 'has space', 'x'.repeat(201), 7]) {
          await expect(q.perform({ handler: 'n' }, { id: id as string })).rejects.toThrow(
            expect.objectContaining({ name: 'InvalidJobError', path: 'options.id' }),
          );
        }
        await expect(q.perform({ handler: 'n', id: 'a' } as never)).rejects.toThrow(
          expect.objectContaining({
            name: 'InvalidJobError',
            path: 'job.id',
            message: expect.stringMatching(/perform\(job, \{ id \}\)/),
          }),
        );
        await expect(q.perform({ handler: 'n', priority: 2 } as never)).rejects.toThrow(
          expect.objectContaining({ name: 'InvalidJobError', path: 'job.priority' }),
        );
        await expect(
          q.performMany([
            { handler: 'n', id: 'same' },
            { handler: 'n', id: 'same' },
          ]),
        ).rejects.toThrow(expect.objectContaining({ name: 'InvalidJobError', path: 'jobs[1].id' }));
      });

      it('performMany enqueues nothing when one job of the batch is invalid, naming it', async () => {
        const q = await queue();
        let ran = 0;
        q.register('n', () => void ran++);
        await q.start();
        const batch = [{ handler: 'n' }, { handler: 'n' }, { handler: 'n', args: { when: new Date() } }];
        await expect(q.performMany(batch as never)).rejects.toThrow(
          expect.objectContaining({ name: 'InvalidJobArgsError', path: 'jobs[2].args.when' }),
        );
        await advance(200);
        expect(ran).toBe(0);
        if (has('admin')) expect((await q.stats()).total.ready).toBe(0);
      });
    });

    describe('due times', () => {
      feature('scheduled', 'performIn runs a job no earlier than its delay, and soon after', async () => {
        const q = await queue();
        const started: number[] = [];
        q.register('later', () => void started.push(Date.now()));
        await q.start();
        const t0 = Date.now();
        await q.performIn({ handler: 'later' }, 600);
        await advance(400);
        expect(started).toEqual([]);
        await until(() => started.length === 1, 600, 'the delayed job ran');
        expect((started[0] as number) - t0).toBeGreaterThanOrEqual(595);
      });

      feature('scheduled', 'performAt runs a job at its time; a time in the past runs now', async () => {
        const q = await queue();
        const started = new Map<string, number>();
        q.register('at', (args) => void started.set(args.name as string, Date.now()));
        await q.start();
        const t0 = Date.now();
        await q.performAt({ handler: 'at', args: { name: 'future' } }, new Date(t0 + 600));
        await q.performAt({ handler: 'at', args: { name: 'past' } }, t0 - 60_000);
        await until(() => started.has('past'), 300, 'the past job ran');
        expect(started.has('future')).toBe(false);
        await until(() => started.has('future'), 600, 'the future job ran');
        expect((started.get('future') as number) - t0).toBeGreaterThanOrEqual(595);
      });
    });

    describe('periodic jobs', () => {
      it('enqueues one job per cron tick while it consumes, with the tick as scheduledAt', async () => {
        const q = await queue();
        const ticks: number[] = [];
        q.register('beat', (_args, ctx) => void ticks.push(ctx.scheduledAt.getTime()));
        q.periodic('heartbeat', '* * * * * *', { handler: 'beat' });
        await q.start();
        await until(() => ticks.length >= 3, 3500, 'three ticks ran');
        for (const tick of ticks) expect(tick % 1000).toBe(0);
        expect(new Set(ticks).size).toBe(ticks.length);
        expect([...ticks].sort((a, b) => a - b)).toEqual(ticks);
      });

      if (harness.durable) {
        it('enqueues each tick once when several consumers share the store', async () => {
          const consumers = [await queue(), await queue()];
          const ticks: number[] = [];
          for (const c of consumers) {
            c.register('beat', (_args, ctx) => void ticks.push(ctx.scheduledAt.getTime()));
            c.periodic('heartbeat', '* * * * * *', { handler: 'beat' });
          }
          await Promise.all(consumers.map((c) => c.start()));
          await until(() => ticks.length >= 3, 4000, 'three ticks ran');
          await advance(500);
          expect(new Set(ticks).size).toBe(ticks.length);
        });
      }

      it('refuses a bad schedule or job at periodic(), not at the first tick', async () => {
        const q = await queue();
        q.register('beat', () => undefined);
        expect(() => q.periodic('p1', 'not cron', { handler: 'beat' })).toThrow(/Invalid cron expression/);
        expect(() => q.periodic('p2', '* * * * *', { handler: 'beat', args: { d: new Date() } } as never)).toThrow(
          InvalidJobArgsError,
        );
        expect(() => q.periodic('p3', '* * * * *', { handler: 'beat' }, { catchUp: 'most' as never })).toThrow(
          expect.objectContaining({ option: 'p3.catchUp' }),
        );
        q.periodic('p4', '* * * * *', { handler: 'beat' });
        expect(() => q.periodic('p4', '* * * * *', { handler: 'beat' })).toThrow(InvalidOptionsError);
      });
    });

    describe('retries and the dead set', () => {
      it('retries a failing job after its backoff and reports each failure with the next run time', async () => {
        const q = await queue();
        const starts: number[] = [];
        const failures: JobQueueEventMap['job:failed'][] = [];
        q.on('job:failed', (e) => failures.push(e));
        q.register(
          'flaky',
          (_args, ctx) => {
            starts.push(Date.now());
            if (ctx.attempt < 3) throw new Error(`flake ${ctx.attempt}`);
          },
          { backoff: () => 300, maxFails: 5 },
        );
        const log = eventLog(q);
        await q.start();
        const { id } = await q.perform({ handler: 'flaky' });
        await until(() => log.includes(`completed:${id}:3`), 3000, 'the third attempt completed');
        expect(starts).toHaveLength(3);
        expect((starts[1] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(295);
        expect((starts[2] as number) - (starts[1] as number)).toBeGreaterThanOrEqual(295);
        expect(failures.map((f) => [f.attempt, (f.error as Error).message])).toEqual([
          [1, 'flake 1'],
          [2, 'flake 2'],
        ]);
        for (const [i, f] of failures.entries()) {
          expect(f.nextRunAt).toBeInstanceOf(Date);
          expect((f.nextRunAt as Date).getTime() - (starts[i] as number)).toBeGreaterThanOrEqual(295);
          expect((f.nextRunAt as Date).getTime() - (starts[i] as number)).toBeLessThan(300 + 200 + slack);
        }
      });

      it('sends a job to the dead set after maxFails attempts, with its last error', async () => {
        const q = await queue();
        let attempts = 0;
        const dead: JobQueueEventMap['job:dead'][] = [];
        q.on('job:dead', (e) => dead.push(e));
        q.register(
          'doomed',
          () => {
            attempts++;
            throw new Error(`boom ${attempts}`);
          },
          { maxFails: 3, backoff: () => 20 },
        );
        await q.start();
        const { id } = await q.perform({ handler: 'doomed', args: { x: 1 } });
        await until(() => dead.length === 1, 2000, 'the job died');
        await advance(100);
        expect(attempts).toBe(3);
        expect(dead[0]).toMatchObject({ attempt: 3, reason: 'max-fails', job: { id, handler: 'doomed' } });
        if (has('admin')) {
          const page = await q.list('dead');
          expect(page.total).toBe(1);
          expect(page.jobs[0]).toMatchObject({ id, handler: 'doomed', state: 'dead', fails: 3, args: { x: 1 } });
          expect(page.jobs[0]?.lastError?.message).toBe('boom 3');
        }
      });

      it('sends a job that throws NonRetryableError to the dead set at once', async () => {
        const q = await queue();
        let attempts = 0;
        const dead: JobQueueEventMap['job:dead'][] = [];
        q.on('job:dead', (e) => dead.push(e));
        q.register(
          'refused',
          () => {
            attempts++;
            throw new NonRetryableError('bad request');
          },
          { maxFails: 10, backoff: () => 10 },
        );
        await q.start();
        await q.perform({ handler: 'refused' });
        await until(() => dead.length === 1, 1000, 'the job died');
        await advance(100);
        expect(attempts).toBe(1);
        expect(dead[0]).toMatchObject({ attempt: 1, reason: 'non-retryable' });
      });

      it("uses gocraft/work's defaults: 4 attempts, and its backoff curve (16–74 s after the first failure)", async () => {
        const q = await queue();
        let fastAttempts = 0;
        const failures: JobQueueEventMap['job:failed'][] = [];
        q.on('job:failed', (e) => failures.push(e));
        q.register(
          'fast',
          () => {
            fastAttempts++;
            throw new Error('always');
          },
          { backoff: () => 10 },
        );
        q.register('curve', () => {
          throw new Error('once');
        });
        await q.start();
        const { id: fastId } = await q.perform({ handler: 'fast' });
        await until(() => failures.some((f) => f.job.id === fastId && f.nextRunAt === undefined), 2000, 'fast died');
        expect(fastAttempts).toBe(4);
        const failedAt = Date.now();
        const { id } = await q.perform({ handler: 'curve' });
        await until(() => failures.some((f) => f.job.id === id), 1000, 'curve failed once');
        const nextRunAt = failures.find((f) => f.job.id === id)?.nextRunAt;
        expect(nextRunAt).toBeInstanceOf(Date);
        const next = (nextRunAt as Date).getTime() - failedAt;
        expect(next).toBeGreaterThanOrEqual(16_000 - slack);
        expect(next).toBeLessThanOrEqual(74_000 + slack);
      });

      feature(
        'timeout',
        'aborts an attempt at timeoutMs: its signal carries JobTimeoutError, ctx.owned turns false, and it fails',
        async () => {
          const q = await queue();
          const seen: { reason: unknown; owned: boolean }[] = [];
          const dead: JobQueueEventMap['job:dead'][] = [];
          q.on('job:dead', (e) => dead.push(e));
          q.register(
            'slow',
            async (_args, ctx) => {
              await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
              seen.push({ reason: ctx.signal.reason, owned: ctx.owned });
            },
            { timeoutMs: 300, maxFails: 1 },
          );
          await q.start();
          const t0 = Date.now();
          await q.perform({ handler: 'slow' });
          await until(() => dead.length === 1, 1500, 'the attempt timed out');
          expect(Date.now() - t0).toBeGreaterThanOrEqual(295);
          expect(dead[0]?.error).toBeInstanceOf(JobTimeoutError);
          expect(seen[0]?.reason).toBeInstanceOf(JobTimeoutError);
          expect(seen[0]?.owned).toBe(false);
        },
        { timeoutMs: 100 },
      );
    });

    describe('middleware', () => {
      it('chains middleware in order around the handler', async () => {
        const q = await queue();
        const order: string[] = [];
        q.use(async (ctx, next) => {
          order.push(`outer:before:${ctx.handler}`);
          ctx.data.user = 'u1';
          await next();
          order.push('outer:after');
        });
        q.use(async (_ctx, next) => {
          order.push('inner:before');
          await next();
          order.push('inner:after');
        });
        q.register('h', (_args, ctx) => void order.push(`handler:${String(ctx.data.user)}`));
        await q.start();
        await q.perform({ handler: 'h' });
        await until(() => order.length === 5, 1000, 'the chain ran');
        expect(order).toEqual(['outer:before:h', 'inner:before', 'handler:u1', 'inner:after', 'outer:after']);
      });

      it('lets middleware finish a job without the handler, and counts a throw as a failure', async () => {
        const q = await queue();
        let handled = 0;
        const log = eventLog(q);
        q.use(async (ctx, next) => {
          if (ctx.args.skip === true) return;
          if (ctx.args.explode === true) throw new Error('middleware refused');
          await next();
        });
        q.register('h', () => void handled++, { maxFails: 1 });
        await q.start();
        const skipped = await q.perform({ handler: 'h', args: { skip: true } });
        const exploded = await q.perform({ handler: 'h', args: { explode: true } });
        await until(
          () => log.includes(`completed:${skipped.id}:1`) && log.includes(`dead:${exploded.id}:1`),
          1000,
          'both settled',
        );
        expect(handled).toBe(0);
      });
    });

    describe('unique jobs', () => {
      feature(
        'unique',
        'holds a unique key while the job is queued and while it runs, and releases it on completion',
        async () => {
          const q = await queue();
          const hold = gate();
          let runs = 0;
          q.register(
            'sync_user',
            async () => {
              runs++;
              await hold.promise;
            },
            { unique: true },
          );
          const first = await q.perform({ handler: 'sync_user', args: { user: 7 } });
          // Queued (not started yet):
          expect(await q.perform({ handler: 'sync_user', args: { user: 7 } })).toEqual({
            id: first.id,
            duplicate: true,
          });
          const other = await q.perform({ handler: 'sync_user', args: { user: 8 } });
          expect(other.duplicate).toBe(false);
          await q.start();
          await until(() => runs === 2, 1000, 'both started');
          // Running:
          expect(await q.perform({ handler: 'sync_user', args: { user: 7 } })).toEqual({
            id: first.id,
            duplicate: true,
          });
          const completed = new Set<string>();
          q.on('job:completed', ({ job }) => completed.add(job.id));
          hold.open();
          await until(() => completed.has(first.id), 1000, 'the first completed');
          const again = await q.perform({ handler: 'sync_user', args: { user: 7 } });
          expect(again.duplicate).toBe(false);
          expect(again.id).not.toBe(first.id);
          expect(q.status().counts.duplicates).toBe(2);
        },
        { unique: true },
      );

      feature(
        'unique',
        'keys unique jobs by a key function, and releases the key when the job dies',
        async () => {
          const q = await queue();
          const dead: string[] = [];
          q.on('job:dead', ({ job }) => dead.push(job.id));
          q.register(
            'charge',
            () => {
              throw new Error('card declined');
            },
            { unique: (args) => String(args.order), maxFails: 1 },
          );
          const a = await q.perform({ handler: 'charge', args: { order: 1, amount: 5 } });
          expect((await q.perform({ handler: 'charge', args: { order: 1, amount: 6 } })).duplicate).toBe(true);
          const batch = await q.performMany([
            { handler: 'charge', args: { order: 2 } },
            { handler: 'charge', args: { order: 2 } },
          ]);
          expect(batch.map((r) => r.duplicate)).toEqual([false, true]);
          expect(batch[1]?.id).toBe(batch[0]?.id);
          await q.start();
          await until(() => dead.includes(a.id), 1000, 'the job died');
          expect((await q.perform({ handler: 'charge', args: { order: 1 } })).duplicate).toBe(false);
        },
        { unique: true },
      );
    });

    describe('ordering per key', () => {
      feature(
        'ordered',
        'runs jobs of one key one at a time in enqueue order, across a retry, while other keys go on',
        async () => {
          const q = await queue({ concurrency: 4 });
          const spans: { key: string; n: number; attempt: number; start: number; end: number }[] = [];
          q.register(
            'step',
            async (args, ctx) => {
              const span = {
                key: ctx.key as string,
                n: args.n as number,
                attempt: ctx.attempt,
                start: Date.now(),
                end: 0,
              };
              spans.push(span);
              await sleep(40);
              span.end = Date.now();
              if (args.failOnce === true && ctx.attempt === 1) throw new Error('transient');
            },
            { ordered: true, backoff: () => 400 },
          );
          const jobs = [];
          for (let n = 1; n <= 4; n++) {
            jobs.push({ handler: 'step', key: 'A', args: { n, failOnce: n === 2 } });
            jobs.push({ handler: 'step', key: 'B', args: { n } });
          }
          await q.performMany(jobs);
          await q.start();
          await until(() => spans.filter((s) => s.end > 0).length === 9, 3000, 'all 9 attempts ended');
          for (const key of ['A', 'B']) {
            const mine = spans.filter((s) => s.key === key);
            expect(mine.map((s) => s.n)).toEqual(key === 'A' ? [1, 2, 2, 3, 4] : [1, 2, 3, 4]);
            for (let i = 1; i < mine.length; i++) {
              expect(mine[i]?.start).toBeGreaterThanOrEqual(mine[i - 1]?.end as number);
            }
          }
          // Key B did not wait for key A's retry.
          const lastB = Math.max(...spans.filter((s) => s.key === 'B').map((s) => s.end));
          const retryA = spans.find((s) => s.key === 'A' && s.attempt === 2)?.start as number;
          expect(lastB).toBeLessThan(retryA);
        },
        { ordered: true },
      );
    });

    describe('priorities and concurrency', () => {
      feature(
        'priority',
        "draws the next job by priority (gocraft's weighted sampling): higher runs more often, lower still runs",
        async () => {
          const q = await queue({ concurrency: 1 });
          const order: string[] = [];
          q.register('low', () => void order.push('low'), { priority: 1 });
          q.register('high', () => void order.push('high'), { priority: 50 });
          await q.performMany([
            ...Array.from({ length: 30 }, () => ({ handler: 'low' })),
            ...Array.from({ length: 30 }, () => ({ handler: 'high' })),
          ]);
          await q.start();
          await until(() => order.length === 60, 5000, 'all 60 ran');
          expect(order.slice(0, 20).filter((h) => h === 'high').length).toBeGreaterThanOrEqual(14);
        },
        { priority: 5 },
      );

      feature(
        'maxConcurrency',
        'runs at most maxConcurrency jobs of a handler at once, while other handlers use the rest',
        async () => {
          const q = await queue({ concurrency: 10 });
          const now = { limited: 0, free: 0 };
          const peak = { limited: 0, free: 0 };
          const body = (name: 'limited' | 'free') => async () => {
            now[name]++;
            peak[name] = Math.max(peak[name], now[name]);
            await sleep(60);
            now[name]--;
          };
          q.register('limited', body('limited'), { maxConcurrency: 2 });
          q.register('free', body('free'));
          let done = 0;
          q.on('job:completed', () => void done++);
          await q.performMany([
            ...Array.from({ length: 8 }, () => ({ handler: 'limited' })),
            ...Array.from({ length: 6 }, () => ({ handler: 'free' })),
          ]);
          await q.start();
          await until(() => done === 14, 3000, 'all 14 completed');
          expect(peak.limited).toBe(2);
          expect(peak.free).toBeGreaterThanOrEqual(3);
        },
        { maxConcurrency: 1 },
      );

      it('runs at most `concurrency` attempts at once in one process', async () => {
        const q = await queue({ concurrency: 3 });
        let now = 0;
        let peak = 0;
        let done = 0;
        q.register('work', async () => {
          now++;
          peak = Math.max(peak, now);
          await sleep(50);
          now--;
          done++;
        });
        await q.performMany(Array.from({ length: 12 }, () => ({ handler: 'work' })));
        await q.start();
        await until(() => done === 12, 3000, 'all 12 ran');
        expect(peak).toBe(3);
      });
    });

    describe('pause and the admin API', () => {
      feature('pause', 'refuses to pause a handler nothing knows (a typo), unless forced', async () => {
        const q = await queue();
        q.register('mail', () => undefined);
        await q.start();
        await expect(q.pause('mial')).rejects.toThrow(
          expect.objectContaining({ name: 'UnknownHandlerError', message: expect.stringMatching(/force: true/) }),
        );
        await q.pause('mail');
        await q.pause('later', { force: true });
        await q.unpause('mail');
        await q.unpause('later');
      });

      feature('pause', 'pauses and unpauses one handler while others run', async () => {
        const q = await queue();
        const ran: string[] = [];
        q.register('a', () => void ran.push('a'));
        q.register('b', () => void ran.push('b'));
        await q.pause('a');
        await q.start();
        await q.perform({ handler: 'a' });
        await q.perform({ handler: 'b' });
        await until(() => ran.includes('b'), 1000, 'b ran');
        await advance(300);
        expect(ran).toEqual(['b']);
        if (has('admin')) {
          const stats = await q.stats();
          expect(stats.handlers.a).toMatchObject({ paused: true, ready: 1 });
        }
        await q.unpause('a');
        await until(() => ran.includes('a'), 1000, 'a ran after unpause');
      });

      feature('admin', 'counts jobs by state, lists dead jobs in pages, retries and deletes them', async () => {
        const q = await queue();
        const fixed = { now: false };
        const completed: string[] = [];
        q.on('job:completed', ({ job }) => completed.push(job.id));
        const dead: string[] = [];
        q.on('job:dead', ({ job }) => dead.push(job.id));
        q.register(
          'fragile',
          (args) => {
            if (!fixed.now) throw new Error(`broken ${String(args.n)}`);
          },
          { maxFails: 1 },
        );
        q.register('idle', () => undefined);
        await q.start();
        const ids = (await q.performMany([1, 2, 3].map((n) => ({ handler: 'fragile', args: { n } })))).map((r) => r.id);
        if (has('scheduled')) await q.performIn({ handler: 'idle', queue: 'later' }, 60_000);
        await until(() => dead.length === 3, 1500, 'three jobs died');
        const stats = await q.stats();
        expect(stats.total.dead).toBe(3);
        expect(stats.handlers.fragile?.dead).toBe(3);
        if (has('scheduled')) {
          expect(stats.total.scheduled).toBe(1);
          expect(stats.queues.later?.scheduled).toBe(1);
          expect((await q.list('scheduled')).jobs[0]).toMatchObject({ handler: 'idle', queue: 'later' });
        }
        const page1 = await q.list('dead', { limit: 2 });
        const page2 = await q.list('dead', { limit: 2, offset: 2 });
        expect(page1.total).toBe(3);
        expect(page1.jobs).toHaveLength(2);
        expect(page2.jobs).toHaveLength(1);
        expect([...page1.jobs, ...page2.jobs].map((j) => j.id).sort()).toEqual([...ids].sort());
        expect(page1.jobs[0]?.lastError?.message).toMatch(/^broken \d$/);
        fixed.now = true;
        const attempts: number[] = [];
        q.on('job:started', ({ job, attempt }) => job.id === ids[0] && attempts.push(attempt));
        expect(await q.retryDead(ids[0])).toBe(1);
        await until(() => completed.includes(ids[0] as string), 1000, 'the retried job completed');
        expect(attempts).toEqual([1]); // a retried dead job gets a full set of attempts
        await expect(q.retryDead('no-such-job')).rejects.toThrow(JobNotFoundError);
        expect(await q.deleteDead(ids[1])).toBe(1);
        const progress: number[] = [];
        expect(await q.retryDead(undefined, { onProgress: (done) => progress.push(done) })).toBe(1);
        expect(progress.at(-1)).toBe(1);
        await until(() => completed.includes(ids[2] as string), 1000, 'the last one completed');
        expect(await q.deleteDead()).toBe(0);
        expect((await q.stats()).total.dead).toBe(0);
      });
    });

    describe('lifecycle and graceful stop', () => {
      it('lets a running job finish within the stop timeout', async () => {
        const q = await queue();
        const log = eventLog(q);
        q.register('short', () => sleep(150));
        await q.start();
        const { id } = await q.perform({ handler: 'short' });
        await until(() => log.includes(`started:${id}:1`), 1000, 'it started');
        const stopping = q.stop({ timeoutMs: 5000 });
        if (fake) await vi.advanceTimersByTimeAsync(200);
        const result = await stopping;
        expect(log).toContain(`completed:${id}:1`);
        expect(result.aborted).toBe(0);
        expect(q.state).toBe('stopped');
      });

      it('aborts jobs still running at the stop timeout, and never hangs on a handler that ignores its signal', async () => {
        const q = await queue();
        const signals: AbortSignal[] = [];
        const dropped: JobQueueEventMap['job:dropped'][] = [];
        q.on('job:dropped', (e) => dropped.push(e));
        q.register('stubborn', (_args, ctx) => {
          signals.push(ctx.signal);
          return new Promise(() => undefined); // never settles
        });
        q.register('later', () => undefined);
        await q.start();
        const running = await q.perform({ handler: 'stubborn' });
        const scheduled = has('scheduled') ? await q.performIn({ handler: 'later' }, 60_000) : undefined;
        await until(() => signals.length === 1, 1000, 'it started');
        const t0 = Date.now();
        const stopping = q.stop({ timeoutMs: 300 });
        if (fake) await vi.advanceTimersByTimeAsync(310);
        const result = await stopping;
        expect(Date.now() - t0).toBeLessThan(300 + 2000 + slack);
        expect(result.aborted).toBe(1);
        expect(signals[0]?.aborted).toBe(true);
        if (harness.durable) {
          expect(result.dropped).toBe(0);
          // The aborted job is put back and runs again on the next consumer.
          const next = await queue();
          const reran: string[] = [];
          next.register('stubborn', (_args, ctx) => void reran.push(ctx.id));
          next.register('later', () => undefined);
          await next.start();
          await until(() => reran.includes(running.id), 2000, 'the aborted job ran again');
          if (scheduled !== undefined && has('admin')) expect((await next.stats()).total.scheduled).toBe(1);
        } else {
          const reasons = new Map(dropped.map((d) => [d.job.id, d.reason]));
          expect(reasons.get(running.id)).toBe('aborted');
          if (scheduled !== undefined) expect(reasons.get(scheduled.id)).toBe('scheduled');
          expect(result.dropped).toBe(dropped.length);
        }
      });

      it('refuses perform after stop, a second start, and registration after start', async () => {
        const q = await queue();
        q.register('h', () => undefined);
        await q.start();
        await expect(q.start()).rejects.toThrow(IllegalStateError);
        expect(() => q.register('late', () => undefined)).toThrow(IllegalStateError);
        expect(() => q.use(async (_c, next) => next())).toThrow(IllegalStateError);
        await stop(q);
        await expect(q.perform({ handler: 'h' })).rejects.toThrow(IllegalStateError);
        await expect(q.start()).rejects.toThrow(IllegalStateError);
        expect(await q.stop()).toEqual({ aborted: 0, dropped: 0 });
      });

      it('stops when the start signal aborts', async () => {
        const q = await queue();
        q.register('h', () => undefined);
        const controller = new AbortController();
        await q.start({ signal: controller.signal });
        controller.abort();
        await until(() => q.state === 'stopped', 1000, 'it stopped');
      });

      it('lets a producer-only queue perform without consuming', async () => {
        const producer = await queue();
        let ran = 0;
        producer.register('work', () => void ran++);
        const { id } = await producer.perform({ handler: 'work' });
        await advance(300);
        expect(ran).toBe(0);
        expect(producer.status()).toMatchObject({ state: 'idle', consuming: false });
        const ids: string[] = [];
        if (harness.durable) {
          const consumer = await queue();
          consumer.register('work', (_args, ctx) => void ids.push(ctx.id));
          await consumer.start();
          await until(() => ids.includes(id), 1000, 'the consumer ran it');
          await stop(producer);
        } else {
          producer.on('job:started', ({ job }) => ids.push(job.id));
          await producer.start();
          await until(() => ids.includes(id), 1000, 'it ran once started');
        }
      });
    });

    describe('events', () => {
      it('emits enqueued, started, failed, started, completed in order for a job that fails once', async () => {
        const q = await queue();
        const log = eventLog(q);
        q.register(
          'once',
          (_args, ctx) => {
            if (ctx.attempt === 1) throw new Error('first');
          },
          { backoff: () => 50 },
        );
        q.register('never', () => Promise.reject(new Error('always')), { maxFails: 1 });
        await q.start();
        const a = await q.perform({ handler: 'once' });
        const b = await q.perform({ handler: 'never' });
        await until(() => log.includes(`completed:${a.id}:2`) && log.includes(`dead:${b.id}:1`), 1500, 'settled');
        const of = (id: string) => log.filter((e) => e.includes(`:${id}`)).map((e) => e.replace(`:${id}`, ''));
        expect(of(a.id)).toEqual(['enqueued', 'started:1', 'failed:1', 'started:2', 'completed:2']);
        expect(of(b.id)).toEqual(['enqueued', 'started:1', 'failed:1', 'dead:1']);
      });

      it('survives throwing listeners, handlers that throw non-errors, and reports listener errors', async () => {
        const q = await harness.create({}, namespace);
        open.push(q);
        const errors: unknown[] = [];
        q.on('error', ({ error }) => errors.push(error));
        q.on('job:started', () => {
          throw new Error('listener bug');
        });
        const dead: unknown[] = [];
        q.on('job:dead', ({ error }) => dead.push(error));
        q.register('ok', () => undefined);
        q.register(
          'weird',
          () => {
            throw 'a string';
          },
          { maxFails: 1 },
        );
        const log = eventLog(q);
        await q.start();
        const ok = await q.perform({ handler: 'ok' });
        await q.perform({ handler: 'weird' });
        await until(() => log.includes(`completed:${ok.id}:1`) && dead.length === 1, 1000, 'both settled');
        expect(dead[0]).toBe('a string');
        expect(errors.some((e) => (e as Error).message === 'listener bug')).toBe(true);
      });
    });

    describe('bad input is refused and loses nothing', () => {
      it.each<[string, string, unknown, RegExp]>([
        ['a Date', 'args.user.createdAt', { user: { createdAt: new Date(0) } }, /Date, not a plain object/],
        ['a BigInt', 'args.amount', { amount: 10n }, /BigInt/],
        ['a function', 'args.cb', { cb: () => 1 }, /function/],
        ['a class instance', 'args.m', { m: new Map() }, /Map/],
        ['NaN', 'args.list[1]', { list: [1, Number.NaN] }, /NaN/],
        ['an array', 'args', [1, 2], /an array/],
        ['a sparse array', 'args.list[1]', { list: Object.assign([1], { 2: 3 }) }, /hole/],
      ])('refuses args with %s, naming %s', async (_what, path, args, message) => {
        const q = await queue();
        let ran = 0;
        q.register('h', () => void ran++);
        await q.start();
        const attempt = q.perform({ handler: 'h', args: args as never });
        await expect(attempt).rejects.toThrow(InvalidJobArgsError);
        await expect(q.perform({ handler: 'h', args: args as never })).rejects.toThrow(
          expect.objectContaining({ path }),
        );
        await expect(q.perform({ handler: 'h', args: args as never })).rejects.toThrow(message);
        await advance(100);
        expect(ran).toBe(0);
      });

      it('refuses args with a cycle, and args over maxArgsBytes naming the largest field', async () => {
        const q = await queue({ maxArgsBytes: 1000 });
        q.register('h', () => undefined);
        const cyclic: Anything = { a: {} };
        (cyclic.a as Anything).back = cyclic;
        await expect(q.perform({ handler: 'h', args: cyclic })).rejects.toThrow(
          expect.objectContaining({ path: 'args.a.back' }),
        );
        const big = q.perform({ handler: 'h', args: { small: 1, html: 'x'.repeat(2000) } });
        await expect(big).rejects.toThrow(JobArgsTooLargeError);
        await expect(q.perform({ handler: 'h', args: { html: 'x'.repeat(2000) } })).rejects.toThrow(/args\.html/);
        if (has('admin')) expect((await q.stats()).total.ready).toBe(0);
      });

      it(
        harness.refusesUnknownHandlers
          ? 'refuses a job for a handler it has not registered'
          : 'keeps a job for a handler no consumer has registered waiting, and shows it in stats',
        async () => {
          const q = await queue();
          q.register('known', () => undefined);
          await q.start();
          if (harness.refusesUnknownHandlers) {
            await expect(q.perform({ handler: 'unknown_one' })).rejects.toThrow(UnknownHandlerError);
            await expect(q.performIn({ handler: 'unknown_one' }, 1000)).rejects.toThrow(UnknownHandlerError);
            await expect(q.perform({ handler: 'unknown_one' })).rejects.toThrow(/registered: known/);
          } else {
            const dead: string[] = [];
            q.on('job:dead', ({ job }) => dead.push(job.id));
            await q.perform({ handler: 'unknown_one' });
            await advance(300);
            expect(dead).toEqual([]);
            if (has('admin')) expect((await q.stats()).handlers.unknown_one?.ready).toBe(1);
          }
        },
      );

      it.each<[string, string, Anything]>([
        ['an empty handler name', 'job.handler', { handler: '' }],
        ['a handler name with spaces', 'job.handler', { handler: 'send email' }],
        ['a bad queue name', 'job.queue', { handler: 'h', queue: 'a/b' }],
        ['an empty key', 'job.key', { handler: 'h', key: '' }],
        ['a numeric key', 'job.key', { handler: 'h', key: 42 }],
      ])('refuses a job with %s, naming %s', async (_what, path, job) => {
        const q = await queue();
        q.register('h', () => undefined);
        await expect(q.perform(job as never)).rejects.toThrow(InvalidJobError);
        await expect(q.perform(job as never)).rejects.toThrow(expect.objectContaining({ path }));
      });

      it('refuses bad due times', async () => {
        const q = await queue();
        q.register('h', () => undefined);
        await expect(q.performIn({ handler: 'h' }, -1)).rejects.toThrow(InvalidJobError);
        await expect(q.performIn({ handler: 'h' }, Number.NaN)).rejects.toThrow(InvalidJobError);
        await expect(q.performAt({ handler: 'h' }, new Date('not a date'))).rejects.toThrow(InvalidJobError);
      });

      it.each<[string, string, Anything]>([
        ['maxFails 0', 'h.maxFails', { maxFails: 0 }],
        ['a fractional maxFails', 'h.maxFails', { maxFails: 1.5 }],
        ['priority 0', 'h.priority', { priority: 0 }],
        ['priority above 100000', 'h.priority', { priority: 100_001 }],
        ['a negative timeout', 'h.timeoutMs', { timeoutMs: -1 }],
        ['a negative maxConcurrency', 'h.maxConcurrency', { maxConcurrency: -1 }],
        ['unique as a string', 'h.unique', { unique: 'yes' }],
        ['ordered as a number', 'h.ordered', { ordered: 1 }],
        ['backoff with maximumAttempts', 'h.backoff.maximumAttempts', { backoff: { maximumAttempts: 3 } }],
        [
          'backoff with a coefficient below 1',
          'h.backoff.backoffCoefficient',
          { backoff: { backoffCoefficient: 0.5 } },
        ],
        ['an unknown option', 'h.retries', { retries: 3 }],
        ['a bad queue', 'h.queue', { queue: '' }],
      ])('refuses register with %s, naming %s', async (_what, option, options) => {
        const q = await queue();
        expect(() => q.register('h', () => undefined, options as never)).toThrow(InvalidOptionsError);
        expect(() => q.register('h', () => undefined, options as never)).toThrow(expect.objectContaining({ option }));
      });

      it('refuses a second registration of a name and a handler that is not a function', async () => {
        const q = await queue();
        q.register('h', () => undefined);
        expect(() => q.register('h', () => undefined)).toThrow(expect.objectContaining({ option: 'name' }));
        expect(() => q.register('x', 'nope' as never)).toThrow(expect.objectContaining({ option: 'x.handler' }));
      });
    });
  });
}
