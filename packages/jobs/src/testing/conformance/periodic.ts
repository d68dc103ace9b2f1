/**
 * Job queue conformance: periodic jobs.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import { describe, expect, it } from 'vitest';
import { InvalidJobArgsError } from '../../errors.js';
import type { ConformanceKit } from './kit.js';

/** The cases of "periodic jobs". */
export function describePeriodic(kit: ConformanceKit): void {
  const { harness, advance, until, queue } = kit;
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
}
