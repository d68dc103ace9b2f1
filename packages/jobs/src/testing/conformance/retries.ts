/**
 * Job queue conformance: retries and the dead set.
 *
 * @module
 */

import { NonRetryableError } from '@shardwork/core';
import { describe, expect, it } from 'vitest';
import { JobTimeoutError } from '../../errors.js';
import type { JobQueueEventMap } from '../../events.js';
import { type ConformanceKit, eventLog } from './kit.js';

/** The cases of "retries and the dead set". */
export function describeRetries(kit: ConformanceKit): void {
  const { slack, has, advance, until, queue, feature } = kit;
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
}
