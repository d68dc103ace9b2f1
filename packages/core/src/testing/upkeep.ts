/**
 * Conformance cases for the upkeep of a service's records: renewals that
 * check the claims a member holds, and forgetting a stopped service. Part of
 * `describeDiscoveryConformance`, in a file of their own.
 *
 * @module
 */

import { expect, it } from 'vitest';
import type { Discovery, DiscoveryEvent, RenewResult } from '../discovery/contract.js';
import { ServiceRunningError } from '../errors.js';
import { claimOne, memberInfo, releaseOne, uniqueService } from './fixtures.js';

/** What the cases need from the suite around them. */
export interface UpkeepContext {
  connect(): Promise<Discovery>;
  readonly ttl: number;
  advance(ms: number): Promise<void>;
  eventually(check: () => Promise<void>, withinMs: number): Promise<void>;
}

/** Register the upkeep cases inside the current `describe`. */
export function describeUpkeep({ connect, ttl, advance, eventually }: UpkeepContext): void {
  it('reports, on renewal, the held claims that are no longer the member’s', async () => {
    const [a, b] = [await connect(), await connect()];
    const svc = uniqueService();
    const [m1, m2] = [memberInfo(), memberInfo()];
    await a.register(svc, m1, ttl * 5);
    await b.register(svc, m2, ttl * 5);
    const { results } = await a.claimMany(svc, m1.id, [0, 1, 2]);
    const [t0, t1, t2] = results.map((r) => r.token) as [number, number, number];
    const none = (await a.renew(svc, m1.id, [])) as RenewResult | undefined;
    expect(none?.lost ?? []).toEqual([]);
    expect(((await a.renew(svc, m1.id, [{ shard: 0, token: t0 }])) as RenewResult).lost).toEqual([]);
    // Shard 1 released and taken by m2; shard 2 held, but not with the token m1 names.
    expect(await releaseOne(a, svc, m1.id, 1, t1)).toBe(true);
    expect((await claimOne(b, svc, m2.id, 1)).ok).toBe(true);
    const held = [
      { shard: 0, token: t0 },
      { shard: 1, token: t1 },
      { shard: 2, token: t2 + 1 },
      { shard: 3, token: t2 },
    ];
    const result = (await a.renew(svc, m1.id, held)) as RenewResult;
    expect([...result.lost].sort((x, y) => x.shard - y.shard)).toEqual(held.slice(1));
    // It renewed all the same, and took nothing away.
    expect((await a.snapshot(svc)).claims).toHaveLength(3);
  });

  it('forgets a service without live members, refusing while one lives, and keeps tokens increasing', async () => {
    const [d, watcher] = [await connect(), await connect()];
    if (d.forgetService === undefined) return;
    const svc = uniqueService('forget');
    const events: DiscoveryEvent[] = [];
    const unwatch = watcher.watch(svc, (e) => events.push(e));
    await advance(Math.min(200, ttl / 5));
    await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: ttl });
    const m = memberInfo();
    await d.register(svc, m, ttl * 5);
    const first = await claimOne(d, svc, m.id, 0);
    await d.drain(svc, m.id);
    const refused = await d.forgetService(svc).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ServiceRunningError);
    expect(refused).toMatchObject({ code: 'SERVICE_RUNNING', service: svc, members: [m.id] });
    expect((await d.snapshot(svc)).shardCount).toBe(4);
    await d.unregister(svc, m.id);
    events.length = 0;
    expect(await d.forgetService(svc)).toBe(true);
    const gone = await d.snapshot(svc);
    expect(gone).toMatchObject({ shardCount: undefined, members: [], claims: [], invalid: [] });
    if (d.services !== undefined) expect(await d.services()).not.toContain(svc);
    expect(await d.forgetService(svc)).toBe(false);
    // Watchers learn of it, and the service starts afresh with any settings.
    await eventually(async () => expect(events.length).toBeGreaterThan(0), ttl * 2);
    unwatch();
    expect(await d.ensureGroup(svc, { shardCount: 8, leaseTtlMs: ttl * 2 })).toMatchObject({ shardCount: 8 });
    const again = memberInfo();
    await d.register(svc, again, ttl * 5);
    const next = await claimOne(d, svc, again.id, 0);
    expect(next.ok).toBe(true);
    expect(next.token).toBeGreaterThan(first.token);
    await d.unregister(svc, again.id);
    expect(await d.forgetService(svc)).toBe(true);
  });
}
