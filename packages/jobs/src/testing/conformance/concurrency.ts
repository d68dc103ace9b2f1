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
  const { until, queue, feature } = kit;
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
}
