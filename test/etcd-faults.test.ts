/**
 * Multi-process fault tests against real etcd: replicas are child processes
 * running a Worker with the etcd backend and appending what their handlers saw
 * and did to a file; after every fault the file must show at most one owner per
 * shard at any instant, with increasing tokens, and every shard must be owned
 * again within a bound.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monotonicMs, uniqueService, waitForFullCoverage } from '@shardwork/core/testing';
import { EtcdDiscovery } from '@shardwork/discovery-etcd';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, type Replica } from './support/cluster.js';
import { type EtcdCluster, startEtcd } from './support/etcd-server.js';
import { effectsAfter, faultKit, sleep } from './support/faults.js';
import { TcpProxy } from './support/tcp-proxy.js';

const TTL = 1000;
const SHARDS = 6;

let etcd: EtcdCluster;
let observer: EtcdDiscovery;
let dir: string;
const replicas: Replica[] = [];
const proxies: TcpProxy[] = [];
const observers: EtcdDiscovery[] = [];
const clusters: EtcdCluster[] = [];
/** Measured times, printed at the end. */
const measured: Record<string, number> = {};
const { startReplicas, waitBalanced, ownership, longestEffectGap } = faultKit({ shards: SHARDS, ttlMs: TTL, replicas });

/** Calls fail below a third of the TTL, so a dead endpoint costs at most one heartbeat. */
function etcdUrl(endpoints: readonly string[]): string {
  return `etcd://${endpoints.join(',')}?callTimeoutMs=300&dialTimeoutMs=1000`;
}

beforeAll(async () => {
  etcd = await startEtcd();
  observer = new EtcdDiscovery({ endpoints: etcd.endpoints, callTimeoutMs: 500 });
  dir = mkdtempSync(join(tmpdir(), 'shardwork-etcd-faults-'));
});

