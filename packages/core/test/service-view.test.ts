import type { Member } from '@shardwork/core';
import { describe, expect, it } from 'vitest';
import { ServiceView } from '../src/service-view.js';

const member = (i: number): Member => ({
  id: `m${String(i).padStart(3, '0')}`,
  host: 'h',
  pid: 1,
  startedAt: 0,
  weight: 1,
  labels: {},
  joinSeq: i + 1,
});

describe('ServiceView', () => {
  const snapshot = {
    revision: '10',
    shardCount: 4,
    members: [{ ...member(0), expiresInMs: 500 }],
    claims: [{ shard: 0, owner: 'm000', token: 3 }],
    invalid: [],
  };

  it('applies changes that follow on, ignores stale ones, and asks for a re-list after a gap', () => {
    const view = ServiceView.fromSnapshot(snapshot) as ServiceView;
    expect(view.members.get('m000')?.expiresInMs).toBeUndefined();
    const m1 = member(1);
    expect(
      view.apply({
        type: 'change',
        previous: '10',
        revision: '11',
        changes: [
          { type: 'member:put', member: m1 },
          { type: 'claim:put', claim: { shard: 1, owner: m1.id, token: 4 } },
        ],
      }),
    ).toBe('applied');
    expect(view.sorted().map((m) => m.id)).toEqual(['m000', 'm001']);
    expect(view.version).toBe('11');
    expect(view.apply({ type: 'change', previous: '10', revision: '11', changes: [] })).toBe('stale');
    expect(view.apply({ type: 'change', previous: '12', revision: '13', changes: [] })).toBe('relist');
    expect(view.apply({ type: 'change', revision: '12' })).toBe('relist');
    expect(view.apply({ type: 'reset' })).toBe('relist');
    // A stream that skips revisions of other services (etcd) still follows on.
    expect(
      view.apply({ type: 'change', previous: '9', revision: '20', changes: [{ type: 'member:removed', id: 'm000' }] }),
    ).toBe('applied');
    expect([...view.claims.keys()]).toEqual([1]);
  });

  it('removes a claim only with its token, and keeps an unknown version unknown after changes', () => {
    const view = ServiceView.fromSnapshot({ ...snapshot, version: '1:10' }) as ServiceView;
    expect(view.version).toBe('1:10');
    view.apply({
      type: 'change',
      previous: '10',
      revision: '12',
      changes: [{ type: 'claim:removed', shard: 0, token: 2 }],
    });
    expect(view.claims.has(0)).toBe(true);
    expect(view.version).toBeUndefined();
    view.released({ shard: 0, token: 3 });
    expect(view.claims.has(0)).toBe(false);
  });

  it('never records a claim of a member it does not list (nobody would release it here)', () => {
    const view = ServiceView.fromSnapshot(snapshot) as ServiceView;
    view.claimed({ shard: 2, owner: 'gone', token: 9 });
    view.apply({
      type: 'change',
      previous: '10',
      revision: '11',
      changes: [{ type: 'claim:put', claim: { shard: 3, owner: 'gone', token: 10 } }],
    });
    expect([...view.claims.keys()]).toEqual([0]);
  });

  it('refuses a snapshot whose revision is not a decimal integer', () => {
    expect(ServiceView.fromSnapshot({ ...snapshot, revision: 'abc' })).toBeUndefined();
  });
});
