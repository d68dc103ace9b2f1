/**
 * A seeded random run of faults against a Redis job cluster: the same seed
 * gives the same faults at the same offsets (kill -9 then a new replica,
 * SIGSTOP past the lease, a cut connection, a Redis restart on its append-only
 * file) while the producer enqueues; then the checker of job-faults.ts.
 */

import { sleep } from '@shardwork/core';
import { mulberry32 } from '../chaos/schedule.js';
import { type JobCheckReport, JobCluster } from './job-faults.js';

/** Options of a run. */
export interface JobChaosOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly replicas?: number;
  readonly ttlMs?: number;
  readonly log?: (line: string) => void;
}

/** What a run did and what the checker found. */
export interface JobChaosResult extends JobCheckReport {
  readonly faults: string[];
}

/** Run the faults and check. */
export async function runJobChaos(options: JobChaosOptions): Promise<JobChaosResult> {
  const random = mulberry32(options.seed);
  const ttl = options.ttlMs ?? 1000;
  const log = options.log ?? (() => undefined);
  const cluster = await JobCluster.start({ replicas: options.replicas ?? 3, ttlMs: ttl });
  const faults: string[] = [];
  const began = Date.now();
  const note = (what: string): void => {
    const line = `+${((Date.now() - began) / 1000).toFixed(1)}s ${what}`;
    faults.push(line);
    log(line);
  };
  try {
    const producing = cluster.produce(Math.floor(options.durationMs / 20), 50, random);
    while (Date.now() - began < options.durationMs) {
      await sleep(1500 + random() * 2500);
      const live = cluster.replicas.map((r, i) => [r, i] as const).filter(([r]) => r.alive);
      const pick = live[Math.floor(random() * live.length)];
      if (pick === undefined) continue;
      const [replica, index] = pick;
      const kind = random();
      if (kind < 0.3) {
        note(`kill -9 replica ${index}`);
        await replica.kill();
        const next = await cluster.spawn();
        note(`start replica ${next}`);
      } else if (kind < 0.55) {
        const ms = Math.round(ttl * (1.5 + random() * 1.5));
        note(`SIGSTOP replica ${index} for ${ms} ms`);
        replica.signal('SIGSTOP');
        await sleep(ms);
        replica.signal('SIGCONT');
      } else if (kind < 0.8) {
        const ms = Math.round(ttl * (1 + random() * 2));
        note(`cut replica ${index} for ${ms} ms`);
        cluster.isolate(index);
        await sleep(ms);
        cluster.heal(index);
      } else {
        note('restart redis (append-only file kept)');
        await cluster.restartServer({ keepData: true, downMs: 300 });
      }
    }
    await producing;
    await cluster.settle(60_000);
    const report = await cluster.check();
    // A lost job: say where it is, for the failure message.
    const located: string[] = [];
    for (const v of report.violations.filter((x) => x.startsWith('lost: ')).slice(0, 5)) {
      const id = / ([A-Za-z0-9_-]{21}) accepted/.exec(v)?.[1];
      if (id !== undefined) located.push(`  where: ${await cluster.locate(id)}`);
    }
    return { ...report, violations: [...report.violations, ...located], faults };
  } finally {
    await cluster.close();
  }
}
