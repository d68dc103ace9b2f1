/**
 * Many replicas, many shards, one backend server: time to converge from a
 * simultaneous start, then the steady-state cost per replica (backend
 * requests, CPU, memory) over a measurement window.
 *
 * The service's group (shard count) is created before the replicas start and
 * is older than one TTL when they do: this is every replica of a service
 * (re)starting at once, e.g. a full redeploy.
 *
 * Replicas run as Workers inside a few replica-host processes (each Worker
 * with its own backend connection); memory runs them all in one process with
 * the store. Every host loads its modules first and reports `standby`; then
 * all get `start` at once. Converged = all shards claimed by live members, all
 * replicas registered, every replica holding exactly its `balanced` quota
 * (polled on the backend every 50 ms; memory: checked in-process every 10 ms).
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { createDiscovery, type Discovery, sleep } from '@shardwork/core';
import { type Convergence, trackConvergence } from './lib/balance.js';
import { HostProcess } from './lib/host.js';
import type { BenchBackend } from './lib/protocol.js';
import { type HostMessage, type HostStats, monotonicMs } from './lib/protocol.js';
import type { BenchServer, ServerCounters } from './lib/servers.js';

/** Options of {@link runScale}. */
export interface ScaleOptions {
  readonly backend: BenchBackend;
  readonly server?: BenchServer;
  readonly replicas: number;
  readonly shards: number;
  readonly processes: number;
  readonly ttlMs: number;
  /** Quiet time after convergence before the window opens. */
  readonly warmupMs: number;
  /** Length of the steady-state window. */
  readonly windowMs: number;
  /** Give up waiting for convergence after this long (the steady state is then not measured). */
  readonly convergeTimeoutMs: number;
  readonly log: (line: string) => void;
}

/** What one scale run measured. */
export interface ScaleResult {
  readonly backend: string;
  readonly replicas: number;
  readonly processes: number;
  readonly shards: number;
  readonly ttlMs: number;
  readonly windowMs: number;
  /** From the simultaneous `start` to balanced; `undefined` when not within the timeout. */
  readonly convergeMs: number | undefined;
  /** From the start until every replica was registered. */
  readonly allMembersMs: number | undefined;
  /** From the start until every shard was owned. */
  readonly allCoveredMs: number | undefined;
  /** How long convergence was waited for. */
  readonly convergeTimeoutMs: number;
  /** The state last seen before balance (or the timeout). */
  readonly convergeDetail: string;
  /** Slowest `worker.start()` (registered and first reconcile done); `undefined` if not all started. */
  readonly slowestStartMs: number | undefined;
  /** Errors the workers reported (each worker reports its first 5). */
  readonly errors: number;
  /** Leases lost (self-fenced or expired) during the whole run. */
  readonly leasesLost: number;
  /** A few distinct error messages. */
  readonly errorSamples: readonly string[];
  /** From the start to balance (or the timeout): what it cost. */
  readonly duringConvergence: {
    /** Contract calls of all workers together, per method. */
    readonly calls: Readonly<Record<string, number>>;
    /** What the resolvers did together: passes, snapshots, deltas, versionChecks. */
    readonly resolver: Readonly<Record<string, number>>;
    /** Server-side requests in total. */
    readonly serverRequests: number | undefined;
    /** Server CPU in ms. */
    readonly serverCpuMs: number | undefined;
    /** CPU of the replica-host processes together, ms. */
    readonly replicaCpuMs: number;
    readonly seconds: number;
  };
  /** Server-side requests per replica per second (Redis: commands sent by clients; etcd: gRPC messages). */
  readonly serverRequestsPerReplicaSec: number | undefined;
  /** Redis: commands per replica per second including those inside scripts. */
  readonly serverCommandsPerReplicaSec: number | undefined;
  /** Per method, per replica per second. */
  readonly serverByMethod: Readonly<Record<string, number>>;
  /** Discovery contract calls made by the workers, per replica per second, per method. */
  readonly callsPerReplicaSec: Readonly<Record<string, number>>;
  /** Replica-host CPU per replica, % of one core. */
  readonly cpuPctPerReplica: number | undefined;
  /** Growth of the hosts' RSS from standby to the end of the window, per replica, MiB. */
  readonly rssMiBPerReplica: number | undefined;
  /** Whole host RSS divided by replicas, MiB (includes Node itself and the loaded modules). */
  readonly rssTotalMiBPerReplica: number | undefined;
  /** Server CPU, % of one core, over the window. */
  readonly serverCpuPct: number | undefined;
  /** Server RSS at the end, MiB. */
  readonly serverRssMiB: number | undefined;
  /** One more replica joins the balanced cluster, then it leaves again: what each cost the whole cluster. */
  readonly join: MembershipEvent | undefined;
  readonly leave: MembershipEvent | undefined;
}

