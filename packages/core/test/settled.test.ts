/**
 * `Worker.settled()`: what a library that runs a worker for its users (a job
 * adapter) awaits before it says it consumes, instead of polling `status()`.
 */

import { IllegalStateError } from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Cluster, started, stopped, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

describe('Worker.settled()', () => {
  it('resolves once the replica owns a shard, and at once afterwards', async () => {
    const cluster = new Cluster(2);
    const { worker } = cluster.add();
    let settled = false;
    const waiting = worker.settled().then(() => {
      settled = true;
    });
    expect(settled).toBe(false);
    await started(worker);
    await vi.advanceTimersByTimeAsync(50);
    await waiting;
    expect(worker.status().shards.length).toBeGreaterThan(0);
    await expect(worker.settled()).resolves.toBeUndefined();
    await cluster.stopAll();
  });

  it('resolves for a standby replica (more replicas than shards)', async () => {
    const cluster = new Cluster(1);
    const first = cluster.add().worker;
    await started(first);
    const second = cluster.add().worker;
    const waiting = second.settled();
    await started(second);
    await vi.advanceTimersByTimeAsync(200);
    await waiting;
    expect(second.status().standby).toBe(true);
    await cluster.stopAll();
  });

  it('rejects when the worker stops before it settled', async () => {
    const cluster = new Cluster(2);
    const { worker } = cluster.add();
    const waiting = worker.settled();
    const outcome = waiting.then(
      () => 'settled',
      (error: unknown) => error,
    );
    await stopped(worker);
    expect(await outcome).toBeInstanceOf(IllegalStateError);
    await expect(worker.settled()).rejects.toThrow(IllegalStateError);
  });
});
