/**
 * Job queue conformance: middleware.
 *
 * @module
 */

import { describe, expect, it } from 'vitest';
import { type ConformanceKit, eventLog } from './kit.js';

/** The cases of "middleware". */
export function describeMiddleware(kit: ConformanceKit): void {
  const { until, queue } = kit;
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
}
