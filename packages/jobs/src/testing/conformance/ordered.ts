/**
 * Job queue conformance: ordering per key.
 *
 * @module
 */

import { sleep } from '@shardwork/core';
import { describe, expect } from 'vitest';
import type { ConformanceKit } from './kit.js';

/** The cases of "ordering per key". */
export function describeOrdered(kit: ConformanceKit): void {
  const { until, queue, feature } = kit;
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
}
