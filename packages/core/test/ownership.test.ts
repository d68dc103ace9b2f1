import { checkOwnership, type OwnershipRecord } from '@shardwork/core/testing';
import { describe, expect, it, vi } from 'vitest';

const r = (kind: OwnershipRecord['kind'], shard: number, token: number, owner: string, t: number): OwnershipRecord => ({
  kind,
  shard,
  token,
  owner,
  t,
});

describe('checkOwnership', () => {
  it('accepts successive owners with increasing tokens', () => {
    const report = checkOwnership([
      r('acquire', 0, 1, 'a', 0),
      r('effect', 0, 1, 'a', 5),
      r('release', 0, 1, 'a', 6),
      r('acquire', 0, 7, 'b', 7),
      r('effect', 1, 2, 'a', 3),
    ]);
    expect(report.violations).toEqual([]);
    expect(report.intervals).toHaveLength(3);
  });

  it('flags an effect of the old owner after the new one started', () => {
    const report = checkOwnership([r('acquire', 0, 1, 'a', 0), r('acquire', 0, 2, 'b', 5), r('effect', 0, 1, 'a', 6)]);
    expect(report.violations).toEqual([expect.stringMatching(/shard 0: owners overlap/)]);
  });

  it('flags a token that does not increase, and one token used by two owners', () => {
    const report = checkOwnership([
      r('acquire', 0, 5, 'a', 0),
      r('release', 0, 5, 'a', 1),
      r('acquire', 0, 3, 'b', 2),
      r('effect', 1, 9, 'a', 0),
      r('effect', 1, 9, 'b', 1),
    ]);
    expect(report.violations).toEqual([
      expect.stringMatching(/shard 1 token 9 was used by several owners/),
      expect.stringMatching(/shard 0: token did not increase/),
    ]);
  });
});

describe('TypedEmitter guard', () => {
  it('warns about a throwing listener when nobody listens for errors', async () => {
    const { MemoryDiscovery, MemoryStore, Worker } = await import('@shardwork/core');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const worker = new Worker({
        service: 'e',
        shards: 1,
        discovery: new MemoryDiscovery({ store: new MemoryStore() }),
        handler: () => undefined,
      });
      worker.on('shard:acquired', () => {
        throw new Error('listener bug');
      });
      await worker.start();
      expect(warn.mock.calls.some((c) => String(c[0]).includes('"shard:acquired" listener threw'))).toBe(true);
      await worker.stop();
    } finally {
      warn.mockRestore();
    }
  });
});
