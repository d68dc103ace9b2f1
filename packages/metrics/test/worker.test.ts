import { MemoryStore } from '@shardwork/core';
import { ShardworkMetrics } from '@shardwork/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { service, value, waitFor, worker } from './support.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop().catch(() => undefined)));
});

function track<T extends { worker: { stop(): Promise<unknown> }; conn: { setAvailable(a: boolean): void } }>(r: T): T {
  stops.push(async () => {
    r.conn.setAvailable(true);
    await r.worker.stop();
  });
  return r;
}

describe('worker metrics (memory backend)', () => {
  it('counts vacant acquisitions, handoffs on rebalance and stop, revocations and the owned gauge', async () => {
    const store = new MemoryStore();
    const name = service('handoff');
    const [ma, mb] = [new ShardworkMetrics(), new ShardworkMetrics()];
    const a = track(worker(store, name));
    const b = track(worker(store, name));
    ma.instrumentWorker(a.worker);
    mb.instrumentWorker(b.worker);
    const ra = ma.registry;
    const rb = mb.registry;

    await a.worker.start();
    await waitFor(() => a.worker.status().shards.length === 4, 15_000, 'a owns 4');
    expect(await value(ra, 'shardwork_shards_owned', { service: name })).toBe(4);
    expect(await value(ra, 'shardwork_shard_acquisitions_total', { service: name, reason: 'vacant' })).toBe(4);

    await b.worker.start();
    await waitFor(
      () => b.worker.status().shards.length === 2 && a.worker.status().shards.length === 2,
      15_000,
      'split 2/2',
    );
    await waitFor(
      async () => (await value(ra, 'shardwork_shard_drain_seconds', { reason: 'rebalance' }, '_count')) === 2,
    );
    expect(await value(rb, 'shardwork_shard_acquisitions_total', { service: name, reason: 'handoff' })).toBe(2);
    expect(await value(rb, 'shardwork_handoff_seconds', { service: name }, '_count')).toBe(2);
    expect(await value(ra, 'shardwork_shard_revocations_total', { service: name, reason: 'rebalance' })).toBe(2);
    expect(await value(ra, 'shardwork_shards_owned', { service: name })).toBe(2);
    expect(await value(rb, 'shardwork_members', { service: name })).toBe(2);

    await b.worker.stop();
    expect(await value(rb, 'shardwork_shard_revocations_total', { service: name, reason: 'stop' })).toBe(2);
    expect(await value(rb, 'shardwork_shard_drain_seconds', { service: name, reason: 'stop' }, '_count')).toBe(2);
    expect(await value(rb, 'shardwork_shards_owned', { service: name })).toBe(0);
    await waitFor(() => a.worker.status().shards.length === 4, 15_000, 'a owns 4 again');
    await waitFor(async () => (await value(ra, 'shardwork_shard_acquisitions_total', { reason: 'handoff' })) === 2);
    expect(await value(ra, 'shardwork_shards_owned', { service: name })).toBe(4);
    // No label carries a shard index or member id.
    const text = await ma.metrics();
    expect(text).not.toMatch(/shard="|instance="|member="/);
  });

  it('counts a failover with its vacancy, lease loss and backend errors of a cut replica', async () => {
    const store = new MemoryStore();
    const name = service('failover');
    const [ma, mb] = [new ShardworkMetrics(), new ShardworkMetrics()];
    const a = track(worker(store, name));
    const b = track(worker(store, name));
    ma.instrumentWorker(a.worker);
    mb.instrumentWorker(b.worker);
    await a.worker.start();
    await b.worker.start();
    await waitFor(
      () => a.worker.status().shards.length === 2 && b.worker.status().shards.length === 2,
      15_000,
      'split 2/2',
    );

    b.conn.setAvailable(false);
    await waitFor(() => a.worker.status().shards.length === 4, 20_000, 'a takes over');
    expect(await value(ma.registry, 'shardwork_shard_acquisitions_total', { service: name, reason: 'failover' })).toBe(
      2,
    );
    expect(await value(ma.registry, 'shardwork_failover_seconds', { service: name }, '_count')).toBe(2);
    // The shard was vacant for a positive time, at most a few lease TTLs.
    const sum = await value(ma.registry, 'shardwork_failover_seconds', { service: name }, '_sum');
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(2 * 30);

    await waitFor(async () => (await value(mb.registry, 'shardwork_lease_losses_total', { service: name })) >= 1);
    expect(await value(mb.registry, 'shardwork_shard_revocations_total', { reason: 'lease-lost' })).toBe(2);
    expect(
      await value(mb.registry, 'shardwork_backend_errors_total', { code: 'DISCOVERY_UNAVAILABLE' }),
    ).toBeGreaterThan(0);
    expect(await value(mb.registry, 'shardwork_shards_owned', { service: name })).toBe(0);
  });

  it('counts lease renewals with their round trip, and stops counting after detach', async () => {
    const store = new MemoryStore();
    const name = service('renew');
    const m = new ShardworkMetrics();
    const a = track(worker(store, name, 1));
    const detach = m.instrumentWorker(a.worker);
    await a.worker.start();
    // TTL 1000 ms: a renewal every ~333 ms.
    await waitFor(async () => (await value(m.registry, 'shardwork_lease_renewals_total', { service: name })) >= 3);
    const renewals = await value(m.registry, 'shardwork_lease_renewals_total', { service: name });
    expect(
      await value(m.registry, 'shardwork_lease_renewal_seconds', { service: name }, '_count'),
    ).toBeGreaterThanOrEqual(renewals);
    expect(await value(m.registry, 'shardwork_lease_renewal_seconds', { service: name }, '_sum')).toBeGreaterThan(0);

    detach();
    const frozen = await value(m.registry, 'shardwork_lease_renewals_total', { service: name });
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await value(m.registry, 'shardwork_lease_renewals_total', { service: name })).toBe(frozen);
    // The detached worker's gauges are gone from the scrape.
    expect(await m.metrics()).not.toContain(`shardwork_shards_owned{service="${name}"}`);
  });

  it('counts handler errors by stage', async () => {
    const store = new MemoryStore();
    const name = service('handler');
    const { Worker, MemoryDiscovery } = await import('@shardwork/core');
    const conn = new MemoryDiscovery({ store });
    const w = new Worker({
      service: name,
      shards: 1,
      discovery: conn,
      leaseTtlMs: 1000,
      retry: { initialIntervalMs: 50, maximumIntervalMs: 50 },
      handler: {
        do: async () => {
          throw new Error('boom');
        },
        onError: () => undefined,
      },
    });
    w.on('error', () => undefined);
    track({ worker: w, conn });
    const m = new ShardworkMetrics();
    m.instrumentWorker(w);
    await w.start();
    await waitFor(
      async () => (await value(m.registry, 'shardwork_handler_errors_total', { service: name, stage: 'do' })) >= 2,
    );
  });

  it('refuses what is not a worker, and a second instance on one registry', () => {
    const m = new ShardworkMetrics();
    expect(() => m.instrumentWorker({} as never)).toThrow(/Invalid option "worker"/);
    expect(() => new ShardworkMetrics({ registry: m.registry })).toThrow(/already been registered/);
    expect(() => new ShardworkMetrics({ prefix: 'bad-prefix' })).toThrow(/Invalid option "prefix"/);
    expect(() => new ShardworkMetrics({ registry: {} as never })).toThrow(/Invalid option "registry"/);
    expect(new ShardworkMetrics({ prefix: 'app_' }).registry.getSingleMetric('app_shards_owned')).toBeDefined();
  });
});
