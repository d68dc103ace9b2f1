/**
 * Multi-process fault tests of the RabbitMQ job adapter against a private
 * broker: consumer replicas are child processes, the producer runs here, and
 * the checker asserts JOBS.md's promises: no confirmed job lost, duplicates
 * only for jobs in flight at a fault, order per key in partitioned mode, one
 * enqueue per cron tick.
 */

import { sleep } from '@shardwork/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type AmqpJobCheckReport, AmqpJobCluster } from './support/amqp-job-faults.js';

let cluster: AmqpJobCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

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
  expect(report.violations, report.violations.join('\n')).toEqual([]);
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
      await c.broker.restart({ downMs: 500 });
    });
    // Jobs running at the restart (up to 3 × 8) run again.
    expect(report.duplicates).toBeLessThanOrEqual(24);
  });

  it('a cut connection: the broker gives the cut consumer’s jobs to the others; it reconnects after the heal', async () => {
    const report = await run(0, async (c) => {
      c.proxies[2]?.cut();
      await sleep(3000);
      c.proxies[2]?.heal();
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
        c.proxies[1]?.cut();
        await sleep(3000);
        c.proxies[1]?.heal();
        // A replica leaving hands its partitions over the same way.
        await c.replicas[2]?.stop();
      },
      600,
    );
    expect(report.duplicates).toBeLessThanOrEqual(16);
  });
});
