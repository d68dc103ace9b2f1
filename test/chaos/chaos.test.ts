/**
 * Seeded chaos runs, one per backend: 6 replicas, 24 shards, TTL 1.5 s, a
 * random schedule of stops, starts, crashes, pauses, cuts and backend restarts.
 * Every run must keep at most one owner per shard (no overlapping effects,
 * increasing tokens, no token for two shards) and own every shard again within the bounds of
 * backends.ts. A failure message starts with the seed and a replay command.
 *
 * Longer soaks by hand: `pnpm chaos --seed N --duration S --backend B`.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { runBackendChaos, teardownLiveClusters } from './backends.js';
import { formatRecoveries } from './check.js';
import type { ChaosResult } from './runner.js';
import type { ChaosEvent } from './schedule.js';

/**
 * Seeds and durations CI runs. Memory runs on virtual time: a minute of
 * schedule costs a few seconds. Redis and etcd run real processes: about
 * 45 s each plus start-up, which keeps the file under three minutes.
 */
const CI = {
  memory: { seed: 1234, durationMs: 60_000 },
  redis: { seed: 1234, durationMs: 45_000 },
  etcd: { seed: 1234, durationMs: 45_000 },
} as const;

afterAll(async () => {
  await teardownLiveClusters();
});

function expectVerdictOk(result: ChaosResult & { replicaLogs?: string }): void {
  const { verdict } = result;
  if (!verdict.ok) {
    const parts = [
      `${verdict.violations.length} chaos violation(s):`,
      ...verdict.violations,
      `recovery times:\n${formatRecoveries(verdict.recoveries)}`,
    ];
    if (result.replicaLogs !== undefined) parts.push(`replica logs:\n${result.replicaLogs}`);
    throw new Error(parts.join('\n\n'));
  }
}

/** A random run: clean, and it did what a chaos run should. */
function expectClean(result: ChaosResult & { replicaLogs?: string }): void {
  expectVerdictOk(result);
  const { verdict } = result;
  // The run did something: every event happened and shards changed hands a lot.
  expect(result.outcomes.filter((o) => o.error !== undefined)).toEqual([]);
  expect(result.outcomes).toHaveLength(result.schedule.length);
  expect(verdict.intervals.length).toBeGreaterThan(24 + result.schedule.length);
  expect(verdict.effectCount).toBeGreaterThan(10_000);
  const kinds = new Set(result.schedule.map((e) => e.kind));
  for (const kind of ['stop', 'start', 'kill', 'pause', 'cut', 'restart-backend'] as const)
    expect(kinds).toContain(kind);
}

describe('chaos: memory (in-process, virtual time)', () => {
  it(`seed ${CI.memory.seed}, ${CI.memory.durationMs / 1000} s`, async () => {
    expectClean(await runBackendChaos('memory', CI.memory));
  }, 60_000);

  it('replays a seed exactly: same events at the same times, same records', async () => {
    const strip = (r: ChaosResult) => ({
      outcomes: r.outcomes.map((o) => [o.event.index, o.issuedAt, o.doneAt, o.recoveredAt]),
      // Member ids are random; everything else must match.
      effects: r.verdict.intervals.map((i) => [i.shard, i.token, i.start, i.end]),
    });
    const a = await runBackendChaos('memory', { seed: 77, durationMs: 20_000 });
    const b = await runBackendChaos('memory', { seed: 77, durationMs: 20_000 });
    expect(strip(b)).toEqual(strip(a));
    expect(a.verdict.intervals.length).toBeGreaterThan(24);
  }, 60_000);

  // Hand-written scenarios around data loss (store.reset(), like a Redis
  // restart without persistence): the replicas that notice re-register at once,
  // while an owner that has not noticed still acts until its own deadline.
  it('keeps one owner when the backend loses its data while an owner is cut off', async () => {
    const events: ChaosEvent[] = [
      { index: 0, at: 1000, kind: 'cut', replica: 0, forMs: 3000, mode: 'reset' },
      // r0's deadline is at least TTL − margin − one heartbeat after the cut: still ahead here.
      { index: 1, at: 1300, kind: 'restart-backend', downMs: 0 },
      { index: 2, at: 4000, kind: 'heal', replica: 0 },
    ];
    expectVerdictOk(await runBackendChaos('memory', { seed: 0, durationMs: 6000, events }));
  }, 30_000);

  // A replica that starts right after a data loss sees a fresh group; it must
  // not claim while an owner that has not noticed the loss (stalled here) may
  // still act: claims wait until the group is one TTL old.
  it('keeps one owner when a replica starts right after a data loss while an owner is stalled', async () => {
    const events: ChaosEvent[] = [
      { index: 0, at: 500, kind: 'stop', replica: 4 },
      { index: 1, at: 1000, kind: 'pause', replica: 5, forMs: 3000 },
      { index: 2, at: 1300, kind: 'restart-backend', downMs: 0 },
      { index: 3, at: 1350, kind: 'start', replica: 4 },
      { index: 4, at: 4000, kind: 'resume', replica: 5 },
    ];
    expectVerdictOk(await runBackendChaos('memory', { seed: 0, durationMs: 6000, events }));
  }, 30_000);
});

describe('chaos: processes behind TCP proxies', () => {
  it(`redis: seed ${CI.redis.seed}, ${CI.redis.durationMs / 1000} s, restarts lose all data`, async () => {
    expectClean(await runBackendChaos('redis', { ...CI.redis, redisRestart: 'lose' }));
  }, 150_000);

  it(`etcd: seed ${CI.etcd.seed}, ${CI.etcd.durationMs / 1000} s, restarts on the same data dir`, async () => {
    expectClean(await runBackendChaos('etcd', CI.etcd));
  }, 150_000);
});
