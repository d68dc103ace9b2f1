/**
 * Helpers shared by the multi-process fault tests of every backend: spawning a
 * group of replicas, waiting for balance, and checking ownership records with
 * a readable timeline on failure.
 */

import type { Discovery } from '@shardwork/core';
import { sleep } from '@shardwork/core';
import {
  checkOwnership,
  monotonicMs,
  type OwnershipRecord,
  type OwnershipReport,
  readOwnershipRecords,
} from '@shardwork/core/testing';
import { expect } from 'vitest';
import { Replica } from './cluster.js';

export { sleep };

/** Per (shard, token): acquire, first/last effect and release times, for failure messages. */
export function timeline(records: readonly OwnershipRecord[]): string {
  const rows = new Map<string, { shard: number; token: number; owner: string; times: Record<string, number[]> }>();
  for (const r of records) {
    const key = `${r.shard}/${r.token}`;
    const row = rows.get(key) ?? { shard: r.shard, token: r.token, owner: r.owner, times: {} };
    const times = row.times[r.kind] ?? [];
    times.push(r.t);
    row.times[r.kind] = times;
    rows.set(key, row);
  }
  const f = (ts: number[] | undefined, pick: 'min' | 'max'): string =>
    ts === undefined ? '-' : (pick === 'min' ? Math.min(...ts) : Math.max(...ts)).toFixed(1);
  return [...rows.values()]
    .sort((a, b) => a.shard - b.shard || a.token - b.token)
    .map(
      (r) =>
        `shard ${r.shard} token ${r.token} ${r.owner}: acquire ${f(r.times.acquire, 'min')} effects ${f(r.times.effect, 'min')}…${f(r.times.effect, 'max')} release ${f(r.times.release, 'max')}`,
    )
    .join('\n');
}

/** Effects recorded by any of `instances` after monotonic time `t`. */
export function effectsAfter(recordFile: string, instances: readonly string[], t: number): number {
  return readOwnershipRecords(recordFile).filter((r) => r.kind === 'effect' && instances.includes(r.owner) && r.t > t)
    .length;
}

/**
 * Wait until each replica of `group` has registered more instances than
 * `counts` (its count before a fault): it lost its lease and came back as a
 * new member. Fails if one has not within `timeoutMs`.
 */
export async function waitForNewInstances(
  group: readonly Replica[],
  counts: readonly number[],
  timeoutMs = 10_000,
): Promise<void> {
  const renewed = (): boolean[] => group.map((r, i) => r.instances.length > (counts[i] ?? 0));
  const deadline = monotonicMs() + timeoutMs;
  while (!renewed().every(Boolean) && monotonicMs() < deadline) await sleep(20);
  expect(renewed(), `a new instance per replica within ${timeoutMs} ms`).toEqual(group.map(() => true));
}

/** Instances `group` registered beyond `counts`: each one is a lease a replica lost. */
export function leasesLost(group: readonly Replica[], counts: readonly number[]): number {
  return group.reduce((n, r, i) => n + r.instances.length - (counts[i] ?? 0), 0);
}

/** The toolkit {@link faultKit} returns. */
export type FaultKit = ReturnType<typeof faultKit>;

/** The fault-test toolkit for one file: its shard count, TTL and the list of replicas to kill afterwards. */
export function faultKit(config: { shards: number; ttlMs: number; replicas: Replica[] }) {
  const { shards, ttlMs, replicas } = config;

  /** Spawn one replica per URL at once and wait until all have started. */
  async function startReplicas(
    service: string,
    recordFile: string,
    urls: readonly string[],
    leaseTtlMs = ttlMs,
  ): Promise<Replica[]> {
    const started = urls.map((discovery) =>
      Replica.spawn({ discovery, service, shards, leaseTtlMs, recordFile, resyncIntervalMs: 1000 }),
    );
    replicas.push(...started);
    await Promise.all(started.map((r) => r.ready()));
    return started;
  }

  /** Wait until every replica's current instance holds its fair share (shards / n) of claims. */
  async function waitBalanced(
    discovery: Discovery,
    service: string,
    group: readonly Replica[],
    timeoutMs = 15_000,
  ): Promise<void> {
    const deadline = monotonicMs() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const snap = await discovery.snapshot(service);
        const counts = group.map((r) => snap.claims.filter((c) => c.owner === r.instance).length);
        if (counts.every((n) => n === shards / group.length)) return;
        last = `claims per replica ${counts.join('/')}, ${snap.members.length} members`;
      } catch (error) {
        last = String(error);
      }
      if (monotonicMs() > deadline) throw new Error(`not balanced within ${timeoutMs} ms (${last})`);
      await sleep(20);
    }
  }

  /** Assert the ownership invariant over a record file, printing the timeline and replica logs on failure. */
  function ownership(recordFile: string, group: readonly Replica[]): OwnershipReport {
    const records = readOwnershipRecords(recordFile);
    const report = checkOwnership(records);
    const logs = group.map((r) => `--- replica ${r.pid} (${r.instances.join(', ')}):\n${r.log.join('\n')}`).join('\n');
    expect(report.violations, `${report.violations.join('\n')}\n${timeline(records)}\n${logs}`).toEqual([]);
    expect(report.intervals.length).toBeGreaterThanOrEqual(shards);
    return report;
  }

  /**
   * The longest time any shard went without an effect between `from` and `to`
   * (monotonic ms): how long the service actually stood still for that shard.
   */
  function longestEffectGap(recordFile: string, from: number, to: number): number {
    const byShard = new Map<number, number[]>();
    for (const r of readOwnershipRecords(recordFile)) {
      if (r.kind !== 'effect' || r.t < from || r.t > to) continue;
      const list = byShard.get(r.shard) ?? [];
      list.push(r.t);
      byShard.set(r.shard, list);
    }
    let gap = 0;
    for (let shard = 0; shard < shards; shard++) {
      const times = [from, ...(byShard.get(shard) ?? []).sort((a, b) => a - b), to];
      for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i] as number) - (times[i - 1] as number));
    }
    return gap;
  }

  return { startReplicas, waitBalanced, ownership, longestEffectGap };
}
