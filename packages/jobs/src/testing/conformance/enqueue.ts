/**
 * Job queue conformance: enqueue and run.
 *
 * @module
 */

import { describe, expect, it } from 'vitest';
import type { JobContext } from '../../job.js';
import { type Anything, type ConformanceKit, eventLog, gate } from './kit.js';

/** The cases of "enqueue and run". */
export function describeEnqueue(kit: ConformanceKit): void {
  const { slack, has, advance, until, queue, feature } = kit;
  describe('enqueue and run', () => {
    it('runs a performed job once, with a JSON copy of its args and a full context', async () => {
      const q = await queue();
      const seen: { args: Anything; ctx: JobContext; owned: boolean; aborted: boolean }[] = [];
      q.register('echo', (args, ctx) => {
        seen.push({ args, ctx, owned: ctx.owned, aborted: ctx.signal.aborted });
      });
      await q.start();
      const args = { a: 1, nested: { list: [1, 'x', null, true], empty: {} }, text: 'ünïcødé', skip: undefined };
      const before = Date.now();
      const result = await q.perform({ handler: 'echo', args, key: 'k-1' });
      args.a = 2; // a later change by the caller must not reach the job
      expect(result.id).toMatch(/^[A-Za-z0-9_-]{21}$/);
      expect(result.duplicate).toBe(false);
      await until(() => seen.length === 1, 1000, 'the job ran');
      await advance(100);
      expect(seen).toHaveLength(1);
      const [run] = seen;
      expect(run?.args).toEqual({ a: 1, nested: { list: [1, 'x', null, true], empty: {} }, text: 'ünïcødé' });
      expect(run?.ctx).toMatchObject({ id: result.id, handler: 'echo', queue: 'default', key: 'k-1', attempt: 1 });
      expect(run?.ctx.enqueuedAt.getTime()).toBeGreaterThanOrEqual(before - slack);
      expect(run?.ctx.scheduledAt.getTime()).toBeGreaterThanOrEqual(run?.ctx.enqueuedAt.getTime() ?? 0);
      expect(run?.owned).toBe(true);
      expect(run?.aborted).toBe(false);
      expect(q.status()).toMatchObject({ state: 'running', consuming: true, handlers: ['echo'] });
    });

    it('routes a job to the queue its registration names, unless the job names one', async () => {
      const q = await queue();
      const queues: string[] = [];
      q.register('mail', (_args, ctx) => void queues.push(ctx.queue), { queue: 'mailers' });
      // A process consumes the queues its registrations name: 'urgent' is one of them here.
      q.register('page', () => undefined, { queue: 'urgent' });
      await q.start();
      await q.perform({ handler: 'mail' });
      await q.perform({ handler: 'mail', queue: 'urgent' });
      await until(() => queues.length === 2, 1000, 'both ran');
      expect(queues.sort()).toEqual(['mailers', 'urgent']);
    });

    it('performMany enqueues every job of a batch, with ids in input order', async () => {
      const q = await queue();
      const ran: number[] = [];
      q.register('n', (args) => void ran.push(args.n as number));
      await q.start();
      const results = await q.performMany(Array.from({ length: 20 }, (_, n) => ({ handler: 'n', args: { n } })));
      expect(results).toHaveLength(20);
      expect(new Set(results.map((r) => r.id)).size).toBe(20);
      await until(() => ran.length === 20, 2000, 'all 20 ran');
      expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    });

    feature('jobId', 'a caller-chosen id: the job runs once however often it is performed with that id', async () => {
      const q = await queue();
      const ran: string[] = [];
      const hold = gate();
      q.register('pay', async (_args, ctx) => {
        ran.push(ctx.id);
        await hold.promise;
      });
      const log = eventLog(q);
      await q.start();
      const id = `order-42:pay/${kit.namespace}`;
      expect(await q.perform({ handler: 'pay', args: { n: 1 } }, { id })).toEqual({ id, duplicate: false });
      await until(() => ran.length === 1, 1000, 'the job started');
      // While it runs…
      expect(await q.perform({ handler: 'pay', args: { n: 2 } }, { id })).toEqual({ id, duplicate: true });
      hold.open();
      await until(() => log.includes(`completed:${id}:1`), 1000, 'the job completed');
      // …and after it completed (within the idempotency window), also inside a batch.
      expect(await q.perform({ handler: 'pay' }, { id })).toEqual({ id, duplicate: true });
      const other = `order-43:pay/${kit.namespace}`;
      expect(
        await q.performMany([
          { handler: 'pay', id },
          { handler: 'pay', id: other },
        ]),
      ).toEqual([
        { id, duplicate: true },
        { id: other, duplicate: false },
      ]);
      await until(() => ran.length === 2, 1000, 'the other job ran');
      await advance(200);
      expect(ran).toEqual([id, other]);
    });

    it('refuses a malformed id, a repeated id in a batch, or a job field it does not know, naming it', async () => {
      const q = await queue();
      q.register('n', () => undefined);
      await q.start();
      for (const id of ['', 'has space', 'x'.repeat(201), 7]) {
        await expect(q.perform({ handler: 'n' }, { id: id as string })).rejects.toThrow(
          expect.objectContaining({ name: 'InvalidJobError', path: 'options.id' }),
        );
      }
      await expect(q.perform({ handler: 'n', id: 'a' } as never)).rejects.toThrow(
        expect.objectContaining({
          name: 'InvalidJobError',
          path: 'job.id',
          message: expect.stringMatching(/perform\(job, \{ id \}\)/),
        }),
      );
      await expect(q.perform({ handler: 'n', priority: 2 } as never)).rejects.toThrow(
        expect.objectContaining({
          name: 'InvalidJobError',
          path: 'job.priority',
          message: expect.stringMatching(/perform\(job, \{ priority \}\)/),
        }),
      );
      for (const priority of [0, 1.5, '5', 100_001, Number.NaN]) {
        await expect(q.perform({ handler: 'n' }, { priority: priority as number })).rejects.toThrow(
          expect.objectContaining({ name: 'InvalidJobError', path: 'options.priority' }),
        );
      }
      await expect(q.performMany([{ handler: 'n' }, { handler: 'n', priority: -1 }])).rejects.toThrow(
        expect.objectContaining({ name: 'InvalidJobError', path: 'jobs[1].priority' }),
      );
      await expect(
        q.performMany([
          { handler: 'n', id: 'same' },
          { handler: 'n', id: 'same' },
        ]),
      ).rejects.toThrow(expect.objectContaining({ name: 'InvalidJobError', path: 'jobs[1].id' }));
    });

    it('performMany enqueues nothing when one job of the batch is invalid, naming it', async () => {
      const q = await queue();
      let ran = 0;
      q.register('n', () => void ran++);
      await q.start();
      const batch = [{ handler: 'n' }, { handler: 'n' }, { handler: 'n', args: { when: new Date() } }];
      await expect(q.performMany(batch as never)).rejects.toThrow(
        expect.objectContaining({ name: 'InvalidJobArgsError', path: 'jobs[2].args.when' }),
      );
      await advance(200);
      expect(ran).toBe(0);
      if (has('admin')) expect((await q.stats()).total.ready).toBe(0);
    });

    feature(
      'transactionalEnqueue',
      "enqueues inside the caller's transaction: a job exists if and only if it commits",
      async () => {
        const q = await queue();
        const ran: number[] = [];
        q.register('tx', (args) => void ran.push(args.n as number));
        await q.start();
        const open = kit.harness.transaction;
        if (open === undefined) throw new Error('unreachable: the feature needs harness.transaction');
        const committed = await open(kit.namespace);
        const { id } = await q.perform({ handler: 'tx', args: { n: 1 } }, { client: committed.client });
        const many = await q.performMany(
          [2, 3].map((n) => ({ handler: 'tx', args: { n } })),
          { client: committed.client },
        );
        expect(many.map((r) => r.duplicate)).toEqual([false, false]);
        await advance(300);
        expect(ran).toEqual([]); // not before the commit: other sessions cannot see the jobs yet
        if (has('lookup')) expect(await q.getJob(id)).toBeUndefined();
        await committed.commit();
        await until(() => ran.length === 3, 2000, 'the committed jobs ran');
        const rolledBack = await open(kit.namespace);
        const gone = await q.perform({ handler: 'tx', args: { n: 4 } }, { client: rolledBack.client });
        await rolledBack.rollback();
        await advance(500);
        expect(ran.sort()).toEqual([1, 2, 3]);
        if (has('lookup')) expect(await q.getJob(gone.id)).toBeUndefined();
        await expect(q.performAndWait({ handler: 'tx' }, { client: committed.client })).rejects.toThrow(/commit/);
        await expect(q.perform({ handler: 'tx' }, { client: 'a client' as never })).rejects.toThrow(/options\.client/);
      },
    );
  });
}
