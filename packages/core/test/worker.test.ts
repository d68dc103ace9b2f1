import {
  AttemptsExhaustedError,
  type ClaimRef,
  DiscoveryUnavailableError,
  type EnsureGroupOptions,
  type GroupSettings,
  IllegalStateError,
  InvalidRecordError,
  LeaseLostError,
  LeaseTtlMismatchError,
  type MemberInfo,
  MemoryDiscovery,
  MemoryStore,
  NonRetryableError,
  NotOwnerError,
  RevokeTimeoutError,
  type ShardContext,
  ShardCountMismatchError,
  StartTimeoutError,
  sleep,
  type WatchInfo,
  Worker,
} from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { advanceUntil, Cluster, GarbageDiscovery, started, stopped, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

describe('membership changes', () => {
  let cluster: Cluster;
  afterEach(async () => {
    await cluster.stopAll();
    cluster.assertExclusive();
  });

  it('splits shards evenly on join and gives a joiner its fair share within a few round trips', async () => {
    cluster = new Cluster(12);
    const a = cluster.add();
    await started(a.worker);
    expect(a.worker.status().shards).toHaveLength(12);
    const b = cluster.add();
    const c = cluster.add();
    await started(b.worker);
    await started(c.worker);
    const took = await advanceUntil(
      () => cluster.replicas.every(({ worker }) => worker.status().shards.length === 4) && cluster.fullyOwned(),
      500,
    );
    expect(took).toBeLessThan(100);
    // Sticky: the first replica kept its lowest shards.
    expect(a.worker.status().shards.map((s) => s.shard)).toEqual([0, 1, 2, 3]);
    const tokens = cluster.replicas.flatMap(({ worker }) => worker.status().shards.map((s) => s.token));
    expect(new Set(tokens).size).toBe(12);
  });

  it('hands a stopped replica’s shards over within a few round trips, moving nothing else', async () => {
    cluster = new Cluster(12);
    const [a, b, c] = [cluster.add(), cluster.add(), cluster.add()];
    const calls: string[] = [];
    for (const method of ['releaseMany', 'unregister'] as const) {
      const original = b.conn[method].bind(b.conn) as (...args: never[]) => Promise<unknown>;
      (b.conn as unknown as Record<string, unknown>)[method] = (...args: never[]) => {
        calls.push(method);
        return original(...args);
      };
    }
    for (const r of [a, b, c]) await started(r.worker);
    await advanceUntil(() => cluster.fullyOwned() && b.worker.status().shards.length === 4, 500);
    const keptA = a.worker.status().shards.map((s) => `${s.shard}:${s.token}`);
    calls.length = 0; // rebalancing on the joins before released claims one by one; the stop must not
    const stopping = b.worker.stop();
    await vi.advanceTimersByTimeAsync(10);
    await stopping;
    const took = await advanceUntil(() => cluster.fullyOwned(), 500, 1);
    expect(took).toBeLessThan(50);
    // One lease revocation drops member and claims at once: no claim-by-claim release.
    expect(calls).toEqual(['unregister']);
    expect(a.worker.status().shards.length).toBe(6);
    // a kept every shard (and token) it had.
    const nowA = a.worker.status().shards.map((s) => `${s.shard}:${s.token}`);
    for (const kept of keptA) expect(nowA).toContain(kept);
  });

  it('self-fences a cut-off replica before its lease expires for the others, who take over after the TTL', async () => {
    cluster = new Cluster(8);
    const [a, b] = [cluster.add(), cluster.add()];
    await started(a.worker);
    await started(b.worker);
    await advanceUntil(() => cluster.fullyOwned() && a.worker.status().shards.length === 4, 500);
    const aShards = new Set(a.worker.status().shards.map((s) => s.shard));
    let fencedAt = Number.NaN;
    a.worker.on('lease:lost', ({ error }) => {
      expect(error).toBeInstanceOf(LeaseLostError);
      fencedAt = performance.now();
    });
    let takenAt = Number.NaN;
    b.worker.on('shard:acquired', ({ shard }) => {
      if (aShards.has(shard) && Number.isNaN(takenAt)) takenAt = performance.now();
    });
    const cutAt = performance.now();
    a.conn.setAvailable(false);
    await advanceUntil(() => b.worker.status().shards.length === 8, 3000, 5);
    const recoveredAt = performance.now();
    expect(fencedAt).toBeLessThan(takenAt);
    // Self-fencing happens at most TTL − margin after the last renewal sent before the cut.
    expect(fencedAt - cutAt).toBeLessThanOrEqual(1000 - 100);
    // Crash bound: TTL plus one expiry scan and a few round trips.
    expect(recoveredAt - cutAt).toBeLessThanOrEqual(1000 + 100);
    expect(a.worker.status().shards).toEqual([]);
    // Reconnected, it rejoins as a new member and gets its share back.
    a.conn.setAvailable(true);
    await advanceUntil(() => a.worker.status().shards.length === 4 && cluster.fullyOwned(), 3000);
  });

  it('survives a backend that loses all its data without two owners, waiting one TTL before claiming again', async () => {
    cluster = new Cluster(8);
    const [a, b, c] = [cluster.add(), cluster.add(), cluster.add()];
    for (const r of [a, b, c]) await started(r.worker);
    await advanceUntil(() => cluster.fullyOwned() && c.worker.status().shards.length > 0, 500);
    const before = Math.max(...cluster.replicas.flatMap(({ worker }) => worker.status().shards.map((s) => s.token)));
    // b does not hear of the loss for a while and keeps acting on its old lease,
    // while a and c notice at once and re-register.
    await vi.advanceTimersByTimeAsync(100);
    b.conn.setAvailable(false);
    cluster.store.reset();
    setTimeout(() => b.conn.setAvailable(true), 600);
    const tokens = (): number[] => cluster.replicas.flatMap(({ worker }) => worker.status().shards.map((s) => s.token));
    // Everything is owned again, under new claims (tokens keep increasing across the loss).
    const took = await advanceUntil(() => cluster.fullyOwned() && Math.min(...tokens()) > before, 5000);
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(2500);
  });

  it('makes a replica started right after a data loss wait out one TTL, so it cannot overlap an old owner', async () => {
    cluster = new Cluster(6);
    const [a, b] = [cluster.add(), cluster.add()];
    await started(a.worker);
    await started(b.worker);
    await advanceUntil(() => cluster.fullyOwned() && b.worker.status().shards.length === 3, 500);
    // b is cut off and keeps acting on its old lease until its own deadline;
    // a newcomer starts at once on the wiped backend and sees a fresh group.
    b.conn.setAvailable(false);
    cluster.store.reset();
    const newcomer = cluster.add();
    const startedAt = performance.now();
    let firstClaimAt = Number.NaN;
    newcomer.worker.on('shard:acquired', () => {
      if (Number.isNaN(firstClaimAt)) firstClaimAt = performance.now();
    });
    await started(newcomer.worker);
    await advanceUntil(() => cluster.fullyOwned([b.worker]), 5000);
    expect(firstClaimAt - startedAt).toBeGreaterThanOrEqual(1000 - 60);
    b.conn.setAvailable(true);
    await advanceUntil(() => cluster.fullyOwned() && b.worker.status().shards.length === 2, 5000);
  });

  it('aborts the signal of a revoked shard with NotOwnerError and turns ctx.owned false', async () => {
    cluster = new Cluster(2);
    const seen: ShardContext[] = [];
    const a = cluster.add({
      handler: {
        async do(ctx) {
          seen.push(ctx);
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        },
      },
    });
    await started(a.worker);
    expect(seen.map((c) => c.owned)).toEqual([true, true]);
    const b = cluster.add();
    await started(b.worker);
    await advanceUntil(() => b.worker.status().shards.length === 1, 500);
    const revoked = seen.find((c) => c.shard === 1);
    expect(revoked?.signal.aborted).toBe(true);
    expect(revoked?.signal.reason).toBeInstanceOf(NotOwnerError);
    expect(revoked?.owned).toBe(false);
    expect(() => revoked?.assertOwned()).toThrow(NotOwnerError);
    expect(seen.find((c) => c.shard === 0)?.owned).toBe(true);
  });

  it('keeps ctx.held true while a revoked shard drains, until its claim is released; false once the lease is lost', async () => {
    cluster = new Cluster(2);
    const seen: ShardContext[] = [];
    const heldDuringDrain: boolean[] = [];
    let finishDrain: () => void = () => undefined;
    const drained = new Promise<void>((resolve) => {
      finishDrain = resolve;
    });
    const a = cluster.add({
      handler: {
        async do(ctx) {
          seen.push(ctx);
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          heldDuringDrain.push(ctx.held);
          await drained;
        },
      },
    });
    await started(a.worker);
    expect(seen.map((c) => c.held)).toEqual([true, true]);
    const b = cluster.add();
    await started(b.worker);
    await advanceUntil(() => heldDuringDrain.length === 1, 500);
    const revoked = seen.find((c) => c.signal.aborted);
    // Revoked for a rebalance: not owned any more, but the claim is still ours until the handler settles.
    expect(revoked?.owned).toBe(false);
    expect(heldDuringDrain).toEqual([true]);
    expect(b.worker.status().shards).toHaveLength(0);
    finishDrain();
    await advanceUntil(() => b.worker.status().shards.length === 1, 500);
    expect(revoked?.held).toBe(false);
    const kept = seen.find((c) => !c.signal.aborted);
    expect(kept?.held).toBe(true);
    a.conn.setAvailable(false);
    await advanceUntil(() => kept?.held === false, 2000);
    expect(kept?.owned).toBe(false);
  });

  it('releases a shard whose handler ignores the abort after revokeTimeoutMs, reporting it', async () => {
    cluster = new Cluster(2);
    const a = cluster.add({
      revokeTimeoutMs: 500,
      handler: {
        async do() {
          await new Promise((resolve) => setTimeout(resolve, 60_000));
        },
      },
    });
    await started(a.worker);
    const b = cluster.add();
    await started(b.worker);
    const took = await advanceUntil(() => b.worker.status().shards.length === 1, 2000);
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(700);
    expect(a.errors.some((e) => e instanceof RevokeTimeoutError && e.shard === 1)).toBe(true);
  });

  it('puts replicas beyond the shard count on standby and promotes one when an owner leaves', async () => {
    cluster = new Cluster(2);
    const rs = [cluster.add(), cluster.add(), cluster.add()];
    for (const r of rs) await started(r.worker);
    await advanceUntil(() => cluster.fullyOwned(), 500);
    expect(rs.map((r) => r.worker.status().standby)).toEqual([false, false, true]);
    const stopping = rs[0]?.worker.stop();
    await vi.advanceTimersByTimeAsync(10);
    await stopping;
    await advanceUntil(() => cluster.fullyOwned() && rs[2]?.worker.status().shards.length === 1, 500);
  });
});

describe('stop', () => {
  it('keeps the lease alive while a slow handler drains for longer than the TTL, then releases everything', async () => {
    const store = new MemoryStore();
    const worker = new Worker({
      service: 'drain',
      shards: 2,
      leaseTtlMs: 1000,
      discovery: new MemoryDiscovery({ store }),
      handler: {
        async do(ctx) {
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          await sleep(2500); // cleanup that outlasts the TTL
        },
      },
    });
    const lost: unknown[] = [];
    worker.on('lease:lost', (e) => lost.push(e));
    await started(worker);
    const stopping = worker.stop();
    await vi.advanceTimersByTimeAsync(2000);
    const observer = new MemoryDiscovery({ store });
    const during = await observer.snapshot('drain');
    expect(during.members).toHaveLength(1);
    expect(during.claims).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    await stopping;
    expect(lost).toEqual([]);
    const after = await observer.snapshot('drain');
    expect(after.members).toEqual([]);
    expect(after.claims).toEqual([]);
  });
});

describe('draining and deltas', () => {
  /** Memory discovery that counts what the worker asks for. */
  class Counting extends MemoryDiscovery {
    readonly calls: Record<string, number> = {};
    #count(name: string): void {
      this.calls[name] = (this.calls[name] ?? 0) + 1;
    }
    override snapshot(service: string) {
      this.#count('snapshot');
      return super.snapshot(service);
    }
    override version(service: string) {
      this.#count('version');
      return super.version(service);
    }
    override claimMany(service: string, memberId: string, shards: readonly number[]) {
      this.#count('claimMany');
      return super.claimMany(service, memberId, shards);
    }
    override releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]) {
      this.#count('releaseMany');
      return super.releaseMany(service, memberId, claims);
    }
  }

  it('hands each shard of a stopping replica over as soon as its own handler settles', async () => {
    const store = new MemoryStore();
    const slowShard = 0;
    const handler = {
      async do(ctx: ShardContext) {
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        if (ctx.shard === slowShard) await sleep(3000);
      },
    };
    const a = new Worker({
      service: 'd',
      shards: 4,
      leaseTtlMs: 1000,
      discovery: new MemoryDiscovery({ store, latencyMs: 1 }),
      handler,
    });
    await started(a);
    const b = new Worker({
      service: 'd',
      shards: 4,
      leaseTtlMs: 1000,
      discovery: new MemoryDiscovery({ store, latencyMs: 1 }),
      handler: () => undefined,
      revokeTimeoutMs: 5000,
    });
    await started(b);
    await advanceUntil(() => b.status().shards.length === 2, 500);
    const aShards = a.status().shards.map((x) => x.shard);
    expect(aShards).toContain(slowShard);
    const stopping = a.stop();
    // Every shard but the slow one moves within a few round trips.
    const took = await advanceUntil(() => b.status().shards.length === 3, 1000);
    expect(took).toBeLessThan(100);
    expect(b.status().shards.map((x) => x.shard)).not.toContain(slowShard);
    const observer = new MemoryDiscovery({ store });
    expect((await observer.snapshot('d')).members.find((m) => m.id === a.status().instance)?.draining).toBe(true);
    await advanceUntil(() => b.status().shards.length === 4, 5000);
    await stopping;
    await stopped(b);
  });

  it('follows joins, leaves and moves by deltas: no listing per change, one claim request per pass', async () => {
    const store = new MemoryStore();
    const conns = Array.from({ length: 4 }, () => new Counting({ store, latencyMs: 1 }));
    const workers = conns.map(
      (conn) => new Worker({ service: 'x', shards: 32, leaseTtlMs: 1000, discovery: conn, handler: () => undefined }),
    );
    for (const w of workers) await started(w);
    await advanceUntil(() => workers.every((w) => w.status().shards.length === 8), 1000);
    await stopped(workers[3] as Worker);
    await advanceUntil(() => workers.slice(0, 3).reduce((n, w) => n + w.status().shards.length, 0) === 32, 1000);
    for (const conn of conns) {
      // One listing at start; every later change arrived as a delta.
      expect(conn.calls.snapshot ?? 0).toBeLessThanOrEqual(1);
      // A few passes claim, each with one request.
      expect(conn.calls.claimMany ?? 0).toBeLessThanOrEqual(4);
    }
    expect(conns[3]?.calls.releaseMany ?? 0).toBeLessThanOrEqual(2);
    for (const w of workers.slice(0, 3)) await stopped(w);
  });

  it('checks versions on resync and lists nothing while nothing changed', async () => {
    const conn = new Counting({ store: new MemoryStore(), latencyMs: 1 });
    const worker = new Worker({
      service: 'v',
      shards: 4,
      leaseTtlMs: 1000,
      resyncIntervalMs: 500,
      discovery: conn,
      handler: () => undefined,
    });
    await started(worker);
    const listed = conn.calls.snapshot ?? 0;
    await vi.advanceTimersByTimeAsync(5000);
    expect(conn.calls.snapshot ?? 0).toBe(listed);
    expect(conn.calls.version ?? 0).toBeGreaterThanOrEqual(8);
    expect(worker.status().shards).toHaveLength(4);
    await stopped(worker);
  });

  it('re-lists after a missed change and converges', async () => {
    const cluster = new Cluster(6);
    const a = cluster.add();
    await started(a.worker);
    // Changes made while a's connection is cut never reach it as deltas.
    a.conn.setAvailable(false);
    const b = cluster.add();
    const started_b = b.worker.start();
    await vi.advanceTimersByTimeAsync(100);
    a.conn.setAvailable(true);
    await started_b;
    await advanceUntil(() => a.worker.status().shards.length === 3 && b.worker.status().shards.length === 3, 3000);
    await cluster.stopAll();
    cluster.assertExclusive();
  });
});

