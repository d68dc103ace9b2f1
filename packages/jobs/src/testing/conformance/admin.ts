/**
 * Job queue conformance: pause and the admin API.
 *
 * @module
 */

import { describe, expect } from 'vitest';
import { JobNotFoundError } from '../../errors.js';
import type { ConformanceKit } from './kit.js';

/** The cases of "pause and the admin API". */
export function describeAdmin(kit: ConformanceKit): void {
  const { has, advance, until, queue, feature } = kit;
  describe('pause and the admin API', () => {
    feature('pause', 'refuses to pause a handler nothing knows (a typo), unless forced', async () => {
      const q = await queue();
      q.register('mail', () => undefined);
      await q.start();
      await expect(q.pause('mial')).rejects.toThrow(
        expect.objectContaining({ name: 'UnknownHandlerError', message: expect.stringMatching(/force: true/) }),
      );
      await q.pause('mail');
      await q.pause('later', { force: true });
      await q.unpause('mail');
      await q.unpause('later');
    });

    feature('pause', 'pauses and unpauses one handler while others run', async () => {
      const q = await queue();
      const ran: string[] = [];
      q.register('a', () => void ran.push('a'));
      q.register('b', () => void ran.push('b'));
      await q.pause('a');
      await q.start();
      await q.perform({ handler: 'a' });
      await q.perform({ handler: 'b' });
      await until(() => ran.includes('b'), 1000, 'b ran');
      await advance(300);
      expect(ran).toEqual(['b']);
      if (has('admin')) {
        const stats = await q.stats();
        expect(stats.handlers.a).toMatchObject({ paused: true, ready: 1 });
      }
      await q.unpause('a');
      await until(() => ran.includes('a'), 1000, 'a ran after unpause');
    });

    feature('pause', 'pauses and unpauses a whole queue while other queues run', async () => {
      const q = await queue();
      const ran: string[] = [];
      q.register('mail', (args) => void ran.push(String(args.q)), { queue: 'mail' });
      q.register('other', () => void ran.push('other'));
      await q.start();
      await q.pauseQueue('mail');
      await q.perform({ handler: 'mail', args: { q: 'mail' } });
      await q.perform({ handler: 'other' });
      await until(() => ran.includes('other'), 2000, 'the other queue ran');
      await advance(300);
      expect(ran).toEqual(['other']);
      if (has('admin')) {
        const stats = await q.stats();
        expect(stats.pausedQueues).toEqual(['mail']);
        expect(stats.handlers.mail?.paused).toBe(false);
      }
      await q.unpauseQueue('mail');
      await until(() => ran.includes('mail'), 2000, 'the paused queue ran after unpause');
      await expect(q.pauseQueue('no spaces')).rejects.toThrow(/queue name/);
    });

    feature('admin', 'counts completed and failed attempts per queue and minute (throughput)', async () => {
      const q = await queue();
      let fail = true;
      q.register(
        't',
        () => {
          if (fail) {
            fail = false;
            throw new Error('once');
          }
        },
        { queue: 'tp', backoff: () => 10 },
      );
      await q.start();
      for (let i = 0; i < 3; i++) await q.perform({ handler: 't' });
      const sum = async (): Promise<{ completed: number; failed: number }> => {
        const [series] = await q.throughput({ queue: 'tp', minutes: 5 });
        expect(series?.points).toHaveLength(5);
        return {
          completed: series?.points.reduce((n, p) => n + p.completed, 0) ?? 0,
          failed: series?.points.reduce((n, p) => n + p.failed, 0) ?? 0,
        };
      };
      await until(async () => (await sum()).completed === 3, 10_000, '3 completions counted');
      expect(await sum()).toEqual({ completed: 3, failed: 1 });
      const [series] = await q.throughput({ queue: 'tp', minutes: 5 });
      const ats = series?.points.map((p) => p.at) ?? [];
      expect(ats.every((at, i) => i === 0 || at - (ats[i - 1] ?? 0) === 60_000)).toBe(true);
      await expect(q.throughput({ minutes: 0 })).rejects.toThrow(/minutes/);
    });

    feature('admin', 'counts jobs by state, lists dead jobs in pages, retries and deletes them', async () => {
      const q = await queue();
      const fixed = { now: false };
      const completed: string[] = [];
      q.on('job:completed', ({ job }) => completed.push(job.id));
      const dead: string[] = [];
      q.on('job:dead', ({ job }) => dead.push(job.id));
      q.register(
        'fragile',
        (args) => {
          if (!fixed.now) throw new Error(`broken ${String(args.n)}`);
        },
        { maxFails: 1 },
      );
      q.register('idle', () => undefined);
      await q.start();
      const ids = (await q.performMany([1, 2, 3].map((n) => ({ handler: 'fragile', args: { n } })))).map((r) => r.id);
      if (has('scheduled')) await q.performIn({ handler: 'idle', queue: 'later' }, 60_000);
      await until(() => dead.length === 3, 1500, 'three jobs died');
      const stats = await q.stats();
      expect(stats.total.dead).toBe(3);
      expect(stats.handlers.fragile?.dead).toBe(3);
      if (has('scheduled')) {
        expect(stats.total.scheduled).toBe(1);
        expect(stats.queues.later?.scheduled).toBe(1);
        expect((await q.list('scheduled')).jobs[0]).toMatchObject({ handler: 'idle', queue: 'later' });
      }
      const page1 = await q.list('dead', { limit: 2 });
      const page2 = await q.list('dead', { limit: 2, offset: 2 });
      expect(page1.total).toBe(3);
      expect(page1.jobs).toHaveLength(2);
      expect(page2.jobs).toHaveLength(1);
      expect([...page1.jobs, ...page2.jobs].map((j) => j.id).sort()).toEqual([...ids].sort());
      expect(page1.jobs[0]?.lastError?.message).toMatch(/^broken \d$/);
      fixed.now = true;
      const attempts: number[] = [];
      q.on('job:started', ({ job, attempt }) => job.id === ids[0] && attempts.push(attempt));
      expect(await q.retryDead(ids[0])).toBe(1);
      await until(() => completed.includes(ids[0] as string), 1000, 'the retried job completed');
      expect(attempts).toEqual([1]); // a retried dead job gets a full set of attempts
      await expect(q.retryDead('no-such-job')).rejects.toThrow(JobNotFoundError);
      expect(await q.deleteDead(ids[1])).toBe(1);
      const progress: number[] = [];
      expect(await q.retryDead(undefined, { onProgress: (done) => progress.push(done) })).toBe(1);
      expect(progress.at(-1)).toBe(1);
      await until(() => completed.includes(ids[2] as string), 1000, 'the last one completed');
      expect(await q.deleteDead()).toBe(0);
      expect((await q.stats()).total.dead).toBe(0);
    });
  });
}
