/**
 * Graceful handoff, crash failover and join, timed over repeated trials.
 *
 * A cluster of `replicas` replicas shares `shards` shards. Each cycle takes
 * one replica away (alternately a graceful stop and a crash, as selected) and
 * then starts a fresh one, measuring:
 * - handoff: from the stop request (SIGTERM) until every shard the leaver held
 *   has been acquired by another replica;
 * - failover: from kill -9 (memory: the connection cut for good) until every
 *   shard the dead replica held has been acquired by another replica; also
 *   the lag behind the lease's expiry (last renewal sent + TTL);
 * - join: from the new replica's `worker.start()` until it holds its fair
 *   share (its `balanced` quota, ⌊T/N⌋ as the newest member).
 * Times are the acquisition times the replicas report, on the machine-wide
 * monotonic clock; each one is confirmed by polling the backend
 * (`waitForFullCoverage`, the leaver excluded) before the next step.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { createDiscovery, type Discovery, MemoryDiscovery, MemoryStore, quotas, sleep } from '@shardwork/core';
import { waitForFullCoverage } from '@shardwork/core/testing';
import { waitBalanced } from './lib/balance.js';
import type { BenchBackend } from './lib/protocol.js';
import { Ledger, MemoryReplica, ProcessReplica, type TrialReplica } from './lib/replicas.js';
import type { BenchServer } from './lib/servers.js';

/** Which measurements to take. */
export type LatencyKind = 'handoff' | 'failover' | 'join';

/** Options of {@link runLatency}. */
export interface LatencyOptions {
  readonly backend: BenchBackend;
  /** The running server (Redis/etcd); absent for memory. */
  readonly server?: BenchServer;
  readonly kinds: ReadonlySet<LatencyKind>;
  /** Trials of each of handoff and failover (joins follow every leave). */
  readonly trials: number;
  readonly ttlMs: number;
  readonly replicas: number;
  readonly shards: number;
  readonly random: () => number;
  readonly log: (line: string) => void;
}

/** Samples in ms. */
export interface LatencyResult {
  readonly backend: string;
  readonly ttlMs: number;
  readonly replicas: number;
  readonly shards: number;
  readonly handoff: number[];
  /** Of the handoff: until the leaver's own `stop()` had released its claims and revoked its lease. */
  readonly handoffLeaverStop: number[];
  readonly failover: number[];
  /** Failover time minus the time left on the dead replica's lease at the crash. */
  readonly failoverAfterExpiry: number[];
  /** Time left on the lease at the crash (TTL − time since the last renewal was sent). */
  readonly leaseLeftAtCrash: number[];
  readonly join: number[];
  /** Shards the leaver held, per leave (how much work each handoff/failover moved). */
  readonly shardsMoved: number[];
}

