/**
 * Multi-process fault tests against real etcd: replicas are child processes
 * running a Worker with the etcd backend and appending what their handlers saw
 * and did to a file. The scenarios every backend shares are in
 * support/fault-scenarios.ts; this file adds what only etcd can do: a restart
 * that keeps its data, and losing the leader of a three-member cluster.
 */

import { monotonicMs, waitForFullCoverage } from '@shardwork/core/testing';
import { EtcdDiscovery } from '@shardwork/discovery-etcd';
import { describe, expect, it } from 'vitest';
import { type EtcdCluster, startEtcd } from './support/etcd-server.js';
import { describeFaultScenarios, faultSuite } from './support/fault-scenarios.js';
import { leasesLost, sleep } from './support/faults.js';

const TTL = 1000;
const SHARDS = 6;

/** Calls fail below a third of the TTL, so a dead endpoint costs at most one heartbeat. */
function etcdUrl(endpoints: readonly string[]): string {
  return `etcd://${endpoints.join(',')}?callTimeoutMs=300&dialTimeoutMs=1000`;
}

const faults = faultSuite<EtcdCluster>({
  name: 'etcd',
  label: 'etcd',
  shards: SHARDS,
  ttlMs: TTL,
  start: () => startEtcd(),
  stop: (etcd) => etcd.stop(),
  observer: (etcd) => new EtcdDiscovery({ endpoints: etcd.endpoints, callTimeoutMs: 500 }),
  // One member: its endpoint is 127.0.0.1:<port>.
  port: (etcd) => Number(etcd.endpoints[0]?.split(':')[1]),
  url: (port) => etcdUrl([`127.0.0.1:${port}`]),
  handoverBoundMs: {
    graceful: TTL,
    // etcd expires leases in a loop that runs every 500 ms: TTL + up to 500 ms,
    // then the watch event, a snapshot and the claims (a few round trips), with
    // room for scheduling delays of a loaded 2-core CI machine (seen: 2.4 s once).
    kill9: TTL + 1500,
    sigstop: TTL + 1500,
    cut: TTL + 1500,
    stall: TTL + 1500,
  },
});

describeFaultScenarios(faults);

describe('etcd-only faults with replica processes', () => {
  it('survives an etcd restart on the same data dir: exclusive, and fully owned again', async () => {
    const ttl = 2000;
    const g = await faults.startGroup('restart', { ttlMs: ttl });
    const before = (await faults.observer.snapshot(g.service)).claims;
    const maxBefore = Math.max(...before.map((c) => c.token));
    const counts = g.replicas.map((r) => r.instances.length);
    const t0 = monotonicMs();
    await faults.server.restart();
    const upAt = monotonicMs();
    const covered = await waitForFullCoverage(faults.observer, g.service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    await faults.waitBalanced(g.service, g.replicas);
    const balancedAt = monotonicMs();
    const { measured } = faults;
    measured.restartDownMs = Math.round(upAt - t0);
    measured.restartCoverageMs = Math.round(covered - t0);
    measured.restartBalancedMs = Math.round(balancedAt - t0);
    measured.restartLeasesLost = leasesLost(g.replicas, counts);
    measured.restartLongestEffectGapMs = Math.round(faults.kit.longestEffectGap(g.file, t0 - 100, balancedAt));
    // Down time, then at most one TTL for leases that lapsed, then a claim round.
    expect(covered - t0).toBeLessThan(upAt - t0 + ttl + 2000);
    const after = (await faults.observer.snapshot(g.service)).claims;
    expect(Math.min(...after.map((c) => c.token))).toBeGreaterThanOrEqual(Math.min(...before.map((c) => c.token)));
    expect(Math.max(...after.map((c) => c.token))).toBeGreaterThanOrEqual(maxBefore);
    await faults.settledOwnership(g);
  });
});

describe('etcd faults in a three-member cluster', () => {
  it('keeps ownership exclusive and every shard owned when the leader is killed', async () => {
    const ttl = TTL;
    const cluster = await startEtcd({ members: 3 });
    faults.onCleanup(() => cluster.stop());
    const watcher = new EtcdDiscovery({ endpoints: cluster.endpoints, callTimeoutMs: 500 });
    faults.onCleanup(() => watcher.close());
    const g = await faults.startGroup('leader', {
      urls: [1, 2, 3].map(() => etcdUrl(cluster.endpoints)),
      observer: watcher,
      settleMs: 300,
    });
    const counts = g.replicas.map((r) => r.instances.length);
    const leader = await cluster.leaderIndex();
    const t0 = monotonicMs();
    await cluster.kill(leader);
    const newLeader = await cluster.leaderIndex();
    const electedAt = monotonicMs();
    // Poll coverage continuously for 3 TTLs: shards must stay (or become again) owned.
    const until = t0 + 3 * ttl;
    let uncoveredSince: number | undefined;
    let longestUncovered = 0;
    while (monotonicMs() < until) {
      const now = monotonicMs();
      try {
        const snap = await watcher.snapshot(g.service);
        const live = new Set(snap.members.map((m) => m.id));
        const covered = new Set(snap.claims.filter((c) => live.has(c.owner)).map((c) => c.shard)).size;
        if (covered === SHARDS) uncoveredSince = undefined;
        else uncoveredSince ??= now;
      } catch {
        uncoveredSince ??= now;
      }
      if (uncoveredSince !== undefined) longestUncovered = Math.max(longestUncovered, monotonicMs() - uncoveredSince);
      await sleep(20);
    }
    const covered = await waitForFullCoverage(watcher, g.service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    const { measured } = faults;
    measured.leaderElectionMs = Math.round(electedAt - t0);
    measured.leaderKillLongestUncoveredMs = Math.round(longestUncovered);
    measured.leaderKillLeasesLost = leasesLost(g.replicas, counts);
    measured.leaderKillLongestEffectGapMs = Math.round(faults.kit.longestEffectGap(g.file, t0 - 100, monotonicMs()));
    expect(newLeader).not.toBe(leader);
    // Bound: an election (well under 1 s with a 100 ms election timeout) plus
    // one TTL for a lease that lapsed meanwhile plus a claim round.
    expect(longestUncovered).toBeLessThan(ttl + 1000);
    expect(covered - t0).toBeLessThan(3 * ttl + 1000);
    await faults.settledOwnership(g);
  });
});
