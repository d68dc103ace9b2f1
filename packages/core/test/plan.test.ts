import { balanced, type Claim, type Member, quotas } from '@shardwork/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PlannedRevocation, type PlannedRun, plan } from '../src/plan.js';

const member = (i: number, draining = false): Member => ({
  id: `m${String(i).padStart(3, '0')}`,
  host: 'h',
  pid: 1,
  startedAt: 0,
  weight: 1,
  labels: {},
  joinSeq: i + 1,
  ...(draining ? { draining: true } : {}),
});

/**
 * A model of the whole cluster: the claims in the backend and each member's
 * runs. One step = every member plans on the same view and applies its plan
 * (revocations finish at once; claims succeed only on free shards, in member
 * order, as a backend would serialize them).
 */
class Model {
  readonly claims = new Map<number, Claim>();
  readonly runs = new Map<string, Map<number, PlannedRun>>();
  #token = 0;

  constructor(
    public view: Member[],
    readonly shardCount: number,
  ) {
    for (const m of view) this.runs.set(m.id, new Map());
  }

  step(): { moved: number; revokedAndClaimed: boolean } {
    let moved = 0;
    let revokedAndClaimed = false;
    for (const self of this.view) {
      const runs = this.runs.get(self.id) ?? new Map<number, PlannedRun>();
      this.runs.set(self.id, runs);
      const p = plan({
        view: this.view,
        claims: this.claims,
        runs,
        self: self.id,
        shardCount: this.shardCount,
        strategy: balanced,
      });
      const revoked = new Set(p.revoke.map((r) => r.shard));
      if (p.claim.some((s) => revoked.has(s)) || p.adopt.some((c) => revoked.has(c.shard))) revokedAndClaimed = true;
      for (const r of p.revoke) {
        const run = runs.get(r.shard);
        runs.delete(r.shard);
        const claim = this.claims.get(r.shard);
        if (r.reason === 'rebalance' && claim?.owner === self.id && claim.token === run?.token) {
          this.claims.delete(r.shard);
        }
        moved += 1;
      }
      for (const ref of p.giveBack) {
        if (this.claims.get(ref.shard)?.token === ref.token) this.claims.delete(ref.shard);
      }
      for (const c of p.adopt) runs.set(c.shard, { token: c.token, revoked: false });
      for (const shard of p.claim) {
        expect(this.claims.has(shard)).toBe(false);
        const token = ++this.#token;
        this.claims.set(shard, { shard, owner: self.id, token });
        runs.set(shard, { token, revoked: false });
      }
    }
    return { moved, revokedAndClaimed };
  }

  /** Members leave: their claims vanish with them. */
  remove(ids: Set<string>): void {
    this.view = this.view.filter((m) => !ids.has(m.id));
    for (const id of ids) this.runs.delete(id);
    for (const [shard, c] of this.claims) if (ids.has(c.owner)) this.claims.delete(shard);
  }

  settle(maxSteps = 20): number {
    let total = 0;
    for (let i = 0; i < maxSteps; i++) {
      const before = JSON.stringify([...this.claims.entries()].sort((a, b) => a[0] - b[0]));
      const { moved, revokedAndClaimed } = this.step();
      expect(revokedAndClaimed).toBe(false);
      total += moved;
      if (JSON.stringify([...this.claims.entries()].sort((a, b) => a[0] - b[0])) === before && moved === 0) {
        return total;
      }
    }
    throw new Error('the plans did not converge');
  }

  ownedBy(id: string): number[] {
    return [...this.claims.values()].filter((c) => c.owner === id).map((c) => c.shard);
  }
}

const arbCluster = fc.record({
  n: fc.integer({ min: 1, max: 12 }),
  t: fc.integer({ min: 1, max: 64 }),
  drainingMask: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
  leaving: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
});

describe('plan (pure)', () => {
  it('converges from nothing to every shard owned once, by quota, by non-draining members only', () => {
    fc.assert(
      fc.property(arbCluster, ({ n, t, drainingMask }) => {
        const view = Array.from({ length: n }, (_, i) => member(i, drainingMask[i] === true));
        const model = new Model(view, t);
        model.settle();
        const planned = view.filter((m) => m.draining !== true);
        const q = quotas(
          planned.map((m) => ({ id: m.id, weight: 1 })),
          t,
        );
        if (planned.length === 0) {
          expect(model.claims.size).toBe(0);
          return;
        }
        expect(model.claims.size).toBe(t);
        planned.forEach((m, i) => {
          expect(model.ownedBy(m.id)).toHaveLength(q[i] as number);
        });
        for (const m of view) if (m.draining === true) expect(model.ownedBy(m.id)).toEqual([]);
      }),
    );
  });

  it('moves only what balance needs when members leave, and re-covers every shard', () => {
    fc.assert(
      fc.property(arbCluster, ({ n, t, leaving }) => {
        const view = Array.from({ length: n }, (_, i) => member(i));
        const model = new Model(view, t);
        model.settle();
        const gone = new Set(view.filter((_, i) => leaving[i] === true && i > 0).map((m) => m.id));
        model.remove(gone);
        const moved = model.settle();
        expect(model.claims.size).toBe(t);
        // Survivors only gain shards: nothing is taken from one survivor to give to another
        // beyond the remainder shuffle of at most one shard per survivor.
        expect(moved).toBeLessThanOrEqual(model.view.length);
      }),
    );
  });

  it('revokes a run whose claim is gone or not ours as claim-lost, and never claims a held shard', () => {
    const view = [member(0), member(1)];
    const claims = new Map<number, Claim>([
      [0, { shard: 0, owner: 'm000', token: 5 }],
      [1, { shard: 1, owner: 'm001', token: 6 }],
      [3, { shard: 3, owner: 'm000', token: 9 }],
    ]);
    const runs = new Map<number, PlannedRun>([
      [0, { token: 4, revoked: false }],
      [2, { token: 7, revoked: false }],
    ]);
    const p = plan({ view, claims, runs, self: 'm000', shardCount: 4, strategy: balanced });
    expect(p.revoke).toEqual([
      { shard: 0, reason: 'claim-lost' },
      { shard: 2, reason: 'claim-lost' },
    ]);
    expect(p.claim).not.toContain(1);
    expect(p.adopt.map((c) => c.shard).concat(p.giveBack.map((c) => c.shard))).toContain(3);
  });

  it('gives a draining member nothing and plans its shards for the others, who wait for the release', () => {
    const view = [member(0, true), member(1)];
    const claims = new Map<number, Claim>([
      [0, { shard: 0, owner: 'm000', token: 1 }],
      [1, { shard: 1, owner: 'm000', token: 2 }],
    ]);
    const peer = plan({ view, claims, runs: new Map(), self: 'm001', shardCount: 2, strategy: balanced });
    expect([...peer.desired].sort()).toEqual([0, 1]);
    expect(peer.claim).toEqual([]);
    const self = plan({
      view,
      claims,
      runs: new Map([
        [0, { token: 1, revoked: false }],
        [1, { token: 2, revoked: false }],
      ]),
      self: 'm000',
      shardCount: 2,
      strategy: balanced,
    });
    expect(self.desired.size).toBe(0);
  });
});

