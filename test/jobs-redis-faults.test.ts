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
import { JobCluster } from './support/job-faults.js';

let cluster: JobCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const TTL = 1000;

async function run(fault: (c: JobCluster) => Promise<void>): Promise<Awaited<ReturnType<JobCluster['check']>>> {
  cluster = await JobCluster.start({ replicas: 3, ttlMs: TTL });
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
      await c.server.restart({ keepData: true, downMs: 500 });
    });
  });

  it('a cut connection fences the cut consumer; the others take over; nothing lost', async () => {
    const report = await run(async (c) => {
      c.proxies[2]?.cut();
      await sleep(TTL * 2.5);
      c.proxies[2]?.heal();
    });
    expect(report.duplicates).toBeLessThanOrEqual(8);
  });

  it('a seeded random run of every fault keeps every promise (replay: pnpm soak:jobs --seed 42 --duration 40)', async () => {
    const result = await runJobChaos({ seed: 42, durationMs: 40_000 });
    expect(result.violations, `${result.faults.join('\n')}\n${result.violations.join('\n')}`).toEqual([]);
    expect(result.completed).toBe(result.accepted);
    expect(result.faults.length).toBeGreaterThan(5);
    expect(result.ticks).toBeGreaterThan(20);
  });
});