describe('start', () => {
  it('rejects a replica whose lease TTL disagrees with the group', async () => {
    const cluster = new Cluster(4);
    const a = cluster.add();
    await started(a.worker);
    const b = cluster.add({ leaseTtlMs: 3000 });
    const result = b.worker.start().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    const error = await result;
    expect(error).toBeInstanceOf(LeaseTtlMismatchError);
    expect(error).toMatchObject({ service: 'svc', expected: 1000, actual: 3000 });
    expect(b.worker.state).toBe('stopped');
    await cluster.stopAll();
  });

  /** A backend whose group record holds garbage until a replica asks to replace it. */
  class GarbageGroup extends MemoryDiscovery {
    garbage = true;
    override async ensureGroup(service: string, group: GroupSettings, options?: EnsureGroupOptions) {
      const stored = await super.ensureGroup(service, group, options);
      if (!this.garbage) return stored;
      const bad = { key: `${service}/meta`, reason: 'shardCount is not a positive integer: "x"' };
      if (options?.replaceInvalid === true) {
        this.garbage = false;
        return { ...stored, repaired: [bad] };
      }
      return { ...stored, shardCount: undefined, invalid: [bad] };
    }
  }

  it('rewrites an unreadable group record when the live members agree, reporting it once', async () => {
    const store = new MemoryStore();
    const a = new Worker({
      service: 'g',
      shards: 2,
      discovery: new MemoryDiscovery({ store }),
      handler: () => undefined,
    });
    await started(a);
    const conn = new GarbageGroup({ store });
    const b = new Worker({ service: 'g', shards: 2, discovery: conn, handler: () => undefined });
    const reports: { key: string; repaired: boolean }[] = [];
    b.on('record:invalid', ({ error, repaired }) => reports.push({ key: error.key, repaired }));
    await started(b);
    expect(reports).toEqual([{ key: 'g/meta', repaired: true }]);
    expect(conn.garbage).toBe(false);
    await advanceUntil(() => b.status().shards.length === 1, 500);
    await stopped(a);
    await stopped(b);
  });

  it('refuses to rewrite an unreadable group record that live members disagree with', async () => {
    const store = new MemoryStore();
    const a = new Worker({
      service: 'g',
      shards: 2,
      discovery: new MemoryDiscovery({ store }),
      handler: () => undefined,
    });
    await started(a);
    const conn = new GarbageGroup({ store });
    const b = new Worker({ service: 'g', shards: 3, discovery: conn, handler: () => undefined });
    const result = b.start().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    const error = await result;
    expect(error).toBeInstanceOf(InvalidRecordError);
    expect((error as Error).message).toMatch(/g\/meta.*not rewritten.*shards: 2.*shards: 3/);
    expect(conn.garbage).toBe(true);
    await stopped(a);
  });

  it('rejects a replica whose shard count disagrees with the backend', async () => {
    const cluster = new Cluster(4);
    const a = cluster.add();
    await started(a.worker);
    const b = cluster.add({ shards: 8 });
    const result = b.worker.start().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    const error = await result;
    expect(error).toBeInstanceOf(ShardCountMismatchError);
    expect(error).toMatchObject({ service: 'svc', expected: 4, actual: 8 });
    expect((error as Error).message).toMatch(/has 4 shards .* started with shards: 8/);
    expect(b.worker.state).toBe('stopped');
    expect(a.worker.status().shards).toHaveLength(4);
    await cluster.stopAll();
  });

  it('waits for a backend that is down at start, reporting errors, and fails after startTimeoutMs', async () => {
    const conn = new MemoryDiscovery({ store: new MemoryStore() });
    conn.setAvailable(false);
    const errors: unknown[] = [];
    const worker = new Worker({
      service: 's',
      shards: 1,
      discovery: conn,
      startTimeoutMs: 2000,
      handler: () => undefined,
    });
    worker.on('error', ({ error }) => errors.push(error));
    const result = worker.start().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(3000);
    const error = await result;
    expect(error).toBeInstanceOf(StartTimeoutError);
    expect((error as StartTimeoutError).cause).toBeInstanceOf(DiscoveryUnavailableError);
    expect(errors.length).toBeGreaterThan(2);
    expect(worker.state).toBe('stopped');
  });

  it('starts once a backend that was down comes up', async () => {
    const conn = new MemoryDiscovery({ store: new MemoryStore() });
    conn.setAvailable(false);
    const worker = new Worker({ service: 's', shards: 2, discovery: conn, handler: () => undefined });
    worker.on('error', () => undefined);
    const result = worker.start();
    await vi.advanceTimersByTimeAsync(1500);
    conn.setAvailable(true);
    await vi.advanceTimersByTimeAsync(6000);
    await result;
    expect(worker.status().shards).toHaveLength(2);
    await stopped(worker);
  });

  it('enforces the lifecycle and disposes with await using', async () => {
    const store = new MemoryStore();
    {
      await using worker = new Worker({
        service: 's',
        shards: 1,
        discovery: new MemoryDiscovery({ store }),
        handler: () => undefined,
      });
      await started(worker);
      await expect(worker.start()).rejects.toBeInstanceOf(IllegalStateError);
      expect(worker.state).toBe('running');
    }
    const conn = new MemoryDiscovery({ store });
    expect((await conn.snapshot('s')).members).toEqual([]);
    const idle = new Worker({ service: 's', shards: 1, discovery: conn, handler: () => undefined });
    await idle.stop();
    await idle.stop();
    expect(idle.state).toBe('stopped');
    await expect(idle.start()).rejects.toThrow(/Cannot start while stopped/);
  });

  it('adopts a claim that a retried call reports as already ours', async () => {
    // Models a backend client that retried a timed-out claim on another endpoint: the
    // first attempt did create the claim, the retry reports it as taken by ourselves.
    class RetriedClaims extends MemoryDiscovery {
      override async claimMany(service: string, memberId: string, shards: readonly number[]) {
        const batch = await super.claimMany(service, memberId, shards);
        const results = batch.results.map((r) => (r.ok ? { ok: false as const, owner: memberId, token: r.token } : r));
        return { ...batch, results };
      }
    }
    const worker = new Worker({
      service: 's',
      shards: 3,
      discovery: new RetriedClaims({ store: new MemoryStore() }),
      handler: () => undefined,
    });
    await started(worker);
    expect(worker.status().shards.map((s) => s.shard)).toEqual([0, 1, 2]);
    await stopped(worker);
  });

  it('gives the lease back when stopped while start() is registering', async () => {
    const store = new MemoryStore();
    const worker = new Worker({
      service: 's',
      shards: 2,
      discovery: new MemoryDiscovery({ store, latencyMs: 20 }),
      handler: () => undefined,
    });
    const starting = worker.start().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5); // ensureGroup done, register in flight
    const stopping = worker.stop();
    await vi.advanceTimersByTimeAsync(200);
    await stopping;
    expect(await starting).toBeInstanceOf(IllegalStateError);
    expect(worker.state).toBe('stopped');
    expect(worker.status().instance).toBeUndefined();
    expect((await new MemoryDiscovery({ store }).snapshot('s')).members).toEqual([]);
  });

  it('retries a registration whose reply was lost under the same id, leaving no ghost member', async () => {
    class LosesFirstReply extends MemoryDiscovery {
      lost = false;
      override async register(service: string, member: MemberInfo, ttlMs: number) {
        const result = await super.register(service, member, ttlMs);
        if (this.lost) return result;
        this.lost = true;
        throw new DiscoveryUnavailableError('memory', 'reply lost');
      }
    }
    const store = new MemoryStore();
    const worker = new Worker({
      service: 's',
      shards: 2,
      discovery: new LosesFirstReply({ store }),
      handler: () => undefined,
    });
    worker.on('error', () => undefined);
    const starting = worker.start();
    await vi.advanceTimersByTimeAsync(500); // past the first retry backoff
    await starting;
    const members = (await new MemoryDiscovery({ store }).snapshot('s')).members;
    expect(members.map((m) => m.id)).toEqual([worker.status().instance]);
    expect(worker.status().shards).toHaveLength(2);
    await stopped(worker);
  });

  it('reports unparsable backend records once and carries on', async () => {
    const worker = new Worker({
      service: 's',
      shards: 2,
      discovery: new GarbageDiscovery({ store: new MemoryStore() }),
      handler: () => undefined,
    });
    const invalid: string[] = [];
    worker.on('record:invalid', ({ error }) => invalid.push(error.key));
    await started(worker);
    await vi.advanceTimersByTimeAsync(12_000);
    expect(invalid).toEqual(['s/members/broken']);
    expect(worker.status().shards).toHaveLength(2);
    await stopped(worker);
  });
});

