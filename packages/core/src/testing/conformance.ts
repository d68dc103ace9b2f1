/**
 * The discovery conformance suite: one set of vitest tests that every backend
 * runs unchanged against a real server.
 *
 * ```ts
 * import { describeDiscoveryConformance } from '@shardwork/core/testing';
 * describeDiscoveryConformance({
 *   name: 'redis',
 *   ttlMs: 1000,
 *   connect: () => new RedisDiscovery({ url }),
 *   writeGarbage: async (service) => { … },
 * });
 * ```
 *
 * @module
 */

import { afterEach, describe, expect, it } from 'vitest';
import type { Claim, Discovery, DiscoveryEvent, MemberInfo, Snapshot } from '../discovery/contract.js';
import { DiscoveryUnavailableError, LeaseExpiredError } from '../errors.js';
import { ServiceView } from '../service-view.js';
import { claimOne, memberInfo, releaseOne, uniqueService } from './fixtures.js';
import { describeUpkeep } from './upkeep.js';

export { memberInfo, uniqueService } from './fixtures.js';

/** How the suite reaches a backend. */
export interface ConformanceHarness {
  /** Backend name, used in test titles. */
  readonly name: string;
  /** Lease TTL used by the suite (the smallest the backend supports well, e.g. 1000). */
  readonly ttlMs: number;
  /** Open a new client connection to the same backend server. */
  connect(): Discovery | Promise<Discovery>;
  /**
   * Write, next to the valid records of `service`, one unparsable member
   * record and one unparsable claim record, the way a buggy or foreign writer might.
   */
  writeGarbage?(service: string): Promise<void>;
  /**
   * Let `ms` of backend time pass. Defaults to a real sleep; the memory backend
   * with a fake clock advances its timers instead.
   */
  advance?(ms: number): Promise<void>;
}

