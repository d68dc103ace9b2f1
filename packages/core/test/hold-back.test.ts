/**
 * A replica that claims nothing for a while says why and until when (issue
 * 21): the first start of a service on a backend that can lose its data, and
 * the time after such a backend forgot a lease.
 */

import { type ClaimsHeldBack, MemoryDiscovery, MemoryStore, Worker } from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HoldBack } from '../src/hold-back.js';
import { advanceUntil, Cluster, started, stopped, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

/** A store that reports group ages, as Redis does (it can lose all its data). */
function forgetfulStore(): MemoryStore {
  const store = new MemoryStore();
  store.reset();
  return store;
}

describe('claims:held-back', () => {
  it('tells why the first start of a new group waits one TTL, and until when', async () => {
    const store = forgetfulStore();
    const worker = new Worker({
      service: 'fresh',
      shards: 2,
      leaseTtlMs: 1000,
      discovery: new MemoryDiscovery({ store }),
      handler: () => undefined,
    });
    const held: ClaimsHeldBack[] = [];
    worker.on('claims:held-back', (e) => held.push(e));
    let firstClaimAt = Number.NaN;
    worker.on('shard:acquired', () => {
      if (Number.isNaN(firstClaimAt)) firstClaimAt = performance.now();
    });
    const startedAt = performance.now();
    const wallAtStart = Date.now();
    await started(worker);
    expect(held).toHaveLength(1);
    const [event] = held as [ClaimsHeldBack];
    expect(event.reason).toBe('young-group');
    expect(event.waitMs).toBeGreaterThan(900);
    expect(event.waitMs).toBeLessThanOrEqual(1000);
    expect(event.untilMs - wallAtStart).toBeGreaterThan(900);
    expect(event.untilMs - wallAtStart).toBeLessThanOrEqual(1000);
    expect(event.groupAgeMs).toBeLessThan(100);
    expect(event.message).toMatch(/^claiming no shards for \d+ ms \(until \d{4}-\d\d-\d\dT.*Z\): the group record/);
    expect(event.message).toContain('memory backend cannot tell a new service from one whose data it lost');
    await advanceUntil(() => worker.status().shards.length === 2, 3000);
    // It waited as long as it said, and said it once.
    expect(firstClaimAt - startedAt).toBeGreaterThanOrEqual(event.waitMs - 60);
    expect(held).toHaveLength(1);
    await stopped(worker);
  });

  it('warns when nobody listens, as errors do', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const worker = new Worker({
        service: 'quiet',
        shards: 1,
        leaseTtlMs: 1000,
        discovery: new MemoryDiscovery({ store: forgetfulStore() }),
        handler: () => undefined,
      });
      await started(worker);
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines).toEqual([expect.stringMatching(/^\[shardwork quiet\] claiming no shards for \d+ ms \(until /)]);
      await stopped(worker);
    } finally {
      warn.mockRestore();
    }
  });

  it('is not emitted where no wait is needed (a store that never lost data)', async () => {
    const cluster = new Cluster(2);
    const { worker } = cluster.add();
    const held: ClaimsHeldBack[] = [];
    worker.on('claims:held-back', (e) => held.push(e));
    await started(worker);
    expect(worker.status().shards).toHaveLength(2);
    expect(held).toEqual([]);
    await cluster.stopAll();
  });

  it('tells why a replica whose lease the backend forgot claims nothing for one TTL', async () => {
    const cluster = new Cluster(4);
    const a = cluster.add();
    await started(a.worker);
    const held: ClaimsHeldBack[] = [];
    a.worker.on('claims:held-back', (e) => held.push(e));
    cluster.store.reset();
    await advanceUntil(() => held.length > 0, 2000);
    expect(held[0]?.reason).toBe('data-loss');
    expect(held[0]?.message).toMatch(/no longer knows this replica's lease although it cannot have expired yet/);
    await advanceUntil(() => a.worker.status().shards.length === 4, 5000);
    // The young group it recreated ends at about the same time: no second event for it.
    expect(held.map((e) => e.reason)).toEqual(['data-loss']);
    await cluster.stopAll();
  });
});

describe('HoldBack (the rule)', () => {
  const words = { backend: 'redis', kind: 'service', units: 'shards', leaseTtlMs: 1000 };
  function holdBack(): { hb: HoldBack; told: ClaimsHeldBack[]; clock: { t: number; now(): number } } {
    const clock = {
      t: 5000,
      now() {
        return this.t;
      },
    };
    const told: ClaimsHeldBack[] = [];
    const hb = new HoldBack({ clock, leaseTtlMs: 1000, words, told: (e) => told.push(e) });
    return { hb, told, clock };
  }
  const lease = (deadline: number): { signal: AbortSignal; state: string; deadline: number; end(): void } => {
    const ended = new AbortController();
    const l = { signal: ended.signal, state: 'held', deadline, end: () => undefined };
    l.end = () => {
      l.state = 'lost';
      ended.abort();
    };
    return l;
  };

  it('holds claims back one TTL after a lease lost before its deadline, and not after one lost past it', () => {
    const { hb, told, clock } = holdBack();
    const late = lease(4900);
    hb.follow(late);
    late.end();
    expect(hb.remainingMs()).toBeLessThanOrEqual(0);
    const early = lease(5500);
    hb.follow(early);
    early.end();
    expect(hb.remainingMs()).toBe(1000);
    expect(told.map((e) => [e.reason, e.waitMs])).toEqual([['data-loss', 1000]]);
    clock.t += 1000;
    expect(hb.remainingMs()).toBe(0);
  });

  it('holds claims back until a young group is one TTL old, telling a moved end only when it moved markedly', () => {
    const { hb, told, clock } = holdBack();
    hb.groupListed(undefined);
    hb.groupListed(1000);
    expect(told).toEqual([]);
    hb.groupListed(200);
    expect(hb.remainingMs()).toBe(800);
    clock.t += 100;
    // A round trip of jitter: held a little longer, said once.
    hb.groupListed(250);
    expect(hb.remainingMs()).toBe(750);
    expect(told.map((e) => [e.reason, e.waitMs, e.groupAgeMs])).toEqual([['young-group', 800, 200]]);
    // A data loss meanwhile is news.
    const early = lease(clock.t + 500);
    hb.follow(early);
    early.end();
    expect(told.map((e) => e.reason)).toEqual(['young-group', 'data-loss']);
  });
});
