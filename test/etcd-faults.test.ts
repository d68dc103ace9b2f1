/**
 * Multi-process fault tests against real etcd: replicas are child processes
 * running a Worker with the etcd backend and appending what their handlers saw
 * and did to a file. The scenarios every backend shares are in
 * support/fault-scenarios.ts; this file adds what only etcd can do: a restart
 * that keeps its data, and in a three-member cluster (plain and TLS on client
 * and peer URLs) losing the leader, and a member removed and added back.
 */

import { monotonicMs, waitForFullCoverage } from '@shardwork/core/testing';
import { EtcdDiscovery } from '@shardwork/discovery-etcd';
import { type EtcdCluster, makeCerts, startEtcd, type TestCerts } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFaultScenarios, faultSuite } from './support/fault-scenarios.js';
import { leasesLost, sleep } from './support/faults.js';

const TTL = 1000;
const SHARDS = 6;

/** Calls fail below a third of the TTL, so a dead endpoint costs at most one heartbeat. */
const TIMEOUTS = 'callTimeoutMs=300&dialTimeoutMs=1000';

/** The URL of `endpoints` (plain), or of every member of `cluster` with its TLS files. */
function etcdUrl(target: readonly string[] | EtcdCluster): string {
  if ('scheme' in target) {
    const query = [target.tlsQuery, TIMEOUTS].filter((q) => q !== '').join('&');
    return `${target.scheme}://${target.endpoints.join(',')}?${query}`;
  }
  return `etcd://${target.join(',')}?${TIMEOUTS}`;
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

/** Poll coverage of `service` by live members until `until` (monotonic ms); the longest stretch with a shard unowned. */
async function longestUncoveredUntil(watcher: EtcdDiscovery, service: string, until: number): Promise<number> {
  let uncoveredSince: number | undefined;
  let longest = 0;
  while (monotonicMs() < until) {
    const now = monotonicMs();
    try {
      const snap = await watcher.snapshot(service);
      const live = new Set(snap.members.map((m) => m.id));
      const covered = new Set(snap.claims.filter((c) => live.has(c.owner)).map((c) => c.shard)).size;
      if (covered === SHARDS) uncoveredSince = undefined;
      else uncoveredSince ??= now;
    } catch {
      uncoveredSince ??= now;
    }
    if (uncoveredSince !== undefined) longest = Math.max(longest, monotonicMs() - uncoveredSince);
    await sleep(20);
  }
  return longest;
}

describe('etcd faults in a three-member cluster', () => {
  let certs: TestCerts | undefined;
  beforeAll(async () => {
    certs = await makeCerts();
  });
  afterAll(async () => {
    await certs?.remove();
  });

  /** A three-member cluster (TLS on client and peer URLs when `secure`) and a watcher on it, both closed after the test. */
  async function cluster3(secure: boolean): Promise<{ cluster: EtcdCluster; watcher: EtcdDiscovery }> {
    const tls = secure && certs !== undefined ? { ca: certs.ca, ...certs.server } : undefined;
    const cluster = await startEtcd({ members: 3, ...(tls === undefined ? {} : { tls }) });
    faults.onCleanup(() => cluster.stop());
    const watcher = new EtcdDiscovery({ ...cluster.options, callTimeoutMs: 500 });
    faults.onCleanup(() => watcher.close());
    return { cluster, watcher };
  }

  it.each([
    ['plain', false],
    ['TLS', true],
  ])('keeps ownership exclusive and every shard owned when the leader is killed (%s)', async (label, secure) => {
    const ttl = TTL;
    const { cluster, watcher } = await cluster3(secure);
    const g = await faults.startGroup(`leader-${label.toLowerCase()}`, {
      urls: [1, 2, 3].map(() => etcdUrl(cluster)),
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
    const longestUncovered = await longestUncoveredUntil(watcher, g.service, t0 + 3 * ttl);
    const covered = await waitForFullCoverage(watcher, g.service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    const { measured } = faults;
    const tag = secure ? 'Tls' : '';
    measured[`leaderElection${tag}Ms`] = Math.round(electedAt - t0);
    measured[`leaderKill${tag}LongestUncoveredMs`] = Math.round(longestUncovered);
    measured[`leaderKill${tag}LeasesLost`] = leasesLost(g.replicas, counts);
    measured[`leaderKill${tag}LongestEffectGapMs`] = Math.round(
      faults.kit.longestEffectGap(g.file, t0 - 100, monotonicMs()),
    );
    expect(newLeader).not.toBe(leader);
    // Bound: an election (well under 1 s with a 100 ms election timeout) plus
    // one TTL for a lease that lapsed meanwhile plus a claim round.
    expect(longestUncovered).toBeLessThan(ttl + 1000);
    expect(covered - t0).toBeLessThan(3 * ttl + 1000);
    await faults.settledOwnership(g);
  });

  it('keeps ownership exclusive and every shard owned while a member is removed and added back (TLS)', async () => {
    const ttl = TTL;
    const { cluster, watcher } = await cluster3(true);
    const g = await faults.startGroup('member-readd', {
      urls: [1, 2, 3].map(() => etcdUrl(cluster)),
      observer: watcher,
      settleMs: 300,
    });
    const counts = g.replicas.map((r) => r.instances.length);
    const before = await cluster.memberIds();
    // A follower: the leader's removal is the leader-loss test above.
    const victim = ((await cluster.leaderIndex()) + 1) % 3;
    const t0 = monotonicMs();
    await cluster.removeMember(victim);
    const removedAt = monotonicMs();
    expect([...(await cluster.memberIds()).keys()].sort()).toEqual([0, 1, 2].filter((i) => i !== victim));
    const uncoveredRemoved = await longestUncoveredUntil(watcher, g.service, removedAt + 2 * ttl);
    const addedFrom = monotonicMs();
    await cluster.addMember(victim);
    const addedAt = monotonicMs();
    const after = await cluster.memberIds();
    expect([...after.keys()].sort()).toEqual([0, 1, 2]);
    // Added back as a new member: a new id, on the old ports and an empty data directory.
    expect(after.get(victim)).not.toBe(before.get(victim));
    const uncoveredAdded = await longestUncoveredUntil(watcher, g.service, addedAt + 2 * ttl);
    // The re-added member serves reads of the service's keys (it caught up from the leader).
    const direct = new EtcdDiscovery({ ...cluster.options, endpoints: [cluster.endpoints[victim] as string] });
    faults.onCleanup(() => direct.close());
    expect((await direct.snapshot(g.service)).claims).toHaveLength(SHARDS);
    await waitForFullCoverage(watcher, g.service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    const { measured } = faults;
    measured.memberRemoveMs = Math.round(removedAt - t0);
    measured.memberAddMs = Math.round(addedAt - addedFrom);
    measured.memberRemoveLongestUncoveredMs = Math.round(uncoveredRemoved);
    measured.memberAddLongestUncoveredMs = Math.round(uncoveredAdded);
    measured.memberReaddLeasesLost = leasesLost(g.replicas, counts);
    // No election is forced (a follower leaves and joins); clients on its endpoint move on within a call deadline.
    expect(uncoveredRemoved).toBeLessThan(ttl + 1000);
    expect(uncoveredAdded).toBeLessThan(ttl + 1000);
    await faults.settledOwnership(g);
  });
});
