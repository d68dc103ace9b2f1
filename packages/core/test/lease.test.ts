/**
 * A lease is a cancellation scope (etcd's concurrency.Session with Done()):
 * its signal aborts when it is lost, and every shard run under it stops by
 * itself, without the worker revoking them one by one.
 */

import {
  DiscoveryUnavailableError,
  LeaseLostError,
  MemoryDiscovery,
  MemoryStore,
  type ShardContext,
  StartTimeoutError,
  sleep,
  Worker,
} from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Lease } from '../src/lease.js';
import { advanceUntil, Cluster, started, useFakeTime } from './harness.js';

describe('Lease.signal', () => {
  it('aborts once, with the LeaseLostError, when the lease is lost', () => {
    const lease = new Lease('m1', 1, 1000);
    const reasons: unknown[] = [];
    lease.signal.addEventListener('abort', () => reasons.push(lease.signal.reason));
    expect(lease.signal.aborted).toBe(false);
    const error = new LeaseLostError('m1', 'no successful renewal before the deadline');
    expect(lease.retire('lost', error)).toBe(true);
    expect(lease.retire('released')).toBe(false);
    expect(lease.state).toBe('lost');
    expect(reasons).toEqual([error]);
  });

  it('takes a listener per shard run without a MaxListenersExceededWarning', async () => {
    const lease = new Lease('m1', 1, 1000);
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      for (let run = 0; run < 64; run++) lease.signal.addEventListener('abort', () => undefined, { once: true });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('aborts with an AbortError when stop() releases the lease', () => {
    const lease = new Lease('m1', 1, 1000);
    expect(lease.retire('released')).toBe(true);
    expect(lease.signal.aborted).toBe(true);
    expect((lease.signal.reason as Error).name).toBe('AbortError');
  });
});

describe('shard runs under a lease', () => {
  let cluster: Cluster;
  beforeEach(() => useFakeTime());
  afterEach(async () => {
    // (Custom handlers record no ownership intervals: nothing for assertExclusive to check.)
    await cluster.stopAll();
    vi.useRealTimers();
  });

  it('stop when the lease is lost: every ctx.signal aborts with the lease’s error, each shard:revoked before lease:lost', async () => {
    cluster = new Cluster(3);
    const seen: ShardContext[] = [];
    const a = cluster.add({
      handler: {
        async do(ctx) {
          seen.push(ctx);
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        },
      },
    });
    await started(a.worker);
    expect(a.worker.status().shards).toHaveLength(3);
    const events: string[] = [];
    let lostError: unknown;
    a.worker.on('shard:revoked', ({ shard, reason }) => events.push(`revoked ${shard} ${reason}`));
    a.worker.on('lease:lost', ({ error }) => {
      events.push('lease:lost');
      lostError = error;
    });
    a.conn.setAvailable(false);
    await advanceUntil(() => lostError !== undefined, 2000);
    expect(events).toEqual(['revoked 0 lease-lost', 'revoked 1 lease-lost', 'revoked 2 lease-lost', 'lease:lost']);
    expect(lostError).toBeInstanceOf(LeaseLostError);
    for (const ctx of seen) {
      expect(ctx.signal.reason).toBe(lostError);
      expect(ctx.owned).toBe(false);
      expect(ctx.held).toBe(false);
    }
    a.conn.setAvailable(true);
    await advanceUntil(() => cluster.fullyOwned(), 3000);
  });

  it('stops the owned runs and lets a draining one drain when the lease is lost mid-rebalance, then recovers', async () => {
    // A run revoked for a rebalance was revoked a second time on lease loss,
    // which threw in the fence timer (an illegal revoking → revoking move)
    // and left the replica without lease:lost and without recovery.
    cluster = new Cluster(2);
    const slow = {
      async do(ctx: ShardContext) {
        // Ignores its signal for a while, as a handler finishing a side effect would.
        await sleep(3000);
        void ctx;
      },
    };
    const a = cluster.add({ handler: slow, revokeTimeoutMs: 10_000 });
    await started(a.worker);
    expect(a.worker.status().shards).toHaveLength(2);
    const revoked: string[] = [];
    a.worker.on('shard:revoked', ({ shard, reason }) => revoked.push(`${shard} ${reason}`));
    let lost = 0;
    a.worker.on('lease:lost', () => {
      lost += 1;
    });
    const b = cluster.add({ handler: slow, revokeTimeoutMs: 10_000 });
    const bStarted = b.worker.start();
    await advanceUntil(() => revoked.length === 1, 2000);
    expect(revoked).toEqual(['1 rebalance']);
    a.conn.setAvailable(false);
    await advanceUntil(() => lost === 1, 2000);
    expect(revoked).toEqual(['1 rebalance', '0 lease-lost']);
    expect(a.errors.filter((e) => !(e instanceof Error && /unavailable/i.test(e.message)))).toEqual([]);
    a.conn.setAvailable(true);
    await bStarted;
    await advanceUntil(() => cluster.fullyOwned() && a.worker.status().shards.length === 1, 10_000);
  });
});

describe('registration at start', () => {
  beforeEach(() => useFakeTime());
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is bounded by startTimeoutMs while a call is still out, and a registration landing later is let go', async () => {
    const store = new MemoryStore();
    // Every call takes 4 s: a server that accepts connections and does not answer in time.
    const worker = new Worker({
      service: 's',
      shards: 1,
      discovery: new MemoryDiscovery({ store, latencyMs: 4000 }),
      startTimeoutMs: 3000,
      handler: () => undefined,
    });
    const startedAt = performance.now();
    let failedAt = Number.NaN;
    const result = worker.start().catch((e: unknown) => {
      failedAt = performance.now();
      return e;
    });
    await vi.advanceTimersByTimeAsync(30_000);
    const error = await result;
    expect(error).toBeInstanceOf(StartTimeoutError);
    expect((error as StartTimeoutError).cause).toBeInstanceOf(DiscoveryUnavailableError);
    expect((error as Error).message).toContain('no reply within 3000 ms');
    expect(failedAt - startedAt).toBe(3000);
    expect(worker.state).toBe('stopped');
    // The attempt in flight went on (group check, then registration) and was let go once it landed.
    expect((await new MemoryDiscovery({ store }).snapshot('s')).members).toEqual([]);
  });
});
