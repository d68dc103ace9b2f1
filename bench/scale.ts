/**
 * Many replicas, many shards, one backend server: time to converge from a
 * simultaneous start, then the steady-state cost per replica (backend
 * requests, CPU, memory) over a measurement window.
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
import { createDiscovery } from '@shardwork/core';
import { waitBalanced } from './lib/balance.js';
import { HostProcess } from './lib/host.js';
import { type HostMessage, type HostStats, monotonicMs } from './lib/protocol.js';
import type { BenchServer, ServerCounters } from './lib/servers.js';

/** Options of {@link runScale}. */
export interface ScaleOptions {
  readonly backend: 'memory' | 'redis' | 'etcd';
  readonly server?: BenchServer;
  readonly replicas: number;
  readonly shards: number;
  readonly processes: number;
  readonly ttlMs: number;
  /** Quiet time after convergence before the window opens. */
  readonly warmupMs: number;
  /** Length of the steady-state window. */
  readonly windowMs: number;
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
  /** From the simultaneous `start` to balanced. */
  readonly convergeMs: number;
  /** Slowest `worker.start()` (registered and first reconcile done). */
  readonly slowestStartMs: number;
  /** Server-side requests per replica per second (Redis: commands sent by clients; etcd: gRPC messages). */
  readonly serverRequestsPerReplicaSec: number | undefined;
  /** Redis: commands per replica per second including those inside scripts. */
  readonly serverCommandsPerReplicaSec: number | undefined;
  /** Per method, per replica per second. */
  readonly serverByMethod: Readonly<Record<string, number>>;
  /** Discovery contract calls made by the workers, per replica per second, per method. */
  readonly callsPerReplicaSec: Readonly<Record<string, number>>;
  /** Replica-host CPU per replica, % of one core. */
  readonly cpuPctPerReplica: number;
  /** Growth of the hosts' RSS from standby to the end of the window, per replica, MiB. */
  readonly rssMiBPerReplica: number;
  /** Whole host RSS divided by replicas, MiB (includes Node itself and the loaded modules). */
  readonly rssTotalMiBPerReplica: number;
  /** Server CPU, % of one core, over the window. */
  readonly serverCpuPct: number | undefined;
  /** Server RSS at the end, MiB. */
  readonly serverRssMiB: number | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
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

function sumCalls(stats: readonly HostStats[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const s of stats) for (const [k, v] of Object.entries(s.calls)) total[k] = (total[k] ?? 0) + v;
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
        converge: backend === 'memory',
      }),
    );
  }
  const observer = backend === 'memory' ? undefined : await createDiscovery(url);
  try {
    const standby = await Promise.all(hosts.map((h) => h.standby));
    const started = hosts.map((h) => {
      let left = h.config.workers;
      let slowest = 0;
      return new Promise<number>((resolve, reject) => {
        const off = h.onMessage((m: HostMessage) => {
          if (m.e === 'fatal') reject(new Error(`${backend} scale ${n}: ${m.msg}`));
          if (m.e !== 'started') return;
          slowest = Math.max(slowest, m.t - m.t0);
          if (--left === 0) {
            off();
            resolve(slowest);
          }
        });
      });
    });
    const converged =
      backend === 'memory'
        ? (hosts[0] as HostProcess).next((m) => m.e === 'converged', 600_000).then((m) => (m as { t: number }).t)
        : undefined;
    const t0 = monotonicMs();
    for (const h of hosts) h.send({ cmd: 'start' });
    const t1 =
      converged !== undefined
        ? await converged
        : await waitBalanced(observer as NonNullable<typeof observer>, service, t, n, {
            timeoutMs: 600_000,
            pollMs: 50,
          });
    const slowestStartMs = Math.max(...(await Promise.all(started)));
    log(`${backend} scale ${n}: converged in ${(t1 - t0).toFixed(0)} ms`);

    // The poller is idle from here: the window sees only the replicas.
    await sleep(options.warmupMs);
    const serverA: ServerCounters | undefined = await options.server?.counters();
    const statsA = await Promise.all(hosts.map((h) => h.stats()));
    const windowStart = monotonicMs();
    await sleep(options.windowMs);
    const serverB: ServerCounters | undefined = await options.server?.counters();
    const statsB = await Promise.all(hosts.map((h) => h.stats()));
    const seconds = (monotonicMs() - windowStart) / 1000;

    const cpuMs = statsB.reduce((sum, s, i) => sum + s.cpuMs - (statsA[i] as HostStats).cpuMs, 0);
    const rssEnd = statsB.reduce((sum, s) => sum + s.rss, 0);
    const rssStandby = standby.reduce((sum, s) => sum + s.rss, 0);
    const perReplicaSec = n * seconds;
    const result: ScaleResult = {
      backend,
      replicas: n,
      processes,
      shards: t,
      ttlMs: options.ttlMs,
      windowMs: Math.round(seconds * 1000),
      convergeMs: t1 - t0,
      slowestStartMs,
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
    };
    return result;
  } finally {
    await Promise.all(hosts.map((h) => h.stop(30_000)));
    await observer?.close();
  }
}
