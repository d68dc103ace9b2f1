/**
 * The upkeep of a service's records (issue 21): a stopped service is reported
 * as stopped, not degraded, and can be forgotten; a claim written over behind
 * a running owner's back is noticed at its next heartbeat.
 */

import {
  inspectSnapshot,
  MemoryDiscovery,
  type ServiceInspection,
  ServiceRunningError,
  serviceHealth,
} from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { advanceUntil, Cluster, started, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

describe('inspectSnapshot', () => {
  it('calls a service whose replicas all stopped "stopped", not degraded, until it is forgotten', async () => {
    const cluster = new Cluster(4);
    const [a, b] = [cluster.add(), cluster.add()];
    await started(a.worker);
    await started(b.worker);
    await advanceUntil(() => cluster.fullyOwned(), 500);
    const tool = new MemoryDiscovery({ store: cluster.store });
    const inspect = async (): Promise<ServiceInspection> => {
      const p = inspectSnapshot(tool, cluster.service);
      await vi.advanceTimersByTimeAsync(1);
      return p;
    };
    expect(await inspect()).toMatchObject({ health: 'ok', unowned: [] });
    const forgetting = tool.forgetService(cluster.service).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1);
    const refused = await forgetting;
    expect(refused).toBeInstanceOf(ServiceRunningError);
    expect((refused as ServiceRunningError).members).toHaveLength(2);
    expect((refused as Error).message).toMatch(/still has 2 live member\(s\).*before forgetting it/);
    await cluster.stopAll();
    const stopped = await inspect();
    expect(stopped).toMatchObject({ health: 'stopped', shardCount: 4, members: [], claims: [] });
    expect(stopped.unowned).toEqual([0, 1, 2, 3]);
    const forgot = tool.forgetService(cluster.service);
    await vi.advanceTimersByTimeAsync(1);
    expect(await forgot).toBe(true);
    expect((await inspect()).health).toBe('absent');
  });

  it('calls a running service with unowned shards, or an unreadable shard count, degraded', () => {
    const member = { id: 'm', host: 'h', pid: 1, startedAt: 0, weight: 1, labels: {}, joinSeq: 1 };
    const base = { revision: '1', invalid: [], members: [member] };
    const claim = (shard: number) => ({ shard, owner: 'm', token: shard + 1 });
    expect(serviceHealth({ ...base, shardCount: 2, claims: [claim(0), claim(1)] })).toEqual({
      health: 'ok',
      unowned: [],
    });
    expect(serviceHealth({ ...base, shardCount: 3, claims: [claim(1)] })).toEqual({
      health: 'degraded',
      unowned: [0, 2],
    });
    expect(serviceHealth({ ...base, shardCount: undefined, claims: [] }).health).toBe('degraded');
    const garbage = [{ key: 'k', reason: 'not JSON' }];
    expect(serviceHealth({ ...base, members: [], shardCount: undefined, claims: [], invalid: garbage }).health).toBe(
      'stopped',
    );
  });
});

describe('claims written over behind a running owner', () => {
  it('are noticed at the next heartbeat: the owner stops acting at once and the service converges', async () => {
    const cluster = new Cluster(4);
    const [a, b] = [cluster.add(), cluster.add()];
    await started(a.worker);
    await started(b.worker);
    await advanceUntil(() => cluster.fullyOwned() && b.worker.status().shards.length === 2, 500);
    const taken = a.worker.status().shards[0] as { shard: number; token: number };
    const highest = Math.max(...cluster.replicas.flatMap((r) => r.worker.status().shards.map((s) => s.token)));
    const revoked: string[] = [];
    a.worker.on('shard:revoked', ({ shard, reason }) => revoked.push(`${shard}:${reason}`));
    // Another member's id, by hand, no revision change: no event, no version check would tell a.
    cluster.store.overwriteClaim(cluster.service, taken.shard, {
      owner: b.worker.status().instance as string,
      token: highest + 100,
    });
    const took = await advanceUntil(() => revoked.length > 0, 30_000);
    expect(revoked).toEqual([`${taken.shard}:claim-lost`]);
    // Within a heartbeat (TTL / 3), not at the next resync (30 s).
    expect(took).toBeLessThanOrEqual(1000 / 3 + 50);
    await advanceUntil(() => cluster.fullyOwned(), 2000);
    await cluster.stopAll();
    cluster.assertExclusive();
  });

  it('pass the claims the worker acts on with every renewal', async () => {
    const cluster = new Cluster(2);
    const { worker, conn } = cluster.add();
    const renewals: unknown[][] = [];
    const renew = conn.renew.bind(conn);
    conn.renew = (service, id, held) => {
      renewals.push([...(held ?? [])]);
      return renew(service, id, held);
    };
    await started(worker);
    await vi.advanceTimersByTimeAsync(400);
    const owned = worker.status().shards.map(({ shard, token }) => ({ shard, token }));
    expect(renewals.at(-1)).toEqual(owned);
    await cluster.stopAll();
  });

  it('spread over several renewals for a replica holding more than 1000 shards', async () => {
    const cluster = new Cluster(1500);
    const { worker, conn } = cluster.add({ handler: () => undefined });
    const renewals: number[][] = [];
    const renew = conn.renew.bind(conn);
    conn.renew = (service, id, held) => {
      renewals.push((held ?? []).map((c) => c.shard));
      return renew(service, id, held);
    };
    await started(worker);
    await advanceUntil(() => worker.status().shards.length === 1500, 1000);
    renewals.length = 0;
    await advanceUntil(() => renewals.length >= 2, 1000);
    const [first, second] = renewals as [number[], number[]];
    expect(first).toHaveLength(1000);
    expect(second).toHaveLength(1000);
    // Every shard is checked within two renewals.
    expect(new Set([...first, ...second]).size).toBe(1500);
    await cluster.stopAll();
  });
});
