/**
 * Multi-process fault tests of the PostgreSQL job queue against a private
 * PostgreSQL server (fsync on): consumer replicas are child processes, the
 * producer runs here, and the checker asserts JOBS.md's promises (no job
 * lost, no stale completion, duplicates only for jobs in flight at a fault,
 * order per key, unique, maxConcurrency, one enqueue per cron tick) and
 * counts what `ctx.transaction` wrote: one row per job, none from a zombie.
 */

import { sleep } from '@shardwork/core';
import { afterEach, describe, expect, it } from 'vitest';
import { cronOwner, untilBeforeTick } from './support/job-faults.js';
import { type PostgresJobCheckReport, PostgresJobCluster } from './support/postgres-job-faults.js';

let cluster: PostgresJobCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const TTL = 1000;

async function run(fault: (c: PostgresJobCluster) => Promise<void>): Promise<PostgresJobCheckReport> {
  cluster = await PostgresJobCluster.start({ replicas: 3, ttlMs: TTL });
  const c = cluster;
  const producing = c.produce(250, 80);
  await sleep(1200);
  await fault(c);
  await producing;
  await c.settle(40_000);
  const report = await c.check();
  expect(report.violations, report.violations.join('\n')).toEqual([]);
  expect(report.completed).toBe(report.accepted);
  expect(report.accepted).toBeGreaterThan(150);
  expect(report.txJobs).toBeGreaterThan(30);
  expect(report.zombieWrites).toBe(0);
  return report;
}

describe('postgres job queue with consumer processes under faults', () => {
  it('kill -9 of a consumer: its in-flight jobs run again elsewhere, nothing lost', async () => {
    const report = await run(async (c) => {
      await c.replicas[0]?.kill();
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it("SIGSTOP past the lease while transactional handlers run: the zombie's writes never commit", async () => {
    const report = await run(async (c) => {
      // Handlers of 400 ms are mid-sleep (or inside ctx.transaction) when their replica freezes past its lease.
      for (const index of [0, 1]) {
        await c.performLong(16, 400, 'tx');
        await sleep(150);
        c.replicas[index]?.signal('SIGSTOP');
        await sleep(TTL * 3);
        c.replicas[index]?.signal('SIGCONT');
        await sleep(1000);
      }
    });
    // Jobs the frozen replicas had started ran again elsewhere: each is a zombie attempt whose write was refused.
    expect(report.duplicates).toBeGreaterThan(0);
    expect(report.duplicates).toBeLessThanOrEqual(40);
  });

  it('kill -9 of the PostgreSQL server and a restart: nothing committed or acknowledged is lost', async () => {
    await run(async (c) => {
      await c.crashServer(500);
    });
  });

  it('pg_ctl restart -m immediate: every consumer carries on, nothing lost', async () => {
    await run(async (c) => {
      await c.restartServer(300);
    });
  });

  it('a cut connection fences the cut consumer (jobs and lease go together); the others take over', async () => {
    const report = await run(async (c) => {
      c.isolate(2);
      await sleep(TTL * 2.5);
      c.heal(2);
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('faults aimed at the cron owner around a tick, and at the server on a tick: every tick once, none missing', async () => {
    const report = await run(async (c) => {
      // Frozen from 1.2 s before a tick to just after it (past its lease): the next owner enqueues it, once.
      let owner = await cronOwner(c);
      await untilBeforeTick(1200);
      c.replicas[owner]?.signal('SIGSTOP');
      await sleep(1250);
      c.replicas[owner]?.signal('SIGCONT');
      await sleep(2500);
      // Killed just before a tick.
      owner = await cronOwner(c);
      await untilBeforeTick(100);
      await c.replicas[owner]?.kill();
      await sleep(2500);
      // The server crashed right at a tick.
      await untilBeforeTick(50);
      await c.crashServer(400);
    });
    expect(report.ticks).toBeGreaterThan(5);
  });
});