afterEach(async () => {
  await killAll(replicas.splice(0));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(observers.splice(0).map((o) => o.close()));
  await Promise.all(clusters.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await observer?.close();
  await etcd?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  console.log(`etcd fault timings (ms, TTL ${TTL} unless noted):`, JSON.stringify(measured));
});

describe('etcd faults with replica processes', () => {
  it('hands shards over on a graceful stop within a fraction of the TTL', async () => {
    const service = uniqueService('graceful');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => etcdUrl(etcd.endpoints)),
    );
    await waitBalanced(observer, service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const t0 = monotonicMs();
    expect(await a.stop()).toBe(0);
    const exitedAt = monotonicMs();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: a.instances,
      minMembers: 2,
      pollMs: 10,
    });
    measured.gracefulStopMs = Math.round(exitedAt - t0);
    measured.gracefulHandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL);
    await sleep(200);
    ownership(file, group);
  });

  it('moves the shards of a replica killed with SIGKILL after about one TTL', async () => {
    const service = uniqueService('kill9');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => etcdUrl(etcd.endpoints)),
    );
    await waitBalanced(observer, service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const t0 = monotonicMs();
    await a.kill();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: a.instances,
      minMembers: 2,
      pollMs: 10,
    });
    measured.kill9HandoverMs = Math.round(covered - t0);
    // etcd expires leases in a loop that runs every 500 ms: TTL + 500 ms + a claim round trip.
    expect(covered - t0).toBeLessThan(TTL + 1000);
    await sleep(200);
    ownership(file, group);
  });

  it('fences a replica paused past its TTL (SIGSTOP) before anyone takes its shards', async () => {
    const service = uniqueService('sigstop');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => etcdUrl(etcd.endpoints)),
    );
    await waitBalanced(observer, service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const frozen = [...a.instances];
    const t0 = monotonicMs();
    a.signal('SIGSTOP');
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: frozen,
      minMembers: 2,
      pollMs: 10,
    });
    measured.sigstopHandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL + 1000);
    await sleep(Math.max(0, t0 + 2.5 * TTL - monotonicMs()));
    const resumedAt = monotonicMs();
    a.signal('SIGCONT');
    // It comes back as a new member and gets its share again.
    const deadline = monotonicMs() + 10_000;
    while (a.instances.length <= frozen.length && monotonicMs() < deadline) await sleep(20);
    expect(a.instances.length).toBeGreaterThan(frozen.length);
    await waitBalanced(observer, service, group);
    measured.sigstopRejoinMs = Math.round(monotonicMs() - resumedAt);
    await sleep(200);
    // A frozen process writes the `release` records of its old handlers when it
    // resumes, long after its deadline: they mark when the handler ended, not
    // when ownership did (its self-fencing deadline), so they are left out. The
    // effects, which are what must never overlap, are all kept.
    // The frozen process writes release records when it resumes; checkOwnership counts only acquire/effect.
    ownership(file, group);
    expect(effectsAfter(file, frozen, resumedAt)).toBe(0);
  });

  it('fences a replica cut off from etcd (TCP proxy) and lets the others take over without overlap', async () => {
    const service = uniqueService('cut');
    const file = join(dir, `${service}.jsonl`);
    const [endpoint] = etcd.endpoints as [string];
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(endpoint.split(':')[1]) });
    proxies.push(proxy);
    const group = await startReplicas(service, file, [
      etcdUrl([`127.0.0.1:${proxy.port}`]),
      etcdUrl(etcd.endpoints),
      etcdUrl(etcd.endpoints),
    ]);
    await waitBalanced(observer, service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const isolated = [...a.instances];
    const t0 = monotonicMs();
    proxy.cut();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: isolated,
      minMembers: 2,
      pollMs: 10,
    });
    measured.cutHandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL + 1000);
    // The isolated replica stopped its effects on its own, before its lease could expire.
    expect(effectsAfter(file, isolated, t0 + TTL)).toBe(0);
    await sleep(Math.max(0, t0 + 2.5 * TTL - monotonicMs()));
    const healedAt = monotonicMs();
    proxy.heal();
    const deadline = monotonicMs() + 10_000;
    while (a.instances.length <= isolated.length && monotonicMs() < deadline) await sleep(20);
    expect(a.instances.length).toBeGreaterThan(isolated.length);
    await waitBalanced(observer, service, group);
    measured.cutRejoinMs = Math.round(monotonicMs() - healedAt);
    await sleep(200);
    ownership(file, group);
  });

  it('fences a replica whose connection to etcd stalls (black hole), without overlap', async () => {
    const service = uniqueService('stall');
    const file = join(dir, `${service}.jsonl`);
    const [endpoint] = etcd.endpoints as [string];
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(endpoint.split(':')[1]) });
    proxies.push(proxy);
    const group = await startReplicas(service, file, [
      etcdUrl([`127.0.0.1:${proxy.port}`]),
      etcdUrl(etcd.endpoints),
      etcdUrl(etcd.endpoints),
    ]);
    await waitBalanced(observer, service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const isolated = [...a.instances];
    const t0 = monotonicMs();
    proxy.stall();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: isolated,
      minMembers: 2,
      pollMs: 10,
    });
    measured.stallHandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL + 1000);
    expect(effectsAfter(file, isolated, t0 + TTL)).toBe(0);
    await sleep(Math.max(0, t0 + 2.5 * TTL - monotonicMs()));
    const healedAt = monotonicMs();
    proxy.heal();
    const deadline = monotonicMs() + 10_000;
    while (a.instances.length <= isolated.length && monotonicMs() < deadline) await sleep(20);
    expect(a.instances.length).toBeGreaterThan(isolated.length);
    await waitBalanced(observer, service, group);
    measured.stallRejoinMs = Math.round(monotonicMs() - healedAt);
    await sleep(200);
    ownership(file, group);
  });

  it('survives an etcd restart on the same data dir: exclusive, and fully owned again', async () => {
    const ttl = 2000;
    const service = uniqueService('restart');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => etcdUrl(etcd.endpoints)),
      ttl,
    );
    await waitBalanced(observer, service, group);
    await sleep(200);
    const before = (await observer.snapshot(service)).claims;
    const maxBefore = Math.max(...before.map((c) => c.token));
    const counts = group.map((r) => r.instances.length);
    const t0 = monotonicMs();
    await etcd.restart();
    const upAt = monotonicMs();
    const covered = await waitForFullCoverage(observer, service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    await waitBalanced(observer, service, group);
    const balancedAt = monotonicMs();
    measured.restartDownMs = Math.round(upAt - t0);
    measured.restartCoverageMs = Math.round(covered - t0);
    measured.restartBalancedMs = Math.round(balancedAt - t0);
    measured.restartLeasesLost = group.reduce((n, r, i) => n + r.instances.length - (counts[i] ?? 0), 0);
    measured.restartLongestEffectGapMs = Math.round(longestEffectGap(file, t0 - 100, balancedAt));
    // Down time, then at most one TTL for leases that lapsed, then a claim round.
    expect(covered - t0).toBeLessThan(upAt - t0 + ttl + 2000);
    const after = (await observer.snapshot(service)).claims;
    expect(Math.min(...after.map((c) => c.token))).toBeGreaterThanOrEqual(Math.min(...before.map((c) => c.token)));
    expect(Math.max(...after.map((c) => c.token))).toBeGreaterThanOrEqual(maxBefore);
    await sleep(200);
    ownership(file, group);
  });
});

describe('etcd faults in a three-member cluster', () => {
  it('keeps ownership exclusive and every shard owned when the leader is killed', async () => {
    const ttl = TTL;
    const cluster = await startEtcd({ members: 3 });
    clusters.push(cluster);
    const watcher = new EtcdDiscovery({ endpoints: cluster.endpoints, callTimeoutMs: 500 });
    observers.push(watcher);
    const service = uniqueService('leader');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => etcdUrl(cluster.endpoints)),
      ttl,
    );
    await waitBalanced(watcher, service, group);
    await sleep(300);
    const counts = group.map((r) => r.instances.length);
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
        const snap = await watcher.snapshot(service);
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
    const covered = await waitForFullCoverage(watcher, service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    measured.leaderElectionMs = Math.round(electedAt - t0);
    measured.leaderKillLongestUncoveredMs = Math.round(longestUncovered);
    measured.leaderKillLeasesLost = group.reduce((n, r, i) => n + r.instances.length - (counts[i] ?? 0), 0);
    measured.leaderKillLongestEffectGapMs = Math.round(longestEffectGap(file, t0 - 100, monotonicMs()));
    expect(newLeader).not.toBe(leader);
    // Bound: an election (well under 1 s with a 100 ms election timeout) plus
    // one TTL for a lease that lapsed meanwhile plus a claim round.
    expect(longestUncovered).toBeLessThan(ttl + 1000);
    expect(covered - t0).toBeLessThan(3 * ttl + 1000);
    await sleep(200);
    ownership(file, group);
  });
});
