/**
 * Job queue conformance: priorities and concurrency.
 *
 * @module
 */

import { sleep } from '@shardwork/core';
import { describe, expect, it } from 'vitest';
import type { ConformanceKit } from './kit.js';

/** The cases of "priorities and concurrency". */
export function describeConcurrency(kit: ConformanceKit): void {
  const { until, queue, feature, has } = kit;
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
      'jobPriority',
      "a job's own priority weighs it in the draw, ready or due, and survives a retry; cancel and list find it",
      async () => {
        const q = await queue({ concurrency: 1 });
        const order: string[] = [];
        let failOnce = true;
        q.register(
          'work',
          (args) => {
            if (args.flaky === true && failOnce) {
              failOnce = false;
              throw new Error('first try fails');
            }
            order.push(String(args.tag));
          },
          { maxFails: 3, backoff: () => 50 },
        );
        // One key: one partition on adapters with partitions, where the draw is per partition.
        const key = 'one-partition';
        const enqueued = await q.performMany([
          ...Array.from({ length: 30 }, () => ({ handler: 'work', key, args: { tag: 'plain' } })),
          ...Array.from({ length: 10 }, () => ({ handler: 'work', key, args: { tag: 'urgent' }, priority: 100 })),
        ]);
        const flaky = await q.perform({ handler: 'work', key, args: { tag: 'flaky', flaky: true } }, { priority: 100 });
        const due = await q.performIn({ handler: 'work', key, args: { tag: 'due' } }, 100, { priority: 100 });
        const dropped = enqueued[39]?.id ?? '';
        let expected = 42;
        if (has('cancel')) {
          if (has('admin')) {
            const ready = (await q.list('ready', { limit: 100 })).jobs.map((j) => j.id);
            expect(ready).toEqual(expect.arrayContaining([dropped, flaky.id]));
            expect(ready).toHaveLength(41);
          }
          expect(await q.cancel(dropped)).toMatchObject({ state: 'ready', cancelled: true });
          expected = 41;
        }
        if (has('lookup')) {
          // A changed job keeps its priority.
          await q.update(due.id, { args: { tag: 'due' } });
          expect(await q.getJob(due.id)).toMatchObject({ state: 'scheduled', priority: 100 });
          expect((await q.getJob(enqueued[0]?.id ?? ''))?.priority).toBe(1);
        }
        await q.start();
        await until(() => order.length === expected, 10_000, `all ${expected} ran`);
        const urgent = order.slice(0, 15).filter((t) => t === 'urgent' || t === 'flaky').length;
        expect(urgent).toBeGreaterThanOrEqual(8);
        expect(order).toEqual(expect.arrayContaining(['due', 'flaky']));
        expect(order.filter((t) => t === 'urgent')).toHaveLength(expected === 41 ? 9 : 10);
        if (has('lookup')) expect(await q.getJob(flaky.id)).toMatchObject({ fails: 1, priority: 100 });
      },
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
}
