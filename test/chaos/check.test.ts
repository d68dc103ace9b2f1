import type { OwnershipRecord } from '@shardwork/core/testing';
import { describe, expect, it } from 'vitest';
import { analyze, type ChaosRunData, sharedTokens } from './check.js';

/** Effects every 50 ms for 1 s, for each `[shard, token, owner]`. */
function effects(claims: readonly (readonly [number, number, string])[]): OwnershipRecord[] {
  return claims.flatMap(([shard, token, owner]) =>
    Array.from({ length: 21 }, (_, i) => ({ kind: 'effect' as const, shard, token, owner, t: i * 50 })),
  );
}

function run(records: readonly OwnershipRecord[]): ChaosRunData {
  return {
    backend: 'etcd',
    seed: 1,
    durationMs: 1000,
    shardCount: 3,
    bounds: { ttlMs: 1000, crashMs: 2000, gracefulMs: 500, gapToleranceMs: 100 },
    t0: 0,
    runEnd: 1000,
    records,
    outcomes: [],
    samples: [],
    runErrors: [],
  };
}

describe('chaos verdict: tokens', () => {
  it('accepts a token per claim', () => {
    const verdict = analyze(
      run(
        effects([
          [0, 6000, 'a'],
          [1, 6001, 'a'],
          [2, 6002, 'b'],
        ]),
      ),
    );
    expect(verdict.violations).toEqual([]);
  });

  it('flags a token held for two shards, whoever held them, with one message per token', () => {
    const records = effects([
      [0, 6, 'a'],
      [1, 6, 'a'],
      [2, 6, 'b'],
    ]);
    const verdict = analyze(run(records));
    expect(verdict.ok).toBe(false);
    expect(verdict.violations).toHaveLength(1);
    expect(verdict.violations[0]).toContain('seed 1, backend etcd');
    expect(verdict.violations[0]).toContain('token 6 held for 3 shards: shard 0 by a; shard 1 by a; shard 2 by b');
    // An acquire alone counts: the handler held the token even if it never acted.
    const acquired: OwnershipRecord = { kind: 'acquire', shard: 2, token: 7, owner: 'b', t: 0 };
    expect(sharedTokens([...effects([[0, 7, 'a']]), acquired])).toEqual([
      'token 7 held for 2 shards: shard 0 by a; shard 2 by b',
    ]);
  });

  it('lists the first ten shared tokens and counts the rest', () => {
    const records = Array.from({ length: 12 }, (_, token): OwnershipRecord[] => [
      { kind: 'acquire', shard: 0, token, owner: 'a', t: 0 },
      { kind: 'acquire', shard: 1, token, owner: 'a', t: 0 },
    ]).flat();
    const lines = sharedTokens(records);
    expect(lines).toHaveLength(11);
    expect(lines.at(-1)).toBe('2 more tokens held for several shards');
  });
});
