import { serviceKeys } from '@shardwork/discovery-etcd';
import { describe, expect, it } from 'vitest';
import { parseService, type RawKeyValue } from '../src/records.js';
import {
  claimRevision,
  claimToken,
  MAX_TOKEN_REVISION,
  slotChunks,
  TOKENS_PER_REVISION,
  tokenBelow,
} from '../src/tokens.js';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('fencing tokens', () => {
  it('are the create revision × 1000 plus the slot, and name their revision back', () => {
    expect(TOKENS_PER_REVISION).toBe(1000);
    expect(claimToken('6', 3)).toBe(6003);
    expect(claimToken(6, 1003)).toBe(6003); // one slot: never claimed in one transaction (slotChunks)
    expect(claimRevision(6003, 3)).toBe(6);
    expect(claimRevision(6003, 1003)).toBe(6);
    expect(claimRevision(6003, 4)).toBeUndefined(); // another slot: no claim of shard 4 holds it
    expect(claimRevision(3, 3)).toBeUndefined(); // revision 0: no key was ever created there
    expect(claimRevision(6003.5, 3)).toBeUndefined();
    expect(claimToken('0', 3)).toBeUndefined();
  });

  it('stay exact numbers up to the last revision they cover, and are refused beyond it', () => {
    expect(MAX_TOKEN_REVISION).toBe(9_007_199_254_739);
    const highest = claimToken(String(MAX_TOKEN_REVISION), 999);
    expect(highest).toBe(9_007_199_254_739_999);
    expect(Number.isSafeInteger(highest)).toBe(true);
    expect(claimRevision(highest ?? 0, 999)).toBe(MAX_TOKEN_REVISION);
    expect(claimToken(String(MAX_TOKEN_REVISION + 1), 0)).toBeUndefined();
    expect(claimToken('9007199254740993', 0)).toBeUndefined(); // above 2^53: Number() would round it
    const keys = serviceKeys('sw', 'svc');
    const member = JSON.stringify({ id: 'm1', host: 'h', pid: 1, startedAt: 0, weight: 1, labels: {} });
    const kv = (key: string, value: string, createRevision: string): RawKeyValue => ({
      key: Buffer.from(key),
      value: Buffer.from(value),
      create_revision: createRevision,
      mod_revision: createRevision,
      version: '1',
      lease: '7',
    });
    const parsed = parseService(keys.root, [
      kv(keys.member('m1'), member, '3'),
      kv(keys.claim(0), 'm1', String(MAX_TOKEN_REVISION + 1)),
    ]);
    expect(parsed.claims).toEqual([]);
    expect(parsed.invalid).toEqual([
      { key: keys.claim(0), reason: 'claim revision 9007199254740 is beyond the range of exact fencing tokens' },
    ]);
  });

  it('put a deletion above every claim created before it and at or below every claim created from it on', () => {
    expect(tokenBelow('12')).toBe(12_000);
    expect(claimToken(11, 999)).toBeLessThan(tokenBelow(12));
    expect(claimToken(12, 0)).toBeGreaterThanOrEqual(tokenBelow(12));
    // Past the exact range it stays exact, and still above every token handed out.
    const capped = tokenBelow('9007199254740993');
    expect(Number.isSafeInteger(capped)).toBe(true);
    expect(claimToken(MAX_TOKEN_REVISION, 999)).toBeLessThan(capped);
  });
});

describe('slotChunks', () => {
  it('cuts a service below 1000 shards by size alone, in the order given', () => {
    expect(slotChunks(range(300), 126).map((c) => c.length)).toEqual([126, 126, 48]);
    expect(slotChunks(range(300), 126).flat()).toEqual(range(300));
    expect(slotChunks([5, 0, 3], 126)).toEqual([[5, 0, 3]]);
    expect(slotChunks([], 126)).toEqual([]);
  });

  it('never puts two shards of one slot in one transaction, nor more than 1000 shards', () => {
    expect(slotChunks([0, 1000, 2000, 1, 1001], 126)).toEqual([[0, 1], [1000, 1001], [2000]]);
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647; // MINSTD: exact in doubles
      return seed % n;
    };
    for (const size of [2, 126, 999, 1000, 5000]) {
      const shards = [...new Set(range(3000).map(() => random(100_000)))];
      const chunks = slotChunks(shards, size);
      expect(chunks.flat().sort((a, b) => a - b)).toEqual([...shards].sort((a, b) => a - b));
      for (const chunk of chunks) {
        expect(chunk.length).toBeLessThanOrEqual(Math.min(size, 1000));
        expect(new Set(chunk.map((s) => s % 1000)).size).toBe(chunk.length);
      }
    }
    expect(slotChunks(range(2500), 5000).map((c) => c.length)).toEqual([1000, 1000, 500]);
  });
});
