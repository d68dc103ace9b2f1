/**
 * Per-backend settings of the chaos runs (TTL and liveness bounds) and one
 * entry point, {@link runBackendChaos}, shared by the test and the CLI.
 *
 * @module
 */

import type { ChaosBounds } from './check.js';
import { MemoryCluster } from './memory-cluster.js';
import { ProcessCluster } from './process-cluster.js';
import { type ChaosBackend, type ChaosResult, runChaos } from './runner.js';

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

/** Run one backend's chaos; record files are removed afterwards unless `keepRecords`. */
export async function runBackendChaos(
  backend: ChaosBackend,
  options: { seed: number; durationMs: number; log?: (line: string) => void; keepRecords?: boolean },
): Promise<ChaosResult & { recordDir?: string; replicaLogs?: string }> {
  const bounds = boundsFor(backend);
  const run = { seed: options.seed, durationMs: options.durationMs, bounds, ...(options.log && { log: options.log }) };
  if (backend === 'memory') {
    return runChaos(new MemoryCluster({ replicas: REPLICAS, shards: SHARDS, ttlMs: TTL_MS }), run);
  }
  const cluster = new ProcessCluster({ backend, replicas: REPLICAS, shards: SHARDS, ttlMs: TTL_MS });
  try {
    const result = await runChaos(cluster, run);
    const extra = result.verdict.ok ? {} : { replicaLogs: cluster.logs() };
    return options.keepRecords ? { ...result, ...extra, recordDir: cluster.recordDir } : { ...result, ...extra };
  } finally {
    if (!options.keepRecords) cluster.dispose();
  }
}