export async function runLatency(options: LatencyOptions): Promise<LatencyResult> {
  const { backend, ttlMs, replicas: n, shards: t, log } = options;
  const service = `bench-lat-${randomBytes(4).toString('hex')}`;
  const ledger = new Ledger();
  const store = backend === 'memory' ? new MemoryStore() : undefined;
  let observer: Discovery;
  let make: () => TrialReplica;
  if (store !== undefined) {
    observer = new MemoryDiscovery({ store });
    make = () => new MemoryReplica(store, { service, shards: t, leaseTtlMs: ttlMs }, ledger);
  } else {
    const url = options.server?.url;
    if (url === undefined) throw new Error(`${backend}: no server`);
    observer = await createDiscovery(url);
    make = () => new ProcessReplica({ backend, url, service, shards: t, leaseTtlMs: ttlMs }, ledger);
  }
  const result: LatencyResult = {
    backend,
    ttlMs,
    replicas: n,
    shards: t,
    handoff: [],
    handoffLeaverStop: [],
    failover: [],
    failoverAfterExpiry: [],
    leaseLeftAtCrash: [],
    join: [],
    shardsMoved: [],
  };
  const all: TrialReplica[] = [];
  const spawn = (): TrialReplica => {
    const r = make();
    all.push(r);
    return r;
  };
  /** What the backend and the replicas' reports say, for a failure message. */
  const describe = async (replicas: readonly TrialReplica[]): Promise<string> => {
    const lines: string[] = [];
    try {
      const snap = await observer.snapshot(service);
      const counts = new Map<string, number>();
      for (const c of snap.claims) counts.set(c.owner, (counts.get(c.owner) ?? 0) + 1);
      const view = [...snap.members].sort((a, b) => a.joinSeq - b.joinSeq);
      lines.push(`backend: ${snap.claims.length}/${t} claims`);
      for (const m of view) lines.push(`  member ${m.id} joinSeq ${m.joinSeq}: ${counts.get(m.id) ?? 0} claims`);
    } catch (error) {
      lines.push(`backend: ${String(error)}`);
    }
    for (const r of replicas) {
      lines.push(`replica ${r.name} (${r.instance ?? 'no lease'}): reports ${ledger.owned(r.name).size} shards`);
      const log = r.log();
      if (log !== '') lines.push(`  log: ${log.split('\n').slice(-10).join('\n  ')}`);
    }
    return lines.join('\n');
  };
  const balanced = (members: number): Promise<number> =>
    waitBalanced(observer, service, t, members, { timeoutMs: 30_000 + 3 * ttlMs, pollMs: 10 });

  try {
    const live: TrialReplica[] = [];
    for (let i = 0; i < n; i++) live.push(spawn());
    await Promise.all(live.map((r) => r.ready()));
    for (const r of live) await r.start();
    await balanced(n);
    let standby = spawn();

    // The leaves to run: alternate graceful and crash when both are wanted.
    const leaves: ('handoff' | 'failover')[] = [];
    const wantHandoff = options.kinds.has('handoff');
    const wantFailover = options.kinds.has('failover');
    for (let i = 0; i < options.trials; i++) {
      if (wantHandoff) leaves.push('handoff');
      if (wantFailover) leaves.push('failover');
      if (!wantHandoff && !wantFailover) leaves.push('handoff');
    }
    const fairShare = quotas(
      Array.from({ length: n }, (_, i) => ({ id: String(i), weight: 1 })),
      t,
    )[n - 1] as number;

    for (const [i, kind] of leaves.entries()) {
      await standby.ready();
      await balanced(n);
      // A crash lands at a random phase of the heartbeat cycle, as real ones do.
      await sleep(kind === 'failover' ? 100 + options.random() * (ttlMs / 3) : 100);
      const victim = live[Math.floor(options.random() * live.length)] as TrialReplica;
      const held = new Set(ledger.owned(victim.name));
      const from = ledger.acquisitions.length;
      const instance = victim.instance as string;
      const renewedAt = ledger.lastRenewSent(victim.name);
      const t0 = kind === 'handoff' ? victim.stop() : victim.crash();
      const timeout = kind === 'handoff' ? 30_000 : 30_000 + 3 * ttlMs;
      const t1 = await ledger.until(
        () => ledger.reacquiredBy(held, victim.name, t0, from),
        timeout,
        `${backend} ${kind} trial ${i + 1}`,
      );
      await waitForFullCoverage(observer, service, t, { timeoutMs: timeout, excluding: [instance], pollMs: 10 });
      const took = t1 - t0;
      result.shardsMoved.push(held.size);
      if (kind === 'handoff' && wantHandoff) {
        result.handoff.push(took);
        const down = await ledger.until(() => ledger.downAt(victim.name), 30_000, `${backend} stop() of the leaver`);
        result.handoffLeaverStop.push(down - t0);
      }
      if (kind === 'failover') {
        result.failover.push(took);
        if (renewedAt !== undefined) {
          const left = renewedAt + ttlMs - t0;
          result.leaseLeftAtCrash.push(left);
          result.failoverAfterExpiry.push(took - left);
        }
      }
      live.splice(live.indexOf(victim), 1);
      void victim.dispose();
      log(`${backend} ${kind} ${i + 1}/${leaves.length}: ${took.toFixed(1)} ms (${held.size} shards)`);

      // Back to n replicas: the join.
      await balanced(n - 1);
      await sleep(100);
      const joiner = standby;
      const startedAt = await joiner.start();
      const joined = await ledger
        .until(
          () => {
            const mine = ledger.acquisitions.filter((a) => a.replica === joiner.name);
            return ledger.owned(joiner.name).size >= fairShare && mine.length >= fairShare
              ? (mine[fairShare - 1] as { t: number }).t
              : undefined;
          },
          30_000 + 3 * ttlMs,
          `${backend} join after trial ${i + 1}`,
        )
        .catch(async (error: unknown) => {
          throw new Error(`${String(error)}\n${await describe([...live, joiner])}`);
        });
      if (options.kinds.has('join')) result.join.push(joined - startedAt);
      log(`${backend} join ${i + 1}/${leaves.length}: ${(joined - startedAt).toFixed(1)} ms`);
      live.push(joiner);
      standby = spawn();
    }
  } finally {
    await Promise.all(all.map((r) => r.dispose().catch(() => undefined)));
    await observer.close();
  }
  return result;
}
