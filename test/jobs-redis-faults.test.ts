/**
 * Multi-process fault tests of the Redis job queue against a real redis-server
 * with an append-only file: consumer replicas are child processes, the
 * producer runs here, and a checker over what the handlers recorded asserts
 * JOBS.md's promises: no job lost, no stale completion recorded, duplicates
 * only for jobs in flight at a fault, order per key, unique jobs never two at
 * once, cluster-wide maxConcurrency, one enqueue per cron tick.
 */

import { sleep } from '@shardwork/core';
import { afterEach, describe, expect, it } from 'vitest';
import { runJobChaos } from './support/job-chaos.js';
import { cronOwner, JobCluster, untilBeforeTick } from './support/job-faults.js';

let cluster: JobCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const TTL = 1000;

async function run(
  fault: (c: JobCluster) => Promise<void>,
  options: { ttlMs?: number } = {},
): Promise<Awaited<ReturnType<JobCluster['check']>>> {
  cluster = await JobCluster.start({ replicas: 3, ttlMs: options.ttlMs ?? TTL });
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
  return report;
}

describe('redis job queue with consumer processes under faults', () => {
  it('kill -9 of a consumer: its in-flight jobs run again elsewhere, nothing lost', async () => {
    const report = await run(async (c) => {
      await c.replicas[0]?.kill();
    });
    // Only the killed replica's in-flight jobs (at most its concurrency) can have run twice.
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('SIGSTOP past the lease: the zombie is fenced, its completions refused, nothing lost', async () => {
    const report = await run(async (c) => {
      c.replicas[1]?.signal('SIGSTOP');
      await sleep(TTL * 3);
      c.replicas[1]?.signal('SIGCONT');
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('a Redis restart on its append-only file loses nothing and every consumer carries on', async () => {
    await run(async (c) => {
      await c.restartServer({ keepData: true, downMs: 500 });
    });
  });

  it('a cut connection fences the cut consumer; the others take over; nothing lost', async () => {
    const report = await run(async (c) => {
      c.isolate(2);
      await sleep(TTL * 2.5);
      c.heal(2);
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('SIGSTOP of 0.8 × TTL while handlers that call assertOwned() run: lost ownership kills no job, nothing lost', async () => {
    const report = await run(async (c) => {
      // Handlers of 500 ms are mid-sleep when their replica freezes for 0.8 × TTL; resumed past the
      // lease deadline, their assertOwned() throws NotOwnerError before a new owner took the partition.
      for (const index of [0, 1, 2]) {
        await c.performLong(24, 500);
        await sleep(150);
        c.replicas[index]?.signal('SIGSTOP');
        await sleep(TTL * 0.8);
        c.replicas[index]?.signal('SIGCONT');
        await sleep(1500);
      }
    });
    expect(report.duplicates).toBeLessThanOrEqual(40);
  });

  it('faults aimed at the cron owner around a tick: every tick enqueued once, none missing', async () => {
    const report = await run(async (c) => {
      // Frozen from 1.2 s before a tick to just after it (past its lease), then cut off from 0.5 s before to 1.1 s after.
      let owner = await cronOwner(c);
      await untilBeforeTick(1200);
      c.replicas[owner]?.signal('SIGSTOP');
      await sleep(1250);
      c.replicas[owner]?.signal('SIGCONT');
      await sleep(2500);
      owner = await cronOwner(c);
      await untilBeforeTick(500);
      c.isolate(owner);
      await sleep(1600);
      c.heal(owner);
      await sleep(2500);
      // A restart of Redis right at a tick.
      await untilBeforeTick(100);
      await c.restartServer({ keepData: true, downMs: 400 });
    });
    expect(report.ticks).toBeGreaterThan(8);
  });

  it('the cron owner cut off across a tick but not past its lease: that tick is enqueued once, late', async () => {
    const report = await run(
      async (c) => {
        // Its write of the tick backs off while cut; the next tick's write must not overtake it.
        for (let i = 0; i < 3; i++) {
          const owner = await cronOwner(c);
          await untilBeforeTick(200);
          c.isolate(owner);
          await sleep(1100);
          c.heal(owner);
          await sleep(1800);
        }
      },
      { ttlMs: 4000 },
    );
    expect(report.ticks).toBeGreaterThan(8);
  });

  it('a seeded random run of every fault keeps every promise (replay: pnpm soak:jobs --seed 42 --duration 40)', async () => {
    const result = await runJobChaos({ seed: 42, durationMs: 40_000 });
    expect(result.violations, `${result.faults.join('\n')}\n${result.violations.join('\n')}`).toEqual([]);
    expect(result.completed).toBe(result.accepted);
    expect(result.faults.length).toBeGreaterThan(5);
    expect(result.ticks).toBeGreaterThan(20);
  });
});
