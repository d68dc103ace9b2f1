import {
  type Assignment,
  type AssignmentMember,
  type AssignmentStrategy,
  balanced,
  computeAssignment,
  InvalidAssignmentError,
  quotas,
  range,
  roundRobin,
} from '@shardwork/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const members = (n: number, weights?: number[]): AssignmentMember[] =>
  Array.from({ length: n }, (_, i) => ({ id: `m${String(i).padStart(3, '0')}`, weight: weights?.[i] ?? 1 }));

function ownersOf(assignment: Assignment): Map<number, string> {
  const owners = new Map<number, string>();
  for (const [id, shards] of assignment) for (const s of shards) owners.set(s, id);
  return owners;
}

function fromScratch(strategy: AssignmentStrategy, view: AssignmentMember[], shardCount: number): Assignment {
  return computeAssignment(strategy, { members: view, shardCount, owners: new Map() });
}

function moved(before: Map<number, string>, after: Map<number, string>): number {
  let count = 0;
  for (const [shard, owner] of after) if (before.get(shard) !== undefined && before.get(shard) !== owner) count++;
  return count;
}

const arbCase = fc.record({ n: fc.integer({ min: 1, max: 40 }), t: fc.integer({ min: 1, max: 300 }) });

describe('quotas', () => {
  it('gives ⌈T/N⌉ to the first T mod N members and ⌊T/N⌋ to the rest', () => {
    expect(quotas(members(4), 10)).toEqual([3, 3, 2, 2]);
    expect(quotas(members(3), 3)).toEqual([1, 1, 1]);
    expect(quotas(members(5), 3)).toEqual([1, 1, 1, 0, 0]);
    expect(quotas([], 3)).toEqual([]);
  });

  it('is proportional to weight, within one shard', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 500 }),
        (weights, t) => {
          const q = quotas(members(weights.length, weights), t);
          const total = weights.reduce((a, b) => a + b, 0);
          expect(q.reduce((a, b) => a + b, 0)).toBe(t);
          q.forEach((x, i) => {
            expect(Math.abs(x - (t * (weights[i] as number)) / total)).toBeLessThan(1);
          });
        },
      ),
    );
  });
});

describe.each([
  ['balanced', balanced],
  ['range', range],
  ['roundRobin', roundRobin],
] as const)('%s', (_name, strategy) => {
  it('assigns every shard exactly once, deterministically, with quotas differing by at most one', () => {
    fc.assert(
      fc.property(arbCase, ({ n, t }) => {
        const view = members(n);
        const a = fromScratch(strategy, view, t);
        const b = fromScratch(strategy, view, t);
        expect([...a]).toEqual([...b]);
        const all = [...a.values()].flat().sort((x, y) => x - y);
        expect(all).toEqual(Array.from({ length: t }, (_, i) => i));
        const sizes = [...a.values()].map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('leaves members beyond the shard count on standby', () => {
    const a = fromScratch(strategy, members(7), 4);
    expect([...a.values()].map((s) => s.length)).toEqual([1, 1, 1, 1, 0, 0, 0]);
  });
});

describe('balanced stickiness (minimal movement)', () => {
  it('moves at most ⌈T/N⌉ shards when one member joins', () => {
    fc.assert(
      fc.property(arbCase, ({ n, t }) => {
        const before = ownersOf(fromScratch(balanced, members(n), t));
        const view = members(n + 1);
        const after = ownersOf(computeAssignment(balanced, { members: view, shardCount: t, owners: before }));
        expect(after.size).toBe(t);
        expect(moved(before, after)).toBeLessThanOrEqual(Math.ceil(t / (n + 1)));
      }),
    );
  });

  it('moves only the leaver’s shards (≤ ⌈T/N⌉) when one member leaves', () => {
    fc.assert(
      fc.property(
        arbCase.filter(({ n }) => n >= 2),
        fc.nat(),
        ({ n, t }, pick) => {
          const view = members(n);
          const before = ownersOf(fromScratch(balanced, view, t));
          const leaver = view[pick % n] as AssignmentMember;
          const rest = view.filter((m) => m !== leaver);
          const survivors = new Map([...before].filter(([, owner]) => owner !== leaver.id));
          const after = ownersOf(computeAssignment(balanced, { members: rest, shardCount: t, owners: survivors }));
          expect(after.size).toBe(t);
          expect(moved(survivors, after)).toBe(0);
          const reassigned = [...before].filter(([, owner]) => owner === leaver.id).length;
          expect(reassigned).toBeLessThanOrEqual(Math.ceil(t / (n - 1)));
        },
      ),
    );
  });

  it('keeps weighted quotas when weights are set', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 200 }),
        (weights, t) => {
          const view = members(weights.length, weights);
          const a = fromScratch(balanced, view, t);
          const q = quotas(view, t);
          view.forEach((m, i) => {
            expect(a.get(m.id)?.length).toBe(q[i]);
          });
        },
      ),
    );
  });

  it('moves far less than range, which reshuffles on a join at the front', () => {
    const t = 120;
    const n = 6;
    // A member that sorts first in the view (e.g. re-registered with an older join order) shifts every range block.
    const view = members(n);
    const joinedFront = [{ id: 'a-first', weight: 1 }, ...view];
    const moves = (strategy: AssignmentStrategy): number => {
      const before = ownersOf(fromScratch(strategy, view, t));
      return moved(
        before,
        ownersOf(computeAssignment(strategy, { members: joinedFront, shardCount: t, owners: before })),
      );
    };
    expect(moves(balanced)).toBeLessThanOrEqual(Math.ceil(t / (n + 1)));
    expect(moves(range)).toBeGreaterThan(moves(balanced) * 3);
  });
});

describe('computeAssignment', () => {
  const input = { members: members(2), shardCount: 4, owners: new Map<number, string>() };
  it.each([
    ['not a map', () => ({}) as Assignment],
    ['unknown member', () => new Map([['zz', [0]]])],
    ['shard out of range', () => new Map([['m000', [4]]])],
    ['non-integer shard', () => new Map([['m000', [1.5]]])],
    [
      'duplicate shard',
      () =>
        new Map([
          ['m000', [1]],
          ['m001', [1]],
        ]),
    ],
  ])('rejects a custom strategy result that is %s', (_what, strategy) => {
    expect(() => computeAssignment(strategy as AssignmentStrategy, input)).toThrow(InvalidAssignmentError);
  });
});
