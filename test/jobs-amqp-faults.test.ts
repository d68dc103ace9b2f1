/**
 * Multi-process fault tests of the RabbitMQ job adapter against a private
 * broker: consumer replicas are child processes, the producer runs here, and
 * the checker asserts JOBS.md's promises: no confirmed job lost, none dead
 * (the handlers never fail; lost ownership is not a failure), duplicates only
 * for jobs in flight at a fault on the consumer that ran them, order per key
 * in partitioned mode, every cron tick enqueued once (none missing, none
 * twice). The later tests aim their faults at the moments that matter: the
 * cron leader around a tick, replicas whose handlers call `assertOwned()`
 * while their lease lapses, and a partition's owner while jobs of a key wait
 * behind a running one.
 */

import { sleep } from '@shardwork/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type AmqpJobCheckReport, AmqpJobCluster } from './support/amqp-job-faults.js';

let cluster: AmqpJobCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** Sleep until `offsetMs` into the next wall-clock second (ticks fall on whole seconds). */
async function untilOffset(offsetMs: number): Promise<void> {
  await sleep((offsetMs - (Date.now() % 1000) + 1000) % 1000 || 1000);
}

/** The replica that leads the cron schedule, once one does. */
async function cronLeader(c: AmqpJobCluster): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const leader = await c.cronLeader();
    if (leader !== undefined) return leader;
    await sleep(200);
  }
  throw new Error('no replica leads the cron schedule');
}

/** Wait for the jobs, then check every promise; returns the report. */
async function settleAndCheck(c: AmqpJobCluster): Promise<AmqpJobCheckReport> {
  await c.settle(40_000);
  const report = await c.check();
  expect(report.violations, [...report.violations, ...report.faultLog].join('\n')).toEqual([]);
  expect(report.completed).toBe(report.accepted);
  return report;
}

async function run(
  partitions: number,
  fault: (c: AmqpJobCluster) => Promise<void>,
  jobs = 250,
): Promise<AmqpJobCheckReport> {
  cluster = await AmqpJobCluster.start({ replicas: 3, partitions });
  const c = cluster;
  const producing = c.produce(jobs, 80);
  await sleep(1200);
  await fault(c);
  await producing;
  await c.settle(40_000);
  const report = await c.check();
  expect(report.violations, [...report.violations, ...report.faultLog].join('\n')).toEqual([]);
  expect(report.completed).toBe(report.accepted);
  expect(report.accepted).toBeGreaterThan(150);
  expect(report.ticks).toBeGreaterThanOrEqual(2);
  return report;
}

