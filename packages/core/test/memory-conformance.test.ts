import { MemoryDiscovery, MemoryStore } from '@shardwork/core';
import { describeDiscoveryConformance } from '@shardwork/core/testing';
import { describe, expect, it } from 'vitest';

const store = new MemoryStore();

describeDiscoveryConformance({
  name: 'memory',
  ttlMs: 200,
  connect: () => new MemoryDiscovery({ store }),
});

describeDiscoveryConformance({
  name: 'memory with latency',
  ttlMs: 200,
  connect: () => new MemoryDiscovery({ store, latencyMs: 2 }),
});

describe('memory group age', () => {
  it('is reported only for groups created after the store lost its data', async () => {
    const fresh = new MemoryStore();
    const conn = new MemoryDiscovery({ store: fresh });
    await conn.ensureGroup('g', { shardCount: 2, leaseTtlMs: 1000 });
    expect((await conn.snapshot('g')).groupAgeMs).toBeUndefined();
    fresh.reset();
    expect((await conn.snapshot('g')).shardCount).toBeUndefined();
    await conn.ensureGroup('g', { shardCount: 2, leaseTtlMs: 1000 });
    await new Promise((r) => setTimeout(r, 30));
    const age = (await conn.snapshot('g')).groupAgeMs;
    expect(age).toBeGreaterThanOrEqual(25);
    expect(age).toBeLessThan(1000);
  });
});

describe('memory reconnect notifications', () => {
  it('sends reset once per watch after a cut, and never after unwatch', async () => {
    const conn = new MemoryDiscovery({ store: new MemoryStore() });
    const seen: string[] = [];
    const listener = (e: { type: string }): void => void seen.push(e.type);
    const offA = conn.watch('a', listener);
    const offB = conn.watch('b', listener);
    conn.setAvailable(false);
    conn.setAvailable(true);
    await Promise.resolve();
    expect(seen).toEqual(['reset', 'reset']);
    offA();
    conn.setAvailable(false);
    conn.setAvailable(true);
    offB(); // unsubscribed before the queued notification is delivered
    await Promise.resolve();
    expect(seen).toEqual(['reset', 'reset']);
  });
});
