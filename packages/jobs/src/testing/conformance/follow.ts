/**
 * Job queue conformance: following and steering one job: `getJob`, results
 * kept per `keepCompleted`, `waitFor` and `performAndWait`, `ctx.progress`,
 * and `cancel` of waiting and running jobs.
 *
 * @module
 */

import { describe, expect } from 'vitest';
import {
  InvalidJobError,
  JobCancelledError,
  JobDeadError,
  JobNotFoundError,
  JobStateError,
  JobWaitTimeoutError,
} from '../../errors.js';
import { type ConformanceKit, gate } from './kit.js';

/** The cases of "following and steering a job". */
export function describeFollow(kit: ConformanceKit): void {
  const { advance, until, queue, feature, has } = kit;
  /** `p` once it settles, letting time pass meanwhile (fake timers run only when advanced). */
  const settled = async <T>(p: Promise<T>, withinMs = 5000): Promise<T> => {
    let done = false;
    p.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    await until(() => done, withinMs, 'a wait settled');
    return p;
  };
  describe('following and steering a job', () => {
    feature('lookup', 'looks a job up by id in every state, with its result once completed', async () => {
      const q = await queue();
      const held = gate();
      let fail = true;
      q.register(
        'work',
        async (args, ctx) => {
          if (args.hold === true) await held.promise;
          if (args.flaky === true && fail) {
            fail = false;
            throw new Error('first try fails');
          }
          return { doubled: Number(args.n) * 2, attempt: ctx.attempt };
        },
        { maxFails: 3, backoff: () => 200 },
      );
      expect(await q.getJob('no-such-job')).toBeUndefined();
      const later = await q.performIn({ handler: 'work', args: { n: 1 } }, 60_000);
      const scheduled = await q.getJob(later.id);
      expect(scheduled).toMatchObject({
        id: later.id,
        handler: 'work',
        queue: 'default',
        args: { n: 1 },
        state: 'scheduled',
        attempt: 0,
        fails: 0,
        maxFails: 3,
        result: undefined,
        finishedAt: undefined,
      });
      expect(scheduled?.scheduledAt).toBeGreaterThan(Date.now() + 50_000);
      await q.start();
      const running = await q.perform({ handler: 'work', args: { n: 2, hold: true } });
      await until(async () => (await q.getJob(running.id))?.state === 'running', 2000, 'running');
      expect(await q.getJob(running.id)).toMatchObject({ state: 'running', attempt: 1 });
      // Adapters with partitions say which replica runs it.
      const runningJob = await q.getJob(running.id);
      if (runningJob?.partition !== undefined) expect(runningJob.owner).toEqual(expect.any(String));
      held.open();
      await until(async () => (await q.getJob(running.id))?.state === 'completed', 2000, 'completed');
      const done = await q.getJob(running.id);
      expect(done).toMatchObject({ state: 'completed', attempt: 1, fails: 0, result: { doubled: 4, attempt: 1 } });
      // A finished job still says which partition it was in.
      expect(done?.partition).toBe(runningJob?.partition);
      expect(done?.startedAt).toBeGreaterThan(0);
      expect(done?.finishedAt).toBeGreaterThanOrEqual(done?.startedAt ?? 0);
      const flaky = await q.perform({ handler: 'work', args: { n: 3, flaky: true } });
      await until(async () => (await q.getJob(flaky.id))?.state === 'retrying', 2000, 'retrying');
      expect(await q.getJob(flaky.id)).toMatchObject({
        state: 'retrying',
        fails: 1,
        error: { name: 'Error', message: 'first try fails' },
      });
      await until(async () => (await q.getJob(flaky.id))?.state === 'completed', 3000, 'completed on retry');
      expect(await q.getJob(flaky.id)).toMatchObject({ fails: 1, attempt: 2, result: { doubled: 6, attempt: 2 } });
      await expect(q.getJob('has space')).rejects.toThrow(InvalidJobError);
    });

    feature('results', 'waitFor resolves with the result, also for a job that finished before the call', async () => {
      const q = await queue();
      q.register('add', (args) => Number(args.a) + Number(args.b));
      q.register('nothing', () => undefined);
      await q.start();
      const { id } = await q.perform({ handler: 'add', args: { a: 2, b: 3 } });
      expect(await settled(q.waitFor(id, { timeoutMs: 5000 }))).toBe(5);
      // Again, long after it finished.
      await advance(200);
      expect(await settled(q.waitFor(id))).toBe(5);
      const none = await q.perform({ handler: 'nothing' });
      expect(await settled(q.waitFor(none.id, { timeoutMs: 5000 }))).toBeNull();
      expect(await settled(q.performAndWait({ handler: 'add', args: { a: 20, b: 22 } }, { timeoutMs: 5000 }))).toBe(42);
      await expect(q.waitFor('never-enqueued')).rejects.toThrow(JobNotFoundError);
      const listed = await q.list('completed');
      expect(listed.total).toBe(3);
      expect(listed.jobs.map((j) => j.state)).toEqual(['completed', 'completed', 'completed']);
    });

    feature('results', 'waitFor rejects with the dead job error, on its timeout and on its signal', async () => {
      const q = await queue();
      const held = gate();
      q.register(
        'broken',
        () => {
          throw new Error('disk full');
        },
        { maxFails: 1 },
      );
      q.register('slow', () => held.promise);
      q.register('odd', () => new Date(0));
      await q.start();
      const broken = await q.perform({ handler: 'broken' });
      const dead = await settled(q.waitFor(broken.id, { timeoutMs: 5000 })).catch((error: unknown) => error);
      expect(dead).toBeInstanceOf(JobDeadError);
      expect(dead).toMatchObject({ lastError: { name: 'Error', message: 'disk full' } });
      expect((dead as Error).message).toContain('disk full');
      const slow = await q.perform({ handler: 'slow' });
      const timedOut = q.waitFor(slow.id, { timeoutMs: 100 }).catch((error: unknown) => error);
      await advance(150);
      expect(await timedOut).toBeInstanceOf(JobWaitTimeoutError);
      const controller = new AbortController();
      const aborted = q.waitFor(slow.id, { signal: controller.signal }).catch((error: unknown) => error);
      controller.abort(new Error('client went away'));
      expect(await aborted).toMatchObject({ message: 'client went away' });
      held.open();
      expect(await settled(q.waitFor(slow.id, { timeoutMs: 5000 }))).toBeNull();
      // A result that is not JSON fails the job for good, naming the handler.
      const odd = await q.perform({ handler: 'odd' });
      const invalid = await settled(q.waitFor(odd.id, { timeoutMs: 5000 })).catch((error: unknown) => error);
      expect(invalid).toBeInstanceOf(JobDeadError);
      expect(invalid).toMatchObject({ lastError: { name: 'InvalidJobResultError' } });
      expect((invalid as Error).message).toMatch(/handler "odd".*Date/);
    });

    feature('results', 'keeps completed jobs per keepCompleted: the newest count, or none', async () => {
      const some = await queue({ keepCompleted: { count: 2 } });
      some.register('x', (args) => args.n);
      await some.start();
      const ids: string[] = [];
      for (let n = 0; n < 4; n++) {
        const { id } = await some.perform({ handler: 'x', args: { n } });
        expect(await settled(some.waitFor(id, { timeoutMs: 5000 }))).toBe(n);
        ids.push(id);
      }
      const page = await some.list('completed');
      expect(page.jobs.map((j) => j.id)).toEqual(ids.slice(2));
      expect(await some.getJob(ids[0] as string)).toBeUndefined();
      expect((await some.getJob(ids[3] as string))?.result).toBe(3);

      const none = await queue({ keepCompleted: false });
      const held = gate();
      // Its own queue: on a shared store the first queue's kept jobs are listed too.
      none.register(
        'y',
        async () => {
          await held.promise;
          return 'done';
        },
        { queue: 'keeps-none' },
      );
      await none.start();
      const { id } = await none.perform({ handler: 'y' });
      await until(async () => (await none.getJob(id))?.state === 'running', 3000, 'running');
      // A waiter that came before the job finished still gets its result.
      const waiting = none.waitFor(id, { timeoutMs: 5000 });
      await advance(200);
      held.open();
      expect(await settled(waiting)).toBe('done');
      expect(await none.getJob(id)).toBeUndefined();
      expect((await none.list('completed', { queue: 'keeps-none' })).total).toBe(0);
    });

    feature('lookup', 'stores progress with the job and emits job:progress; refuses bad progress', async () => {
      const q = await queue({ progressIntervalMs: 50 });
      const held = gate();
      const emitted: unknown[] = [];
      q.on('job:progress', ({ progress }) => emitted.push(progress));
      let refused: unknown;
      q.register('long', async (_args, ctx) => {
        ctx.progress(10);
        ctx.progress(20);
        ctx.progress({ step: 'copy', done: 3, of: 10 });
        try {
          ctx.progress(101);
        } catch (error) {
          refused = error;
        }
        await held.promise;
        return 'ok';
      });
      await q.start();
      const { id } = await q.perform({ handler: 'long' });
      await until(async () => (await q.getJob(id))?.progress !== undefined, 2000, 'first progress stored');
      await advance(100);
      await until(
        async () => JSON.stringify((await q.getJob(id))?.progress) === '{"step":"copy","done":3,"of":10}',
        2000,
        'the last progress stored after the interval',
      );
      expect(refused).toBeInstanceOf(InvalidJobError);
      // The first value at once, the rest merged into the last one.
      expect(emitted).toEqual([10, { step: 'copy', done: 3, of: 10 }]);
      held.open();
      expect(await settled(q.waitFor(id, { timeoutMs: 5000 }))).toBe('ok');
    });

    feature('lookup', 'promotes, reschedules and updates jobs that have not started; refuses the rest', async () => {
      const q = await queue();
      const ran: string[] = [];
      const held = gate();
      q.register('later', (args) => void ran.push(String(args.n)));
      q.register('busy', () => held.promise);
      await q.start();
      const a = await q.performIn({ handler: 'later', args: { n: 1 } }, 60_000);
      const b = await q.performIn({ handler: 'later', args: { n: 2 } }, 60_000);
      const c = await q.performIn({ handler: 'later', args: { n: 3 } }, 300);
      await q.update(a.id, { args: { n: 10 } });
      expect((await q.getJob(a.id))?.args).toEqual({ n: 10 });
      await q.promote(a.id);
      await until(() => ran.includes('10'), 2000, 'the promoted job ran with its new args');
      await q.reschedule(b.id, Date.now() + 200);
      await q.reschedule(c.id, new Date(Date.now() + 60_000));
      await until(() => ran.includes('2'), 3000, 'the rescheduled job ran at its new time');
      await advance(500);
      expect(ran).toEqual(['10', '2']);
      expect((await q.getJob(c.id))?.state).toBe('scheduled');
      expect((await q.getJob(c.id))?.scheduledAt).toBeGreaterThan(Date.now() + 50_000);
      // Wrong states and unknown ids: typed errors, nothing changed.
      const busy = await q.perform({ handler: 'busy' });
      await until(async () => (await q.getJob(busy.id))?.state === 'running', 2000, 'running');
      await expect(q.update(busy.id, { args: { n: 1 } })).rejects.toThrow(JobStateError);
      await expect(q.promote(busy.id)).rejects.toThrow(/running.*promote works on scheduled, retrying, ready/);
      await expect(q.reschedule(a.id, Date.now())).rejects.toThrow(JobStateError);
      await expect(q.promote('no-such-job')).rejects.toThrow(JobNotFoundError);
      await expect(q.update(c.id, { args: { when: new Date() } })).rejects.toThrow(/args\.when/);
      await expect(q.reschedule(c.id, Number.NaN)).rejects.toThrow(InvalidJobError);
      expect((await q.getJob(c.id))?.args).toEqual({ n: 3 });
      held.open();
    });

    feature('cancel', 'cancels waiting jobs: never run, unique key released, ordered key let through', async () => {
      const q = await queue();
      const ran: string[] = [];
      const cancelled: string[] = [];
      q.on('job:cancelled', ({ job, state }) => cancelled.push(`${job.id}:${state}`));
      q.register('later', (args) => void ran.push(String(args.n)));
      await q.start();
      const scheduled = await q.performIn({ handler: 'later', args: { n: 1 } }, 300);
      expect(await q.cancel(scheduled.id, { reason: 'not needed' })).toEqual({
        id: scheduled.id,
        state: 'scheduled',
        cancelled: true,
      });
      await advance(500);
      expect(ran).toEqual([]);
      expect(await q.getJob(scheduled.id)).toMatchObject({
        state: 'cancelled',
        error: { message: 'not needed' },
      });
      const waiting = await settled(q.waitFor(scheduled.id)).catch((error: unknown) => error);
      expect(waiting).toBeInstanceOf(JobCancelledError);
      expect(waiting).toMatchObject({ reason: 'not needed' });
      expect(cancelled).toEqual([`${scheduled.id}:scheduled`]);
      expect((await q.list('cancelled')).jobs.map((j) => j.id)).toEqual([scheduled.id]);
      // A second cancel says it had finished; an unknown id is refused.
      expect(await q.cancel(scheduled.id)).toEqual({ id: scheduled.id, state: 'cancelled', cancelled: false });
      await expect(q.cancel('no-such-job')).rejects.toThrow(JobNotFoundError);
      const done = await q.perform({ handler: 'later', args: { n: 2 } });
      await settled(q.waitFor(done.id, { timeoutMs: 5000 }));
      expect(await q.cancel(done.id)).toEqual({ id: done.id, state: 'completed', cancelled: false });
    });

    feature(
      'cancel',
      'a cancelled unique job releases its key; a cancelled ordered job lets the next run',
      async () => {
        const q = await queue();
        const ran: string[] = [];
        q.register('once', () => undefined, { unique: true });
        q.register('seq', (args) => void ran.push(String(args.n)), { ordered: true });
        const first = await q.performIn({ handler: 'once', args: { a: 1 } }, 60_000);
        expect((await q.performIn({ handler: 'once', args: { a: 1 } }, 60_000)).duplicate).toBe(true);
        await q.cancel(first.id);
        expect((await q.performIn({ handler: 'once', args: { a: 1 } }, 60_000)).duplicate).toBe(false);
        const a = await q.perform({ handler: 'seq', key: 'k', args: { n: 1 } });
        await q.perform({ handler: 'seq', key: 'k', args: { n: 2 } });
        await q.cancel(a.id);
        await q.start();
        await until(() => ran.length === 1, 2000, 'the second job of the key ran');
        await advance(200);
        expect(ran).toEqual(['2']);
      },
    );

    feature('cancel', 'cancels a running job: its signal aborts, and its completion is refused', async () => {
      const q = await queue();
      const held = gate();
      let signalReason: unknown;
      let ownedAfter: boolean | undefined;
      const completed: string[] = [];
      q.on('job:completed', ({ job }) => completed.push(job.id));
      let attempts = 0;
      q.register('stubborn', async (_args, ctx) => {
        attempts++;
        ctx.signal.addEventListener('abort', () => {
          signalReason = ctx.signal.reason;
        });
        await held.promise;
        ownedAfter = ctx.owned;
        return 'finished anyway';
      });
      await q.start();
      const { id } = await q.perform({ handler: 'stubborn' });
      await until(async () => (await q.getJob(id))?.state === 'running', 2000, 'running');
      // Waiting jobs only (a purge): the running job is left alone.
      expect(await q.cancel(id, { reason: 'purge', waitingOnly: true })).toEqual({
        id,
        state: 'running',
        cancelled: false,
      });
      await advance(100);
      expect(signalReason).toBeUndefined();
      expect((await q.getJob(id))?.state).toBe('running');
      const waiting = q.waitFor(id, { timeoutMs: 10_000 }).catch((error: unknown) => error);
      expect(await q.cancel(id, { reason: 'user asked' })).toEqual({ id, state: 'running', cancelled: true });
      await until(() => signalReason !== undefined, 3000, 'the handler saw its signal abort');
      expect(signalReason).toBeInstanceOf(JobCancelledError);
      held.open();
      await until(() => ownedAfter !== undefined, 2000, 'the handler finished');
      expect(ownedAfter).toBe(false);
      expect(await waiting).toBeInstanceOf(JobCancelledError);
      await until(async () => (await q.getJob(id))?.state === 'cancelled', 3000, 'cancelled');
      await advance(300);
      expect(await q.getJob(id)).toMatchObject({ state: 'cancelled', result: undefined });
      expect(completed).toEqual([]);
      expect(attempts).toBe(1);
      if (has('admin')) expect((await q.stats()).total.running).toBe(0);
    });
  });
}
