/**
 * What a worker tells metrics: how each shard was acquired (and how long it
 * had been free), when a revoked shard was given back, lease renewals.
 */

import { type Handler, sleep, type Worker, type WorkerEventMap } from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { advanceUntil, Cluster, started, stopped, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

/** A handler that needs `ms` to wind down after its signal aborts (so a stop drains). */
function slowToSettle(ms: number): Handler {
  return {
    async do(ctx) {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      await sleep(ms);
    },
  };
}

function record<K extends keyof WorkerEventMap>(worker: Worker, event: K): WorkerEventMap[K][] {
  const seen: WorkerEventMap[K][] = [];
  worker.on(event, (payload) => seen.push(payload));
  return seen;
}

describe('acquisition reasons and durations', () => {
  it('calls shards of a new service vacant, with no vacancy time', async () => {
    const cluster = new Cluster(4, 'obs-vacant');
    const a = cluster.add();
    const acquired = record(a.worker, 'shard:acquired');
    await started(a.worker);
    await advanceUntil(() => cluster.fullyOwned(), 500);
    expect(acquired.map((e) => e.reason)).toEqual(['vacant', 'vacant', 'vacant', 'vacant']);
    expect(acquired.every((e) => e.vacantMs === undefined)).toBe(true);
    await stopped(a.worker);
  });

  it('calls shards released by a draining stop a handoff, and says how long each took to drain', async () => {
    const cluster = new Cluster(4, 'obs-handoff');
    const a = cluster.add({ handler: slowToSettle(100) });
    await started(a.worker);
    await advanceUntil(() => cluster.fullyOwned(), 500);
    const b = cluster.add({ handler: slowToSettle(100) });
    await started(b.worker);
    await advanceUntil(() => b.worker.status().shards.length === 2, 2000);
    const taken = record(b.worker, 'shard:acquired');
    const released = record(a.worker, 'shard:released');
    const stopping = a.worker.stop();
    await advanceUntil(() => b.worker.status().shards.length === 4, 3000);
    await vi.advanceTimersByTimeAsync(100);
    await stopping;
    expect(taken).toHaveLength(2);
    for (const e of taken) {
      expect(e.reason).toBe('handoff');
      expect(e.vacantMs).toBeGreaterThanOrEqual(0);
      expect(e.vacantMs).toBeLessThan(500);
    }
    expect(released).toHaveLength(2);
    for (const e of released) {
      expect(e).toMatchObject({ reason: 'stop', released: true });
      expect(e.drainMs).toBeGreaterThanOrEqual(100);
    }
    await stopped(b.worker);
  });

  it('calls shards of an owner that vanished a failover; its own shards are released as lease-lost', async () => {
    const cluster = new Cluster(4, 'obs-failover');
    const [a, b] = [cluster.add(), cluster.add()];
    await started(a.worker);
    await started(b.worker);
    await advanceUntil(() => cluster.fullyOwned() && a.worker.status().shards.length === 2, 2000);
    const taken = record(b.worker, 'shard:acquired');
    const revoked = record(a.worker, 'shard:revoked');
    const released = record(a.worker, 'shard:released');
    a.conn.setAvailable(false);
    await advanceUntil(() => b.worker.status().shards.length === 4, 3000);
    expect(taken.map((e) => e.reason)).toEqual(['failover', 'failover']);
    for (const e of taken) expect(e.vacantMs).toBeGreaterThanOrEqual(0);
    expect(revoked.map((e) => e.reason)).toEqual(['lease-lost', 'lease-lost']);
    await advanceUntil(() => released.length === 2, 1000);
    expect(released.every((e) => e.reason === 'lease-lost' && !e.released)).toBe(true);
    a.conn.setAvailable(true);
    await Promise.all([a.worker.stop(), b.worker.stop(), vi.advanceTimersByTimeAsync(15_000)]);
  });
});

describe('lease renewals', () => {
  it('reports every successful renewal with its round trip, and none while the backend is cut', async () => {
    const cluster = new Cluster(2, 'obs-renew');
    const a = cluster.add({}, 3);
    const renewed = record(a.worker, 'lease:renewed');
    await started(a.worker);
    await vi.advanceTimersByTimeAsync(1000);
    // TTL 1000 ms, heartbeats every 333 ms: three in one second.
    expect(renewed.length).toBeGreaterThanOrEqual(2);
    expect(renewed.length).toBeLessThanOrEqual(4);
    for (const e of renewed) {
      expect(e.instance).toBe(a.worker.status().instance);
      expect(e.latencyMs).toBeGreaterThan(0);
    }
    const before = renewed.length;
    a.conn.setAvailable(false);
    await vi.advanceTimersByTimeAsync(500);
    expect(renewed.length).toBe(before);
    a.conn.setAvailable(true);
    await stopped(a.worker);
  });
});
