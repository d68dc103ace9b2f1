/**
 * Per-backend settings of the chaos runs (TTL and liveness bounds) and one
 * entry point, {@link runBackendChaos}, shared by the test and the CLI.
 *
 * @module
 */

import type { ChaosBounds } from './check.js';
import { MemoryCluster } from './memory-cluster.js';
import { ProcessCluster } from './process-cluster.js';
import { type ChaosBackend, type ChaosResult, type ChaosRunOptions, runChaos } from './runner.js';
import type { ChaosEvent } from './schedule.js';

/** Every backend, in the order the CLI runs them. */
export const CHAOS_BACKENDS: readonly ChaosBackend[] = ['memory', 'redis', 'etcd'];

const REPLICAS = 6;
const SHARDS = 24;
const TTL_MS = 1500;

/**
 * Liveness bounds. Memory runs on virtual time, where nothing is late, so its
 * bounds are the design's: a crash costs the TTL plus an expiry scan and a few
 * round trips. The process backends share two cores with six replicas, a
 * server, the test runner and whatever else runs: a crash-like event may take
 * the TTL plus 2.5 s (reconnect backoff, re-registration, a slow event loop),
 * a graceful stop or start 2.5 s, and a shard's effects may pause for 1 s
 * without that counting as an outage.
 */
export function boundsFor(backend: ChaosBackend): ChaosBounds {
  if (backend === 'memory') return { ttlMs: TTL_MS, crashMs: TTL_MS + 500, gracefulMs: 300, gapToleranceMs: 100 };
  return { ttlMs: TTL_MS, crashMs: TTL_MS + 2500, gracefulMs: 2500, gapToleranceMs: 1000 };
}

/** Options of {@link runBackendChaos}. */
export interface BackendChaosOptions {
  readonly seed: number;
  readonly durationMs: number;
  /** Live progress lines. */
  readonly log?: (line: string) => void;
  /** Keep the replicas' record files (process backends) and return their directory. */
  readonly keepRecords?: boolean;
  /** Redis restarts lose every key (`lose`, the default) or reload a snapshot (`keep`). */
  readonly redisRestart?: 'lose' | 'keep';
  /** Play these events instead of the seed's schedule (a hand-written scenario). */
  readonly events?: readonly ChaosEvent[];
  /** Trace worker events of the memory cluster. */
  readonly trace?: (line: string) => void;
}

const live = new Set<ProcessCluster>();

/** Run one backend's chaos; record files are removed afterwards unless `keepRecords`. */
export async function runBackendChaos(
  backend: ChaosBackend,
  options: BackendChaosOptions,
): Promise<ChaosResult & { recordDir?: string; replicaLogs?: string }> {
  const bounds = boundsFor(backend);
  const run: ChaosRunOptions = {
    seed: options.seed,
    durationMs: options.durationMs,
    bounds,
    ...(options.log && { log: options.log }),
    ...(options.events && { events: options.events }),
  };
  if (backend === 'memory') {
    const cluster = new MemoryCluster({
      replicas: REPLICAS,
      shards: SHARDS,
      ttlMs: TTL_MS,
      ...(options.trace && { trace: options.trace }),
    });
    return runChaos(cluster, run);
  }
  const cluster = new ProcessCluster({
    backend,
    replicas: REPLICAS,
    shards: SHARDS,
    ttlMs: TTL_MS,
    redisRestart: options.redisRestart ?? 'lose',
  });
  live.add(cluster);
  try {
    const result = await runChaos(cluster, run);
    const extra = result.verdict.ok ? {} : { replicaLogs: cluster.logs() };
    return options.keepRecords ? { ...result, ...extra, recordDir: cluster.recordDir } : { ...result, ...extra };
  } finally {
    live.delete(cluster);
    if (!options.keepRecords) cluster.dispose();
  }
}

/** Kill every replica, proxy and server of runs still in progress (for `afterAll` after a timeout). */
export async function teardownLiveClusters(): Promise<void> {
  await Promise.all(
    [...live].map(async (cluster) => {
      await cluster.teardown();
      cluster.dispose();
    }),
  );
  live.clear();
}