/** Any state one replica may plan from: claims of anyone (or of members gone), runs matching or not. */
const arbPlanInput = fc
  .record({
    n: fc.integer({ min: 1, max: 8 }),
    t: fc.integer({ min: 1, max: 24 }),
    selfIndex: fc.nat(),
    draining: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    owners: fc.array(fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }), { minLength: 24, maxLength: 24 }),
    runs: fc.array(fc.option(fc.record({ sameToken: fc.boolean(), revoked: fc.boolean() }), { nil: undefined }), {
      minLength: 24,
      maxLength: 24,
    }),
  })
  .map(({ n, t, selfIndex, draining, owners, runs }) => {
    const view = Array.from({ length: n }, (_, i) => member(i, draining[i] === true));
    const self = (view[selfIndex % n] as Member).id;
    const claims = new Map<number, Claim>();
    const planned = new Map<number, PlannedRun>();
    for (let shard = 0; shard < t; shard++) {
      const owner = owners[shard];
      // Owners 8 and 9 are members that left (not in the view): their claims linger until expiry.
      if (owner !== undefined)
        claims.set(shard, { shard, owner: `m${String(owner).padStart(3, '0')}`, token: shard + 1 });
      const run = runs[shard];
      if (run !== undefined)
        planned.set(shard, { token: run.sameToken ? shard + 1 : shard + 100, revoked: run.revoked });
    }
    return { view, claims, runs: planned, self, shardCount: t, strategy: balanced };
  });

describe('plan (properties of one pass)', () => {
  it('claims only free shards it wants, never one it also revokes, and adopts or gives back only its own claims', () => {
    fc.assert(
      fc.property(arbPlanInput, (input) => {
        const p = plan(input);
        const revoked = new Set(p.revoke.map((r) => r.shard));
        for (const shard of p.claim) {
          expect(p.desired.has(shard)).toBe(true);
          expect(input.claims.has(shard)).toBe(false);
          expect(input.runs.has(shard)).toBe(false);
          expect(revoked.has(shard)).toBe(false);
        }
        for (const claim of p.adopt) {
          expect(claim.owner).toBe(input.self);
          expect(p.desired.has(claim.shard)).toBe(true);
          expect(input.runs.has(claim.shard)).toBe(false);
        }
        for (const ref of p.giveBack) {
          expect(input.claims.get(ref.shard)).toEqual({ shard: ref.shard, owner: input.self, token: ref.token });
          expect(p.desired.has(ref.shard)).toBe(false);
          expect(input.runs.has(ref.shard)).toBe(false);
        }
        expect(new Set(p.claim).size).toBe(p.claim.length);
        expect([...p.claim].sort((a, b) => a - b)).toEqual(p.claim);
      }),
    );
  });

  it('revokes exactly the live runs whose claim is gone (claim-lost) or no longer wanted (rebalance)', () => {
    fc.assert(
      fc.property(arbPlanInput, (input) => {
        const p = plan(input);
        const expected: PlannedRevocation[] = [];
        for (const [shard, run] of input.runs) {
          if (run.revoked) continue;
          const claim = input.claims.get(shard);
          if (claim === undefined || claim.owner !== input.self || claim.token !== run.token) {
            expected.push({ shard, reason: 'claim-lost' });
          } else if (!p.desired.has(shard)) expected.push({ shard, reason: 'rebalance' });
        }
        expect(p.revoke).toEqual(expected);
      }),
    );
  });

  it('gives a draining replica nothing, and is deterministic', () => {
    fc.assert(
      fc.property(arbPlanInput, (input) => {
        const p = plan(input);
        if (input.view.find((m) => m.id === input.self)?.draining === true) {
          expect(p.desired.size).toBe(0);
          expect(p.claim).toEqual([]);
          expect(p.adopt).toEqual([]);
        }
        expect(plan(input)).toEqual(p);
      }),
    );
  });
});