describe('amqp job queue with consumer processes under faults', () => {
  it('kill -9 of a consumer: the broker hands its unacknowledged jobs to the others, nothing lost', async () => {
    const report = await run(0, async (c) => {
      await c.replicas[0]?.kill();
    });
    // Only the killed consumer's running jobs (at most its concurrency, 8) can have run twice.
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('a broker restart loses no confirmed job, and every consumer resubscribes', async () => {
    const report = await run(0, async (c) => {
      await c.restartBroker({ downMs: 500 });
    });
    // Jobs running at the restart (up to 3 × 8) run again.
    expect(report.duplicates).toBeLessThanOrEqual(24);
  });

  it('a cut connection: the broker gives the cut consumer’s jobs to the others; it reconnects after the heal', async () => {
    const report = await run(0, async (c) => {
      c.isolate(2);
      await sleep(3000);
      c.heal(2);
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('SIGSTOP past two heartbeats: the broker drops the paused consumer and redelivers its jobs; nothing lost', async () => {
    const report = await run(0, async (c) => {
      c.replicas[1]?.signal('SIGSTOP');
      await sleep(7000);
      c.replicas[1]?.signal('SIGCONT');
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('partitioned: a paused owner loses its lease, and its partitions wait for the broker to drop it; order kept', async () => {
    const report = await run(6, async (c) => {
      // Lease TTL 1 s, heartbeat 2 s: the new owners subscribe long before the broker lets them consume.
      c.replicas[0]?.signal('SIGSTOP');
      await sleep(7000);
      c.replicas[0]?.signal('SIGCONT');
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('partitioned: a replica joining, kill -9, a cut connection and a replica leaving keep per-key order, nothing lost', async () => {
    const report = await run(
      6,
      async (c) => {
        // The new replica takes partitions over from the live ones: a graceful hand-over of each.
        await c.replicas[await c.spawn()]?.ready;
        await c.replicas[0]?.kill();
        await sleep(1500);
        c.isolate(1);
        await sleep(3000);
        c.heal(1);
        // A replica leaving hands its partitions over the same way.
        await c.replicas[2]?.stop();
      },
      600,
    );
    expect(report.duplicates).toBeLessThanOrEqual(16);
  });
});

describe('amqp job queue: faults aimed at cron ticks, lapsing leases and waiting jobs of a key', () => {
  it('cron: the leader paused from 1.2 s before a tick to just after it (it keeps the lead), then past its heartbeats (it loses it): every tick once', async () => {
    cluster = await AmqpJobCluster.start({ replicas: 3, partitions: 6 });
    const c = cluster;
    const producing = c.produce(600, 40);
    for (const pauseMs of [1300, 1300, 5500]) {
      const leader = c.replicas[await cronLeader(c)];
      await untilOffset(800);
      leader?.signal('SIGSTOP');
      await sleep(pauseMs);
      leader?.signal('SIGCONT');
      await sleep(1500);
    }
    await producing;
    // The ticks around the last pause settle (the checker judges ticks 3 s older than the newest).
    await sleep(4000);
    const report = await settleAndCheck(c);
    expect(report.ticks).toBeGreaterThanOrEqual(15);
  });

  it('cron: a broker restart at a tick: the ticks it was down for are caught up, every tick once', async () => {
    cluster = await AmqpJobCluster.start({ replicas: 3, partitions: 0 });
    const c = cluster;
    const producing = c.produce(300, 40);
    await sleep(3000);
    await untilOffset(950);
    await c.restartBroker({ downMs: 1500 });
    await producing;
    await sleep(5000);
    const report = await settleAndCheck(c);
    expect(report.ticks).toBeGreaterThanOrEqual(10);
    // Jobs running at the restart (up to 3 × 8) run again.
    expect(report.duplicates).toBeLessThanOrEqual(24);
  });

  it('cron: the leader’s connection cut around a tick (the token moves at once), and cut for longer: every tick once', async () => {
    cluster = await AmqpJobCluster.start({ replicas: 3, partitions: 6 });
    const c = cluster;
    const producing = c.produce(500, 40);
    for (const cutMs of [1400, 3500]) {
      const leader = await cronLeader(c);
      await untilOffset(700);
      c.isolate(leader);
      await sleep(cutMs);
      c.heal(leader);
      await sleep(2000);
    }
    await producing;
    await sleep(4000);
    const report = await settleAndCheck(c);
    expect(report.ticks).toBeGreaterThanOrEqual(12);
  });

  it('partitioned: handlers that call assertOwned() on replicas paused for 0.8 × the lease TTL while they run: nothing dead, order kept', async () => {
    cluster = await AmqpJobCluster.start({ replicas: 3, partitions: 6, delayed: 0.3 });
    const c = cluster;
    const producing = c.produce(500, 60);
    await sleep(1500);
    for (let round = 0; round < 6; round++) {
      const replica = c.replicas[round % 3];
      replica?.signal('SIGSTOP');
      await sleep(800);
      replica?.signal('SIGCONT');
      await sleep(700);
    }
    await producing;
    const report = await settleAndCheck(c);
    expect(report.accepted).toBeGreaterThan(300);
  });

  it('partitioned: jobs of a key waiting behind a running one keep their order when its owner is paused past its lease and resumes, and when its connection is cut', async () => {
    // One partition, a lease of 1 s and a heartbeat of 10 s: the broker keeps the paused owner's connection, so the
    // partition's queue moves to the standby replica only when the old owner lets go of it.
    cluster = await AmqpJobCluster.start({ replicas: 2, partitions: 1, heartbeat: 10 });
    const c = cluster;
    let streaming = true;
    /** Jobs of the key published one after another, across the fault. */
    const stream = (async () => {
      while (streaming) {
        await c.performSeq('k0', 5).catch(() => undefined);
        await sleep(15);
      }
    })();
    try {
      // Paused past its lease while it runs a 3 s job, with jobs of the key queued behind it, and more
      // published while it is paused and as it resumes.
      const owner = await c.startedOn(await c.performSeq('k0', 3000), 15_000);
      await sleep(300);
      c.replicas[owner]?.signal('SIGSTOP');
      await sleep(2500);
      c.replicas[owner]?.signal('SIGCONT');
      await sleep(2500);
      // Its connection cut while it runs a 3 s job with the key's next jobs behind it.
      const next = await c.startedOn(await c.performSeq('k0', 3000), 15_000);
      await sleep(300);
      c.isolate(next);
      await sleep(2500);
      c.heal(next);
      await sleep(2500);
    } finally {
      streaming = false;
      await stream;
    }
    const report = await settleAndCheck(c);
    expect(report.accepted).toBeGreaterThan(100);
  });
});