/** Register the conformance tests for one backend inside the current vitest file. */
export function describeDiscoveryConformance(harness: ConformanceHarness): void {
  const ttl = harness.ttlMs;
  const advance = harness.advance ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  describe(`discovery conformance: ${harness.name}`, () => {
    const open: Discovery[] = [];
    const connect = async (): Promise<Discovery> => {
      const discovery = await harness.connect();
      open.push(discovery);
      return discovery;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((d) => d.close()));
    });

    /** Poll until `check` passes, advancing backend time in small steps. */
    async function eventually(check: () => Promise<void>, withinMs: number): Promise<void> {
      const step = Math.max(10, Math.floor(ttl / 20));
      let last: unknown;
      for (let waited = 0; waited <= withinMs; waited += step) {
        try {
          await check();
          return;
        } catch (error) {
          last = error;
        }
        await advance(step);
      }
      throw last;
    }

    it('stores the first group settings and returns them to later callers', async () => {
      const d = await connect();
      const svc = uniqueService();
      const first = { shardCount: 8, leaseTtlMs: ttl };
      expect(await d.ensureGroup(svc, first)).toEqual({ ...first, invalid: [], repaired: [] });
      expect(await d.ensureGroup(svc, { shardCount: 16, leaseTtlMs: ttl * 2 })).toEqual({
        ...first,
        invalid: [],
        repaired: [],
      });
      expect((await d.snapshot(svc)).shardCount).toBe(8);
      expect((await d.snapshot(uniqueService())).shardCount).toBeUndefined();
    });

    it('lists the services it holds a group record for (when it can enumerate them)', async () => {
      const d = await connect();
      if (d.services === undefined) return;
      const [x, y] = [uniqueService('svcs'), uniqueService('svcs')].sort() as [string, string];
      await d.ensureGroup(y, { shardCount: 2, leaseTtlMs: ttl });
      await d.ensureGroup(x, { shardCount: 3, leaseTtlMs: ttl });
      const unread = uniqueService('svcs');
      await d.snapshot(unread); // reading a service does not create it
      const listed = await d.services();
      expect(listed).toEqual(expect.arrayContaining([x, y]));
      expect(listed.indexOf(x)).toBeLessThan(listed.indexOf(y));
      expect(listed).not.toContain(unread);
    });

    it('claims a batch in one call: free shards are claimed, held ones name their owner', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const m1 = memberInfo();
      const m2 = memberInfo();
      await a.register(svc, m1, ttl * 5);
      await b.register(svc, m2, ttl * 5);
      const held = await claimOne(a, svc, m1.id, 2);
      const batch = await b.claimMany(svc, m2.id, [0, 1, 2, 3]);
      expect(batch.repaired).toEqual([]);
      expect(batch.results).toHaveLength(4);
      expect(batch.results[2]).toEqual({ ok: false, owner: m1.id, token: held.token });
      for (const i of [0, 1, 3]) {
        const r = batch.results[i];
        expect(r?.ok).toBe(true);
        expect(r?.token).toBeGreaterThan(held.token);
      }
      expect((await b.claimMany(svc, m2.id, [])).results).toEqual([]);
      const snap = await a.snapshot(svc);
      expect(snap.claims.map((c) => `${c.shard}:${c.owner}`).sort()).toEqual(
        [`0:${m2.id}`, `1:${m2.id}`, `2:${m1.id}`, `3:${m2.id}`].sort(),
      );
      const gone = memberInfo();
      await expect(b.claimMany(svc, gone.id, [5, 6])).rejects.toBeInstanceOf(LeaseExpiredError);
    });

    // A store fencing one resource written by the owners of several shards
    // must never see one token twice, even from claims made by one call.
    it('gives every claim of a batch its own token, above every token handed out before', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const [m1, m2] = [memberInfo(), memberInfo()];
      await a.register(svc, m1, ttl * 5);
      await b.register(svc, m2, ttl * 5);
      const won = async (d: Discovery, id: string, shards: number[]): Promise<number[]> => {
        const { results } = await d.claimMany(svc, id, shards);
        expect(results.every((r) => r.ok)).toBe(true);
        const tokens = results.map((r) => r.token);
        expect(new Set(tokens).size, `tokens ${tokens.join(', ')}`).toBe(shards.length);
        return tokens;
      };
      const first = await won(a, m1.id, [5, 0, 3, 1, 4, 2]);
      const second = await won(b, m2.id, [6, 7, 9, 8]);
      expect(Math.min(...second)).toBeGreaterThan(Math.max(...first));
      const ref = (tokens: number[], shards: number[]) => shards.map((shard, i) => ({ shard, token: tokens[i] ?? 0 }));
      expect(await a.releaseMany(svc, m1.id, ref(first, [5, 0, 3]))).toEqual([true, true, true]);
      const third = await won(b, m2.id, [0, 3, 5]);
      expect(Math.min(...third)).toBeGreaterThan(Math.max(...second));
      const listed = (await a.snapshot(svc)).claims.map((c) => c.token);
      expect([...listed].sort((x, y) => x - y)).toEqual([...first.slice(3), ...second, ...third].sort((x, y) => x - y));
    });

    it('releases a batch in one call, only what owner and token match', async () => {
      const d = await connect();
      const svc = uniqueService();
      const m = memberInfo();
      await d.register(svc, m, ttl * 5);
      const { results } = await d.claimMany(svc, m.id, [0, 1, 2]);
      const token = (i: number): number => results[i]?.token ?? -1;
      const released = await d.releaseMany(svc, m.id, [
        { shard: 0, token: token(0) },
        { shard: 1, token: token(1) + 1000 },
        { shard: 2, token: token(2) },
        { shard: 7, token: token(2) },
      ]);
      expect(released).toEqual([true, false, true, false]);
      expect(await d.releaseMany(svc, m.id, [])).toEqual([]);
      expect((await d.snapshot(svc)).claims).toEqual([{ shard: 1, owner: m.id, token: token(1) }]);
    });

    it('marks a member draining, listed and kept with its claims; refuses a gone member', async () => {
      const d = await connect();
      const svc = uniqueService();
      const m = memberInfo({ shardCount: 4, leaseTtlMs: ttl * 5 });
      await d.register(svc, m, ttl * 5);
      const c = await claimOne(d, svc, m.id, 1);
      await d.drain(svc, m.id);
      await d.drain(svc, m.id);
      const snap = await d.snapshot(svc);
      expect(snap.members).toHaveLength(1);
      expect(snap.members[0]).toMatchObject({ ...m, draining: true });
      expect(snap.claims).toEqual([{ shard: 1, owner: m.id, token: c.token }]);
      await d.unregister(svc, m.id);
      await expect(d.drain(svc, m.id)).rejects.toBeInstanceOf(LeaseExpiredError);
    });

    it('keeps its version while nothing changes and moves it with every change', async () => {
      const d = await connect();
      const svc = uniqueService();
      const m = memberInfo();
      const versionOf = (snap: Snapshot): string => snap.version ?? snap.revision;
      await d.register(svc, m, ttl * 5);
      const v1 = versionOf(await d.snapshot(svc));
      expect(await d.version(svc)).toBe(v1);
      await d.renew(svc, m.id);
      expect(await d.version(svc)).toBe(v1);
      const seen = new Set([v1]);
      const changes: (() => Promise<unknown>)[] = [
        () => claimOne(d, svc, m.id, 0),
        async () => releaseOne(d, svc, m.id, 0, (await d.snapshot(svc)).claims[0]?.token ?? -1),
        () => d.drain(svc, m.id),
        () => d.register(svc, memberInfo(), ttl * 5),
        () => d.unregister(svc, m.id),
      ];
      for (const change of changes) {
        await change();
        const version = await d.version(svc);
        expect(seen.has(version)).toBe(false);
        expect(versionOf(await d.snapshot(svc))).toBe(version);
        seen.add(version);
      }
    });

    it('announces changes as deltas that keep a listed view equal to a fresh snapshot', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      await b.ensureGroup(svc, { shardCount: 8, leaseTtlMs: ttl * 5 });
      const events: DiscoveryEvent[] = [];
      const unwatch = a.watch(svc, (e) => events.push(e));
      await advance(Math.min(200, ttl / 5));
      let view = ServiceView.fromSnapshot(await a.snapshot(svc));
      let applied = 0;
      let relists = 0;
      const follow = async (): Promise<void> => {
        for (const event of events.splice(0)) {
          const result = view?.apply(event);
          if (result === 'applied') applied += 1;
          if (result === 'relist') {
            relists += 1;
            view = ServiceView.fromSnapshot(await a.snapshot(svc));
          }
        }
      };
      const contents = (
        members: Iterable<{ id: string; draining?: boolean | undefined }>,
        claims: Iterable<Claim>,
      ) => ({
        members: [...members].map((x) => `${x.id}${x.draining === true ? ' draining' : ''}`).sort(),
        claims: [...claims].map((c) => `${c.shard}:${c.owner}:${c.token}`).sort(),
      });
      const m1 = memberInfo();
      const m2 = memberInfo();
      await b.register(svc, m1, ttl * 5);
      await b.register(svc, m2, ttl * 5);
      const { results } = await b.claimMany(svc, m1.id, [0, 1, 2]);
      await claimOne(b, svc, m2.id, 3);
      await releaseOne(b, svc, m1.id, 1, results[1]?.token ?? -1);
      await b.drain(svc, m1.id);
      await b.unregister(svc, m2.id);
      await eventually(async () => {
        await follow();
        const snap = await a.snapshot(svc);
        expect(contents(view?.members.values() ?? [], view?.claims.values() ?? [])).toEqual(
          contents(snap.members, snap.claims),
        );
      }, ttl * 2);
      unwatch();
      // Deltas, not hints: a backend that makes every watcher re-list cannot scale.
      expect(applied).toBeGreaterThan(0);
      expect(relists).toBeLessThanOrEqual(1);
    });

    it('lists registered members with their info and increasing join order', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const m1 = memberInfo({ labels: { zone: 'a' }, weight: 2 });
      const m2 = memberInfo();
      const r1 = await a.register(svc, m1, ttl * 5);
      const r2 = await b.register(svc, m2, ttl * 5);
      expect(r2.joinSeq).toBeGreaterThan(r1.joinSeq);
      const snap = await a.snapshot(svc);
      expect(snap.members.map((m) => m.id).sort()).toEqual([m1.id, m2.id].sort());
      const listed = snap.members.find((m) => m.id === m1.id);
      expect(listed).toMatchObject({ ...m1, joinSeq: r1.joinSeq });
      expect(snap.claims).toEqual([]);
      expect(snap.invalid).toEqual([]);
    });

    it('claims a free shard once, with tokens that strictly increase', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const m1 = memberInfo();
      const m2 = memberInfo();
      await a.register(svc, m1, ttl * 5);
      await b.register(svc, m2, ttl * 5);
      const first = await claimOne(a, svc, m1.id, 0);
      expect(first.ok).toBe(true);
      const taken = await claimOne(b, svc, m2.id, 0);
      expect(taken).toEqual({ ok: false, owner: m1.id, token: first.token });
      const other = await claimOne(b, svc, m2.id, 1);
      expect(other.ok).toBe(true);
      expect(other.token).toBeGreaterThan(first.token);
      expect(await releaseOne(a, svc, m1.id, 0, first.token)).toBe(true);
      const again = await claimOne(b, svc, m2.id, 0);
      expect(again.ok).toBe(true);
      expect(again.token).toBeGreaterThan(other.token);
      const snap = await a.snapshot(svc);
      expect([...snap.claims].sort((x, y) => x.shard - y.shard)).toEqual([
        { shard: 0, owner: m2.id, token: again.token },
        { shard: 1, owner: m2.id, token: other.token },
      ]);
    });

    it('lets exactly one of many concurrent claimants win', async () => {
      const clients = await Promise.all(Array.from({ length: 8 }, () => connect()));
      const svc = uniqueService();
      const members = clients.map(() => memberInfo());
      await Promise.all(clients.map((c, i) => c.register(svc, members[i] as MemberInfo, ttl * 5)));
      const results = await Promise.all(clients.map((c, i) => claimOne(c, svc, (members[i] as MemberInfo).id, 3)));
      const winners = results.filter((r) => r.ok);
      expect(winners).toHaveLength(1);
      for (const r of results) expect(r.token).toBe(winners[0]?.token);
    });

    it('releases only with the matching owner and token', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const m1 = memberInfo();
      const m2 = memberInfo();
      await a.register(svc, m1, ttl * 5);
      await b.register(svc, m2, ttl * 5);
      const c = await claimOne(a, svc, m1.id, 2);
      if (!c.ok) throw new Error('claim failed');
      expect(await releaseOne(b, svc, m2.id, 2, c.token)).toBe(false);
      expect(await releaseOne(a, svc, m1.id, 2, c.token + 1)).toBe(false);
      expect((await a.snapshot(svc)).claims).toHaveLength(1);
      expect(await releaseOne(a, svc, m1.id, 2, c.token)).toBe(true);
      expect(await releaseOne(a, svc, m1.id, 2, c.token)).toBe(false);
      expect((await a.snapshot(svc)).claims).toHaveLength(0);
    });

    it('refuses claims of unknown members', async () => {
      const d = await connect();
      const svc = uniqueService();
      await expect(claimOne(d, svc, 'nobody', 0)).rejects.toBeInstanceOf(LeaseExpiredError);
      expect((await d.snapshot(svc)).claims).toHaveLength(0);
    });

    it('drops member and claims at once on unregister, idempotently', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const m1 = memberInfo();
      const m2 = memberInfo();
      await a.register(svc, m1, ttl * 5);
      await b.register(svc, m2, ttl * 5);
      await claimOne(a, svc, m1.id, 0);
      await claimOne(a, svc, m1.id, 1);
      await claimOne(b, svc, m2.id, 2);
      await a.unregister(svc, m1.id);
      await a.unregister(svc, m1.id);
      const snap = await b.snapshot(svc);
      expect(snap.members.map((m) => m.id)).toEqual([m2.id]);
      expect(snap.claims.map((c) => c.shard)).toEqual([2]);
      await expect(a.renew(svc, m1.id)).rejects.toBeInstanceOf(LeaseExpiredError);
      await expect(claimOne(a, svc, m1.id, 0)).rejects.toBeInstanceOf(LeaseExpiredError);
    });

    it('keeps a renewed member alive past its TTL', async () => {
      const d = await connect();
      const svc = uniqueService();
      const m = memberInfo();
      await d.register(svc, m, ttl);
      for (let i = 0; i < 6; i++) {
        await advance(ttl / 3);
        await d.renew(svc, m.id);
      }
      const snap = await d.snapshot(svc);
      expect(snap.members.map((x) => x.id)).toEqual([m.id]);
    });

    it('expires an unrenewed member with its claims, and never resurrects it', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const dying = memberInfo();
      const living = memberInfo();
      await a.register(svc, dying, ttl);
      await b.register(svc, living, ttl * 10);
      const claim = await claimOne(a, svc, dying.id, 0);
      expect(claim.ok).toBe(true);
      await eventually(async () => {
        const snap = await b.snapshot(svc);
        expect(snap.members.map((x) => x.id)).toEqual([living.id]);
        expect(snap.claims).toEqual([]);
      }, ttl * 3);
      await expect(a.renew(svc, dying.id)).rejects.toBeInstanceOf(LeaseExpiredError);
      expect((await b.snapshot(svc)).members.map((x) => x.id)).toEqual([living.id]);
      const next = await claimOne(b, svc, living.id, 0);
      expect(next.ok).toBe(true);
      expect(next.token).toBeGreaterThan(claim.token);
    });

    it('notifies watchers of changes by other clients, and stops after unsubscribe', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const events: DiscoveryEvent[] = [];
      const unwatch = a.watch(svc, (e) => events.push(e));
      await advance(Math.min(200, ttl / 5)); // let the watch be established
      const m = memberInfo();
      await b.register(svc, m, ttl * 5);
      await eventually(async () => expect(events.length).toBeGreaterThan(0), ttl * 2);
      unwatch();
      await advance(Math.min(200, ttl / 5));
      const seen = events.length;
      await claimOne(b, svc, m.id, 0);
      await b.unregister(svc, m.id);
      await advance(Math.min(300, ttl / 3));
      expect(events.length).toBe(seen);
    });

    it('notifies watchers when a lease expires', async () => {
      const [a, b] = [await connect(), await connect()];
      const svc = uniqueService();
      const m = memberInfo();
      await b.register(svc, m, ttl);
      await claimOne(b, svc, m.id, 0);
      let changes = 0;
      const unwatch = a.watch(svc, () => {
        changes += 1;
      });
      await advance(Math.min(200, ttl / 5));
      changes = 0;
      // Expiry must be noticed by the backend or announced within one more TTL,
      // without anybody listing in between.
      await eventually(async () => expect(changes).toBeGreaterThan(0), ttl * 3);
      unwatch();
      expect((await a.snapshot(svc)).members).toEqual([]);
    });

    it('keeps services apart', async () => {
      const d = await connect();
      const [s1, s2] = [uniqueService(), uniqueService()];
      const m = memberInfo();
      await d.register(s1, m, ttl * 5);
      await claimOne(d, s1, m.id, 0);
      const other = await d.snapshot(s2);
      expect(other.members).toEqual([]);
      expect(other.claims).toEqual([]);
    });

    it('changes the revision when contents change', async () => {
      const d = await connect();
      const svc = uniqueService();
      const m = memberInfo();
      await d.register(svc, m, ttl * 5);
      const r1 = (await d.snapshot(svc)).revision;
      await claimOne(d, svc, m.id, 0);
      const r2 = (await d.snapshot(svc)).revision;
      expect(r2).not.toBe(r1);
    });

    if (harness.writeGarbage !== undefined) {
      const writeGarbage = harness.writeGarbage.bind(harness);
      it('skips unparsable records and reports them, keeping the valid ones', async () => {
        const d = await connect();
        const svc = uniqueService();
        const m = memberInfo();
        await d.register(svc, m, ttl * 5);
        const c = await claimOne(d, svc, m.id, 1);
        await writeGarbage(svc);
        const snap = await d.snapshot(svc);
        expect(snap.members.map((x) => x.id)).toEqual([m.id]);
        expect(snap.claims).toEqual([{ shard: 1, owner: m.id, token: c.token }]);
        expect(snap.invalid.length).toBeGreaterThanOrEqual(2);
        for (const bad of snap.invalid) {
          expect(bad.key).toEqual(expect.any(String));
          expect(bad.reason).toEqual(expect.any(String));
        }
      });
    }

    describeUpkeep({ connect, ttl, advance, eventually });

    it('rejects calls after close with a retryable error, and closes idempotently', async () => {
      const d = await connect();
      await d.close();
      await d.close();
      const error = await d.snapshot(uniqueService()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DiscoveryUnavailableError);
    });
  });
}
