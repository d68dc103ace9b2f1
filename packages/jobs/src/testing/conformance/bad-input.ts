/**
 * Job queue conformance: bad input is refused and loses nothing.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import { describe, expect, it } from 'vitest';
import { InvalidJobArgsError, InvalidJobError, JobArgsTooLargeError, UnknownHandlerError } from '../../errors.js';
import type { Anything, ConformanceKit } from './kit.js';

/** The cases of "bad input is refused and loses nothing". */
export function describeBadInput(kit: ConformanceKit): void {
  const { harness, has, advance, queue } = kit;
  describe('bad input is refused and loses nothing', () => {
    it.each<[string, string, unknown, RegExp]>([
      ['a Date', 'args.user.createdAt', { user: { createdAt: new Date(0) } }, /Date, not a plain object/],
      ['a BigInt', 'args.amount', { amount: 10n }, /BigInt/],
      ['a function', 'args.cb', { cb: () => 1 }, /function/],
      ['a class instance', 'args.m', { m: new Map() }, /Map/],
      ['NaN', 'args.list[1]', { list: [1, Number.NaN] }, /NaN/],
      ['an array', 'args', [1, 2], /an array/],
      ['a sparse array', 'args.list[1]', { list: Object.assign([1], { 2: 3 }) }, /hole/],
    ])('refuses args with %s, naming %s', async (_what, path, args, message) => {
      const q = await queue();
      let ran = 0;
      q.register('h', () => void ran++);
      await q.start();
      const attempt = q.perform({ handler: 'h', args: args as never });
      await expect(attempt).rejects.toThrow(InvalidJobArgsError);
      await expect(q.perform({ handler: 'h', args: args as never })).rejects.toThrow(expect.objectContaining({ path }));
      await expect(q.perform({ handler: 'h', args: args as never })).rejects.toThrow(message);
      await advance(100);
      expect(ran).toBe(0);
    });

    it('refuses args with a cycle, and args over maxArgsBytes naming the largest field', async () => {
      const q = await queue({ maxArgsBytes: 1000 });
      q.register('h', () => undefined);
      const cyclic: Anything = { a: {} };
      (cyclic.a as Anything).back = cyclic;
      await expect(q.perform({ handler: 'h', args: cyclic })).rejects.toThrow(
        expect.objectContaining({ path: 'args.a.back' }),
      );
      const big = q.perform({ handler: 'h', args: { small: 1, html: 'x'.repeat(2000) } });
      await expect(big).rejects.toThrow(JobArgsTooLargeError);
      await expect(q.perform({ handler: 'h', args: { html: 'x'.repeat(2000) } })).rejects.toThrow(/args\.html/);
      if (has('admin')) expect((await q.stats()).total.ready).toBe(0);
    });

    it(
      harness.refusesUnknownHandlers
        ? 'refuses a job for a handler it has not registered'
        : 'keeps a job for a handler no consumer has registered waiting, and shows it in stats',
      async () => {
        const q = await queue();
        q.register('known', () => undefined);
        await q.start();
        if (harness.refusesUnknownHandlers) {
          await expect(q.perform({ handler: 'unknown_one' })).rejects.toThrow(UnknownHandlerError);
          await expect(q.performIn({ handler: 'unknown_one' }, 1000)).rejects.toThrow(UnknownHandlerError);
          await expect(q.perform({ handler: 'unknown_one' })).rejects.toThrow(/registered: known/);
        } else {
          const dead: string[] = [];
          q.on('job:dead', ({ job }) => dead.push(job.id));
          await q.perform({ handler: 'unknown_one' });
          await advance(300);
          expect(dead).toEqual([]);
          if (has('admin')) expect((await q.stats()).handlers.unknown_one?.ready).toBe(1);
        }
      },
    );

    it.each<[string, string, Anything]>([
      ['an empty handler name', 'job.handler', { handler: '' }],
      ['a handler name with spaces', 'job.handler', { handler: 'send email' }],
      ['a bad queue name', 'job.queue', { handler: 'h', queue: 'a/b' }],
      ['an empty key', 'job.key', { handler: 'h', key: '' }],
      ['a numeric key', 'job.key', { handler: 'h', key: 42 }],
    ])('refuses a job with %s, naming %s', async (_what, path, job) => {
      const q = await queue();
      q.register('h', () => undefined);
      await expect(q.perform(job as never)).rejects.toThrow(InvalidJobError);
      await expect(q.perform(job as never)).rejects.toThrow(expect.objectContaining({ path }));
    });

    it('refuses bad due times', async () => {
      const q = await queue();
      q.register('h', () => undefined);
      await expect(q.performIn({ handler: 'h' }, -1)).rejects.toThrow(InvalidJobError);
      await expect(q.performIn({ handler: 'h' }, Number.NaN)).rejects.toThrow(InvalidJobError);
      await expect(q.performAt({ handler: 'h' }, new Date('not a date'))).rejects.toThrow(InvalidJobError);
    });

    it.each<[string, string, Anything]>([
      ['maxFails 0', 'h.maxFails', { maxFails: 0 }],
      ['a fractional maxFails', 'h.maxFails', { maxFails: 1.5 }],
      ['priority 0', 'h.priority', { priority: 0 }],
      ['priority above 100000', 'h.priority', { priority: 100_001 }],
      ['a negative timeout', 'h.timeoutMs', { timeoutMs: -1 }],
      ['a negative maxConcurrency', 'h.maxConcurrency', { maxConcurrency: -1 }],
      ['unique as a string', 'h.unique', { unique: 'yes' }],
      ['ordered as a number', 'h.ordered', { ordered: 1 }],
      ['backoff with maximumAttempts', 'h.backoff.maximumAttempts', { backoff: { maximumAttempts: 3 } }],
      ['backoff with a coefficient below 1', 'h.backoff.backoffCoefficient', { backoff: { backoffCoefficient: 0.5 } }],
      ['an unknown option', 'h.retries', { retries: 3 }],
      ['a bad queue', 'h.queue', { queue: '' }],
    ])('refuses register with %s, naming %s', async (_what, option, options) => {
      const q = await queue();
      expect(() => q.register('h', () => undefined, options as never)).toThrow(InvalidOptionsError);
      expect(() => q.register('h', () => undefined, options as never)).toThrow(expect.objectContaining({ option }));
    });

    it('refuses a second registration of a name and a handler that is not a function', async () => {
      const q = await queue();
      q.register('h', () => undefined);
      expect(() => q.register('h', () => undefined)).toThrow(expect.objectContaining({ option: 'name' }));
      expect(() => q.register('x', 'nope' as never)).toThrow(expect.objectContaining({ option: 'x.handler' }));
    });
  });
}
