/**
 * Cancel under faults, on Redis with consumer processes: a cancel racing the
 * job's completion, a cancel while the process that runs the job is
 * SIGSTOPped past its lease, and a kill -9 of the process that runs a
 * cancelled job. Whatever happens, a job that `cancel` reported cancelled
 * never records a completion, never runs again (one found running may still
 * start the attempt its consumer had fetched, before the cancel message
 * reaches it), ends `cancelled`, and every `waitFor` on it answers once, with
 * `JobCancelledError`; a job that `cancel` found finished keeps its result.
 */

import { sleep } from '@shardwork/core';
import { monotonicMs } from '@shardwork/core/testing';
import { type CancelResult, JobCancelledError } from '@shardwork/jobs';
import { until } from '@shardwork/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { JobCluster } from './support/job-faults.js';

const TTL = 1000;
let cluster: JobCluster | undefined;

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** Settle every promise, keeping how each ended. */
function outcome(p: Promise<unknown>): Promise<{ ok: boolean; value: unknown }> {
  return p.then(
    (value) => ({ ok: true, value }),
    (value: unknown) => ({ ok: false, value }),
  );
}

/** The replica that started `id` last, by the pid in its start record. */
async function runnerOf(c: JobCluster, id: string): Promise<number> {
  let index = -1;
  await until(
    () => {
      const start = c.records().findLast((r) => r.k === 'start' && r.id === id);
      index = start === undefined ? -1 : c.replicas.findIndex((r) => r.pid === start.pid);
      return index >= 0;
    },
    20_000,
    `job ${id} started`,
  );
  return index;
}

describe('cancel under faults (redis)', () => {
  it('a cancel racing completion: cancelled jobs never complete, finished ones keep their result; waiters answered once', async () => {
    const c = await JobCluster.start({ replicas: 2, ttlMs: TTL });
    cluster = c;
    const jobs: { id: string; waited: Promise<{ ok: boolean; value: unknown }> }[] = [];
    // Each job is cancelled a little after its perform, while others are being performed: some
    // are still waiting, some run (30–90 ms each), some have finished.
    const cancelling: Promise<CancelResult & { at: number }>[] = [];
    for (let i = 0; i < 120; i++) {
      const { id } = await c.producer.perform({ handler: 'work', args: { ms: 30 + (i % 7) * 10 } });
      c.accepted.set(id, { h: 'work' });
      jobs.push({ id, waited: outcome(c.producer.waitFor(id, { timeoutMs: 60_000 })) });
      cancelling.push(
        sleep((i * 17) % 110).then(async () => ({
          ...(await c.producer.cancel(id, { reason: 'race' })),
          at: monotonicMs(),
        })),
      );
    }
    const cancels = await Promise.all(cancelling);
    const waited = await Promise.all(jobs.map((j) => j.waited));
    await sleep(TTL);
    const records = c.records();
    let cancelledRunning = 0;
    let cancelledWaiting = 0;
    let finished = 0;
    for (const [i, cancel] of cancels.entries()) {
      const { id } = cancel;
      const job = await c.producer.getJob(id);
      const done = records.filter((r) => r.k === 'done' && r.id === id);
      if (cancel.cancelled) {
        if (cancel.state === 'running') cancelledRunning++;
        else cancelledWaiting++;
        expect(job?.state, id).toBe('cancelled');
        expect(done, `${id} completed after cancel said cancelled`).toEqual([]);
        // Never run again. A job found running may have been fetched and not started yet: it may
        // start before the cancel message reaches its consumer (its signal aborts then), but once.
        const startsAfter = records.filter((r) => r.k === 'start' && r.id === id && r.t > cancel.at);
        expect(startsAfter.length, id).toBeLessThanOrEqual(cancel.state === 'running' ? 1 : 0);
        expect(waited[i]?.ok, id).toBe(false);
        expect(waited[i]?.value, id).toBeInstanceOf(JobCancelledError);
      } else {
        finished++;
        expect(cancel.state, id).toBe('completed');
        expect(job?.state, id).toBe('completed');
        expect(done.length, id).toBe(1);
        expect(waited[i], id).toEqual({ ok: true, value: null });
      }
    }
    console.log(
      `cancel race: ${cancelledWaiting} cancelled while waiting, ${cancelledRunning} while running, ${finished} had finished`,
    );
    // The race was a race: each side won some.
    expect(cancelledRunning + cancelledWaiting).toBeGreaterThan(0);
    expect(finished).toBeGreaterThan(0);
  });

  it('a cancel while the runner is SIGSTOPped past its lease, and a kill -9 of a cancelled job’s runner: never run again', async () => {
    const c = await JobCluster.start({ replicas: 3, ttlMs: TTL });
    cluster = c;
    const cases: { id: string; fault: 'SIGSTOP' | 'kill -9'; at: number }[] = [];
    for (const fault of ['SIGSTOP', 'kill -9'] as const) {
      const { id } = await c.producer.perform({ handler: 'work', args: { ms: 4000 } });
      c.accepted.set(id, { h: 'work' });
      const waited = outcome(c.producer.waitFor(id, { timeoutMs: 60_000 }));
      const runner = await runnerOf(c, id);
      const replica = c.replicas[runner];
      // The fault first: the runner cannot hear the cancel; the store must refuse what it does later.
      if (fault === 'SIGSTOP') replica?.signal('SIGSTOP');
      else await replica?.kill();
      const result = await c.producer.cancel(id, { reason: fault });
      expect(result).toEqual({ id, state: 'running', cancelled: true });
      const at = monotonicMs();
      cases.push({ id, fault, at });
      // Past the lease: another replica takes the partition over, and with it the cancelled job.
      await sleep(TTL * 3);
      if (fault === 'SIGSTOP') replica?.signal('SIGCONT');
      const answer = await waited;
      expect(answer.ok).toBe(false);
      expect(answer.value).toBeInstanceOf(JobCancelledError);
      if (fault === 'SIGSTOP') await sleep(5000); // the resumed runner finishes its sleep and tries to complete
    }
    const records = c.records();
    for (const { id, fault, at } of cases) {
      expect(await c.producer.getJob(id), fault).toMatchObject({ state: 'cancelled', error: { message: fault } });
      expect(
        records.filter((r) => r.k === 'done' && r.id === id),
        fault,
      ).toEqual([]);
      expect(
        records.filter((r) => r.k === 'start' && r.id === id && r.t > at),
        `${fault}: started again after the cancel`,
      ).toEqual([]);
    }
    expect((await c.producer.stats()).total.running).toBe(0);
  });
});