/** The cost of one join or leave, summed over the cluster, until balanced again. */
export interface MembershipEvent {
  /** Until balanced again, ms. */
  readonly ms: number | undefined;
  /** Contract calls of all workers, per method. */
  readonly calls: Readonly<Record<string, number>>;
  /** Contract calls of all workers, excluding heartbeats. */
  readonly requests: number;
  /** Server-side requests (including heartbeats and the observer's polls). */
  readonly serverRequests: number | undefined;
}

const MiB = 1024 * 1024;

function perSecond(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
  divisor: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta > 0) out[key] = delta / divisor;
  }
  return out;
}

function sumCalls(stats: readonly HostStats[], field: 'calls' | 'resolver' = 'calls'): Record<string, number> {
  const total: Record<string, number> = {};
  for (const s of stats) for (const [k, v] of Object.entries(s[field] ?? {})) total[k] = (total[k] ?? 0) + v;
  return total;
}

export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const { backend, replicas: n, shards: t, log } = options;
  const processes = backend === 'memory' ? 1 : Math.max(1, Math.min(options.processes, n));
  const service = `bench-scale-${randomBytes(4).toString('hex')}`;
  const url = options.server?.url ?? 'memory://';
  const hosts: HostProcess[] = [];
  for (let p = 0; p < processes; p++) {
    const workers = Math.floor(n / processes) + (p < n % processes ? 1 : 0);
    hosts.push(
      new HostProcess({
        backend,
        url,
        service,
        shards: t,
        workers,
        leaseTtlMs: options.ttlMs,
        events: false,
        ...(backend === 'memory' ? { convergeTimeoutMs: options.convergeTimeoutMs } : {}),
      }),
    );
  }
  let observer: Discovery | undefined;
  let errors = 0;
  let leasesLost = 0;
  const errorSamples = new Set<string>();
  for (const h of hosts) {
    h.onMessage((m: HostMessage) => {
      if (m.e === 'lost') leasesLost += 1;
      if (m.e !== 'err' && m.e !== 'fatal') return;
      errors += 1;
      // One sample per kind of failure: drop the parts that differ between occurrences.
      const text = m.msg.replace(/after [\d.]+s.*$/, '').slice(0, 160);
      if (errorSamples.size < 4 && !errorSamples.has(text)) {
        errorSamples.add(text);
        log(`${backend} scale ${n}: ${m.e}: ${m.msg.slice(0, 300)}`);
      }
    });
  }
  try {
    observer = backend === 'memory' ? undefined : await createDiscovery(url);
    // The service exists before the replicas start, older than one TTL: the
    // measurement is of every replica (re)starting at once, not of a brand-new
    // group (on Redis a group younger than one TTL holds all claims back, since
    // Redis cannot tell a new group from one whose data it lost).
    const groupCreated = monotonicMs();
    await observer?.ensureGroup(service, { shardCount: t, leaseTtlMs: options.ttlMs });
    const standby = await Promise.all(hosts.map((h) => h.standby));
    let startedCount = 0;
    let slowestStart = 0;
    for (const h of hosts) {
      h.onMessage((m: HostMessage) => {
        if (m.e !== 'started') return;
        startedCount += 1;
        slowestStart = Math.max(slowestStart, m.t - m.t0);
      });
    }
    const inChild =
      backend === 'memory'
        ? (hosts[0] as HostProcess).next(
            (m): m is Extract<HostMessage, { e: 'converged' }> => m.e === 'converged',
            options.convergeTimeoutMs + 60_000,
          )
        : undefined;
    if (observer !== undefined) await sleep(groupCreated + options.ttlMs + 200 - monotonicMs());
    const serverAtStart = await options.server?.counters();
    const t0 = monotonicMs();
    for (const h of hosts) h.send({ cmd: 'start' });
    let convergence: Convergence;
    let childDetail = '';
    if (inChild !== undefined) {
      const m = await inChild;
      childDetail = m.detail;
      convergence = { allMembers: m.allMembers, allCovered: m.allCovered, balanced: m.t, last: undefined };
    } else {
      const o = observer as NonNullable<typeof observer>;
      convergence = await trackConvergence(() => o.snapshot(service), t, n, {
        timeoutMs: options.convergeTimeoutMs,
        pollMs: 50,
        progressEveryMs: 1000,
        progress: (b) =>
          log(`${backend} scale ${n}: ${b.members}/${n} members, ${b.covered}/${t} shards, ${b.offQuota} off quota`),
      });
    }
    const since = (x: number | undefined): number | undefined => (x === undefined ? undefined : x - t0);
    const serverAtEnd = await options.server?.counters();
    const statsAtEnd = await Promise.all(hosts.map((h) => h.stats()));
    const duringConvergence = {
      calls: sumCalls(statsAtEnd),
      resolver: sumCalls(statsAtEnd, 'resolver'),
      serverRequests: serverAtStart && serverAtEnd ? serverAtEnd.requests - serverAtStart.requests : undefined,
      serverCpuMs: serverAtStart && serverAtEnd ? serverAtEnd.cpuMs - serverAtStart.cpuMs : undefined,
      replicaCpuMs: statsAtEnd.reduce((sum, x, i) => sum + x.cpuMs - (standby[i] as HostStats).cpuMs, 0),
      seconds: ((convergence.balanced ?? monotonicMs()) - t0) / 1000,
    };
    const last = convergence.last;
    const convergeDetail =
      last === undefined
        ? childDetail
        : `${last.members}/${n} members, ${last.covered}/${t} shards, ${last.offQuota} off quota`;
    const base = {
      backend,
      replicas: n,
      processes,
      shards: t,
      ttlMs: options.ttlMs,
      convergeMs: since(convergence.balanced),
      allMembersMs: since(convergence.allMembers),
      allCoveredMs: since(convergence.allCovered),
      convergeDetail,
      convergeTimeoutMs: options.convergeTimeoutMs,
      duringConvergence,
    };
    // Read when a result is returned: errors and lost leases keep counting through the window.
    const counts = () => ({
      slowestStartMs: startedCount === n ? slowestStart : undefined,
      errors,
      leasesLost,
      errorSamples: [...errorSamples],
    });
    if (convergence.balanced === undefined) {
      log(`${backend} scale ${n}: not converged within ${options.convergeTimeoutMs} ms (${convergeDetail})`);
      return {
        ...base,
        ...counts(),
        windowMs: 0,
        serverRequestsPerReplicaSec: undefined,
        serverCommandsPerReplicaSec: undefined,
        serverByMethod: {},
        callsPerReplicaSec: {},
        cpuPctPerReplica: undefined,
        rssMiBPerReplica: undefined,
        rssTotalMiBPerReplica: undefined,
        serverCpuPct: undefined,
        serverRssMiB: undefined,
        join: undefined,
        leave: undefined,
      };
    }
    log(`${backend} scale ${n}: converged in ${(convergence.balanced - t0).toFixed(0)} ms`);

    // The poller is idle from here: the window sees only the replicas.
    await sleep(options.warmupMs);
    const serverA: ServerCounters | undefined = await options.server?.counters();
    const statsA = await Promise.all(hosts.map((h) => h.stats()));
    const windowStart = monotonicMs();
    await sleep(options.windowMs);
    const serverB: ServerCounters | undefined = await options.server?.counters();
    const statsB = await Promise.all(hosts.map((h) => h.stats()));
    const seconds = (monotonicMs() - windowStart) / 1000;

    const membership = async (cmd: 'join' | 'leave', members: number): Promise<MembershipEvent> => {
      const o = observer as NonNullable<typeof observer>;
      const calls0 = sumCalls(await Promise.all(hosts.map((h) => h.stats())));
      const server0 = await options.server?.counters();
      const began = monotonicMs();
      (hosts[0] as HostProcess).send({ cmd });
      const c = await trackConvergence(() => o.snapshot(service), t, members, {
        timeoutMs: 60_000,
        pollMs: 50,
      });
      // Let stragglers (releases, the last claims) land before counting.
      await sleep(500);
      const calls = perSecond(calls0, sumCalls(await Promise.all(hosts.map((h) => h.stats()))), 1);
      const server1 = await options.server?.counters();
      // Heartbeats and the periodic version checks run whatever happens: they are the steady state.
      const requests = Object.entries(calls).reduce(
        (sum, [k, v]) => (k === 'renew' || k === 'version' ? sum : sum + v),
        0,
      );
      log(
        `${backend} scale ${n}: ${cmd} balanced in ${c.balanced === undefined ? '—' : (c.balanced - began).toFixed(0)} ms, ${requests} requests`,
      );
      return {
        ms: c.balanced === undefined ? undefined : c.balanced - began,
        calls,
        requests,
        serverRequests: server0 && server1 ? server1.requests - server0.requests : undefined,
      };
    };
    const join = observer === undefined ? undefined : await membership('join', n + 1);
    const leave = observer === undefined ? undefined : await membership('leave', n);

    const cpuMs = statsB.reduce((sum, s, i) => sum + s.cpuMs - (statsA[i] as HostStats).cpuMs, 0);
    const rssEnd = statsB.reduce((sum, s) => sum + s.rss, 0);
    const rssStandby = standby.reduce((sum, s) => sum + s.rss, 0);
    const perReplicaSec = n * seconds;
    return {
      ...base,
      ...counts(),
      windowMs: Math.round(seconds * 1000),
      serverRequestsPerReplicaSec:
        serverA && serverB ? (serverB.requests - serverA.requests) / perReplicaSec : undefined,
      serverCommandsPerReplicaSec:
        serverA?.allCommands !== undefined && serverB?.allCommands !== undefined
          ? (serverB.allCommands - serverA.allCommands) / perReplicaSec
          : undefined,
      serverByMethod: serverA && serverB ? perSecond(serverA.byMethod, serverB.byMethod, perReplicaSec) : {},
      callsPerReplicaSec: perSecond(sumCalls(statsA), sumCalls(statsB), perReplicaSec),
      cpuPctPerReplica: (cpuMs / (seconds * 1000) / n) * 100,
      rssMiBPerReplica: (rssEnd - rssStandby) / MiB / n,
      rssTotalMiBPerReplica: rssEnd / MiB / n,
      serverCpuPct: serverA && serverB ? ((serverB.cpuMs - serverA.cpuMs) / (seconds * 1000)) * 100 : undefined,
      serverRssMiB: serverB ? serverB.rssBytes / MiB : undefined,
      join,
      leave,
    };
  } finally {
    await Promise.all(hosts.map((h) => h.stop(30_000)));
    await observer?.close();
  }
}
