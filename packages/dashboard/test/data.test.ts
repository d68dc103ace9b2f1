import { createDiscovery, type Discovery } from '@shardwork/core';
import { claimOne, releaseOne } from '@shardwork/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DashboardData } from '../src/index.js';
import { randomName } from './support.js';

let discovery: Discovery;
let service: string;
let data: DashboardData;

const member = (id: string) => ({ id, host: 'h', pid: 1, startedAt: Date.now(), weight: 1, labels: {} });

beforeEach(async () => {
  discovery = await createDiscovery('memory://');
  service = randomName('svc');
  await discovery.ensureGroup(service, { shardCount: 3, leaseTtlMs: 60_000 });
  data = new DashboardData({
    discovery,
    discoverySource: 'memory://',
    jobs: undefined,
    jobsSource: undefined,
    services: [service],
    timeoutMs: 2000,
    inProcessJobs: false,
  });
});
afterEach(async () => {
  await discovery.close();
});

describe('movements', () => {
  it('records owner changes between snapshots (not the first look), newest first', async () => {
    await discovery.register(service, member('a'), 60_000);
    await discovery.register(service, member('b'), 60_000);
    const first = await claimOne(discovery, service, 'a', 0);
    expect(first.ok).toBe(true);
    expect((await data.services()).movements).toEqual([]);

    await claimOne(discovery, service, 'a', 1);
    const t0 = first.ok ? first.token : -1;
    expect(await releaseOne(discovery, service, 'a', 0, t0)).toBe(true);
    const moved = await claimOne(discovery, service, 'b', 0);
    const view = await data.services();
    expect(view.problem).toBeUndefined();
    const byShard = new Map(view.movements.map((m) => [m.shard, m]));
    expect(byShard.get(0)).toMatchObject({ service, from: 'a', to: 'b', token: moved.ok ? moved.token : -1 });
    expect(byShard.get(1)).toMatchObject({ from: undefined, to: 'a' });
    expect(byShard.has(2)).toBe(false);

    // No change, no movement.
    expect((await data.services()).movements).toHaveLength(2);
  });

  it('reports a failing backend with the time of the data still shown', async () => {
    await data.services();
    const readAt = (await data.services()).readAt;
    await discovery.close();
    const view = await data.services();
    expect(view.problem?.backend).toBe('Discovery at memory://');
    expect(view.problem?.dataFrom).toBe(readAt);
    expect(view.services.map((s) => s.name)).toEqual([service]);
  });
});