describe('handler pipeline', () => {
  const run = async (handler: ConstructorParameters<typeof Worker>[0]['handler'], extra = {}): Promise<Worker> => {
    const worker = new Worker({
      service: 'p',
      shards: 1,
      discovery: new MemoryDiscovery({ store: new MemoryStore() }),
      handler,
      ...extra,
    });
    await started(worker);
    return worker;
  };

  it('runs before → do → after, retrying each failing stage with backoff and reporting every error', async () => {
    const log: string[] = [];
    let failures = 2;
    const errors: { attempt: number; stage: string; at: number }[] = [];
    const worker = await run({
      before: (ctx) => void log.push(`before ${ctx.attempt}`),
      do: (ctx) => {
        log.push(`do ${ctx.attempt}`);
        if (failures-- > 0) throw new Error('flaky');
      },
      after: () => void log.push('after'),
      onError: (_error, ctx) => void errors.push({ attempt: ctx.attempt, stage: ctx.stage, at: performance.now() }),
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(log).toEqual(['before 1', 'do 1', 'do 2', 'do 3', 'after']);
    expect(errors.map((e) => `${e.stage}#${e.attempt}`)).toEqual(['do#1', 'do#2']);
    // Default policy: 1 s, then 2 s.
    expect(Math.round((errors[1]?.at ?? 0) - (errors[0]?.at ?? 0))).toBe(1000);
    await stopped(worker);
  });

  it('gives up after maximumAttempts with AttemptsExhaustedError and skips later stages', async () => {
    const errors: unknown[] = [];
    let afterRan = false;
    const worker = await run(
      {
        do: () => {
          throw new Error('always');
        },
        after: () => {
          afterRan = true;
        },
        onError: (e) => void errors.push(e),
      },
      { retry: { initialIntervalMs: 10, maximumAttempts: 3 } },
    );
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toHaveLength(4);
    expect(errors[3]).toBeInstanceOf(AttemptsExhaustedError);
    expect(errors[3]).toMatchObject({ stage: 'do', attempts: 3 });
    expect(afterRan).toBe(false);
    await stopped(worker);
  });

  it('stops retrying at a NonRetryableError, and survives a throwing onError', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const worker = await run({
      do: () => {
        calls++;
        throw new NonRetryableError('bad input');
      },
      onError: (e) => {
        errors.push(e);
        throw new Error('onError itself broke');
      },
    });
    worker.on('error', () => undefined);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
    expect(worker.state).toBe('running');
    await stopped(worker);
  });

  it('survives a retry policy that throws: the error is reported and the stage gives up', async () => {
    const errors: unknown[] = [];
    const handlerErrors: unknown[] = [];
    let calls = 0;
    const worker = await run(
      {
        do: () => {
          calls++;
          throw new Error('boom');
        },
        onError: (e) => void handlerErrors.push(e),
      },
      {
        retry: () => {
          throw new TypeError('policy bug');
        },
      },
    );
    worker.on('error', ({ error }) => errors.push(error));
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(1);
    expect(handlerErrors.at(-1)).toBeInstanceOf(AttemptsExhaustedError);
    expect(worker.state).toBe('running');
    await stopped(worker);
  });

  it('warns when a stage fails and nobody listens, instead of retrying silently', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const worker = await run(
        () => {
          throw new Error('nobody hears this');
        },
        { retry: { initialIntervalMs: 10, maximumAttempts: 3 } },
      );
      await vi.advanceTimersByTimeAsync(1000);
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines.filter((l) => l.includes('nobody hears this'))).toHaveLength(2); // first failure, then giving up
      await stopped(worker);
    } finally {
      warn.mockRestore();
    }
  });

  it('runs every owned shard on each cron tick, never overlapping runs of one shard', async () => {
    const spans = new Map<number, [number, number][]>();
    const skipped: number[] = [];
    const store = new MemoryStore();
    const worker = new Worker({
      service: 'cron',
      shards: 2,
      discovery: new MemoryDiscovery({ store }),
      schedule: '* * * * * *',
      handler: {
        async do(ctx) {
          const start = performance.now();
          await sleep(ctx.shard === 0 ? 2500 : 100);
          spans.set(ctx.shard, [...(spans.get(ctx.shard) ?? []), [start, performance.now()]]);
        },
      },
    });
    worker.on('tick:skipped', ({ shard }) => skipped.push(shard));
    await started(worker);
    await vi.advanceTimersByTimeAsync(10_500);
    const slow = spans.get(0) ?? [];
    const fast = spans.get(1) ?? [];
    expect(fast.length).toBeGreaterThanOrEqual(9);
    expect(slow.length).toBeGreaterThanOrEqual(3);
    expect(slow.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < slow.length; i++)
      expect((slow[i] as number[])[0]).toBeGreaterThanOrEqual((slow[i - 1] as number[])[1] as number);
    expect(skipped.filter((s) => s === 0).length).toBeGreaterThanOrEqual(5);
    expect(skipped).not.toContain(1);
    await stopped(worker);
  });

  it('tells watch and the handler context the slice, shard count and params', async () => {
    const infos: WatchInfo[] = [];
    const params: (string | undefined)[] = [];
    const worker = await run(
      {
        do: (ctx) => void params.push(`${ctx.shard}/${ctx.shardCount}=${ctx.param}`),
        watch: (info) => void infos.push(info),
      },
      { shards: 3, params: '0=beijing,2=shanghai' },
    );
    expect(infos.at(-1)).toMatchObject({ shards: [0, 1, 2], shardCount: 3, params: { 0: 'beijing', 2: 'shanghai' } });
    expect(infos.at(-1)?.members).toHaveLength(1);
    expect(params.sort()).toEqual(['0/3=beijing', '1/3=undefined', '2/3=shanghai']);
    await stopped(worker);
    expect(infos.at(-1)?.shards).toEqual([]);
  });
});
