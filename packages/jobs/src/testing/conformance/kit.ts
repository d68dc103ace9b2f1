/**
 * The kit every conformance file uses: the harness an adapter gives, a fresh
 * namespace per test, queues that are stopped after each test, time that
 * passes (fake timers advanced, or real ones slept through), and `feature()`,
 * which turns a case into a check of the refusal where the adapter lacks the
 * feature.
 *
 * @module
 */

import { sleep } from '@shardwork/core';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { JobFeature } from '../../errors.js';
import { UnsupportedFeatureError } from '../../errors.js';
import type { JobQueueOptions, RegisterOptions } from '../../options.js';
import type { JobQueue } from '../../queue.js';

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
  /**
   * Open a transaction on a client of the store of `namespace`, for adapters
   * that accept `perform(job, { client })`; without it the suite checks that
   * the adapter refuses a client (`transactionalEnqueue`).
   */
  transaction?(namespace: string): Promise<HarnessTransaction>;
}

/** A transaction the harness opened, as `perform(job, { client })` takes it. */
export interface HarnessTransaction {
  /** The client, inside the transaction. */
  readonly client: object;
  /** Commit and release the client. */
  commit(): Promise<void>;
  /** Roll back and release the client. */
  rollback(): Promise<void>;
}

/** Any args object. */
export type Anything = Record<string, unknown>;

/** What a recorded event looks like: `started:<id>:1`. */
export function eventLog(queue: JobQueue): string[] {
  const log: string[] = [];
  queue.on('job:enqueued', ({ job }) => log.push(`enqueued:${job.id}`));
  queue.on('job:started', ({ job, attempt }) => log.push(`started:${job.id}:${attempt}`));
  queue.on('job:completed', ({ job, attempt }) => log.push(`completed:${job.id}:${attempt}`));
  queue.on('job:failed', ({ job, attempt }) => log.push(`failed:${job.id}:${attempt}`));
  queue.on('job:dead', ({ job, attempt }) => log.push(`dead:${job.id}:${attempt}`));
  return log;
}

/** A promise and its resolver, to hold a handler until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** What a conformance file gets from {@link conformanceKit}. */
export interface ConformanceKit {
  readonly harness: JobQueueHarness;
  /** Run on fake timers. */
  readonly fake: boolean;
  /** Slack added to every time bound, ms. */
  readonly slack: number;
  /** This test's namespace (one store per test). */
  readonly namespace: string;
  /** Whether the adapter offers `feature`. */
  has(feature: JobFeature): boolean;
  /** Let `ms` pass: fake timers advance, real ones are slept through. */
  advance(ms: number): Promise<unknown>;
  /** Poll `check` until it holds, letting time pass in small steps. */
  until(check: () => boolean | Promise<boolean>, withinMs: number, what: string): Promise<void>;
  /** A queue on this test's namespace, stopped after the test. */
  queue(options?: JobQueueOptions): Promise<JobQueue>;
  /** Stop `q` after the test too (a queue made by the harness directly); returns it. */
  adopt(q: JobQueue): JobQueue;
  /** Stop a queue, advancing fake time past its timeout. */
  stop(q: JobQueue, timeoutMs?: number): ReturnType<JobQueue['stop']>;
  /** A case that needs `feature`; where the adapter lacks it, the case checks the refusal instead. */
  feature(name: JobFeature, title: string, run: () => Promise<void>, options?: RegisterOptions): void;
}

let namespaceSeq = 0;

/** Register the hooks of one adapter's suite (call inside its `describe`) and return the kit. */
export function conformanceKit(harness: JobQueueHarness): ConformanceKit {
  const fake = harness.fakeTime === true;
  const slack = harness.slackMs ?? (fake ? 0 : 400);
  const unsupported = new Set(harness.unsupported ?? []);
  const has = (feature: JobFeature): boolean =>
    !unsupported.has(feature) && (feature !== 'transactionalEnqueue' || harness.transaction !== undefined);
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
      } else if (name === 'lookup') {
        await expect(q.getJob('job-1')).rejects.toThrow(/redis:\/\//);
      } else if (name === 'results') {
        await expect(q.waitFor('job-1')).rejects.toThrow(UnsupportedFeatureError);
      } else if (name === 'cancel') {
        await expect(q.cancel('job-1')).rejects.toThrow(UnsupportedFeatureError);
      } else if (name === 'jobId') {
        q.register('x', () => undefined);
        await expect(q.perform({ handler: 'x' }, { id: 'order-1' })).rejects.toThrow(UnsupportedFeatureError);
      } else if (name === 'transactionalEnqueue') {
        q.register('x', () => undefined);
        await expect(q.perform({ handler: 'x' }, { client: {} })).rejects.toThrow(/transactionalEnqueue/);
      } else if (name === 'jobPriority') {
        q.register('x', () => undefined);
        await expect(q.perform({ handler: 'x' }, { priority: 5 })).rejects.toThrow(UnsupportedFeatureError);
      }
    });
  }

  return {
    harness,
    fake,
    slack,
    get namespace() {
      return namespace;
    },
    has,
    advance,
    until,
    queue,
    adopt: (q) => {
      open.push(q);
      return q;
    },
    stop,
    feature,
  };
}
