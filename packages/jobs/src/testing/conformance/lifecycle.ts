/**
 * Job queue conformance: lifecycle and graceful stop.
 *
 * @module
 */

import { IllegalStateError, sleep } from '@shardwork/core';
import { describe, expect, it, vi } from 'vitest';
import type { JobQueueEventMap } from '../../events.js';
import { type ConformanceKit, eventLog } from './kit.js';

/** The cases of "lifecycle and graceful stop". */
export function describeLifecycle(kit: ConformanceKit): void {
  const { harness, fake, slack, has, advance, until, queue, stop } = kit;
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
}
