/**
 * Job queue conformance: events.
 *
 * @module
 */

import { describe, expect, it } from 'vitest';
import { type ConformanceKit, eventLog } from './kit.js';

/** The cases of "events". */
export function describeEvents(kit: ConformanceKit): void {
  const { harness, until, queue } = kit;
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
      // Made by the harness directly: without the kit's own error listener.
      const q = kit.adopt(await harness.create({}, kit.namespace));
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
}
