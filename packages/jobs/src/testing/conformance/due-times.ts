/**
 * Job queue conformance: due times.
 *
 * @module
 */

import { describe, expect } from 'vitest';
import type { ConformanceKit } from './kit.js';

/** The cases of "due times". */
export function describeDueTimes(kit: ConformanceKit): void {
  const { advance, until, queue, feature } = kit;
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
}
