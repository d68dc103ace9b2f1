import { parseServiceKey, serviceKeys } from '@shardwork/discovery-etcd';
import type { IEvent } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { planMeta } from '../src/group.js';
import { prefixEnd } from '../src/keys.js';
import { parseMeta, parseService, type RawKeyValue } from '../src/records.js';
import { decodeEvent } from '../src/watch.js';

const keys = serviceKeys('sw', 'svc');
const GROUP = { shardCount: 8, leaseTtlMs: 3000 };

function kv(key: string, value: string, fields: Partial<Omit<RawKeyValue, 'key' | 'value'>> = {}): RawKeyValue {
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    create_revision: '5',
    mod_revision: '5',
    version: '1',
    lease: '0',
    ...fields,
  };
}

function event(type: 'Put' | 'Delete', record: RawKeyValue, previous?: RawKeyValue): IEvent {
  return { type, kv: record, prev_kv: previous } as unknown as IEvent;
}

describe('key layout', () => {
  it('names each key under a service root', () => {
    expect(parseServiceKey(keys.root, keys.meta)).toEqual({ kind: 'meta' });
    expect(parseServiceKey(keys.root, keys.released)).toEqual({ kind: 'marker' });
    expect(parseServiceKey(keys.root, keys.member('a/b'))).toEqual({ kind: 'member', id: 'a/b' });
    expect(parseServiceKey(keys.root, keys.claim(12))).toEqual({ kind: 'claim', shard: 12 });
    expect(parseServiceKey(keys.root, `${keys.root}claims/012`)).toMatchObject({ kind: 'invalid' });
    expect(parseServiceKey(keys.root, `${keys.root}members/%zz`)).toMatchObject({ kind: 'invalid' });
    expect(parseServiceKey(keys.root, `${keys.root}other`)).toMatchObject({ kind: 'invalid' });
  });

  it('computes the end of a prefix range', () => {
    expect(prefixEnd(Buffer.from('sw/a/'))).toEqual(Buffer.from('sw/a0'));
    expect(prefixEnd(Buffer.from([0x61, 0xff, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });
});

describe('meta record', () => {
  it('keeps usable fields and adds a missing leaseTtlMs', () => {
    expect(planMeta(keys.meta, parseMeta('{"shardCount":8,"leaseTtlMs":1000}'), GROUP, false)).toEqual({
      stored: { shardCount: 8, leaseTtlMs: 1000, invalid: [], repaired: [] },
      write: undefined,
    });
    const legacy = planMeta(keys.meta, parseMeta('{"shardCount":4,"x":1}'), GROUP, false);
    expect(legacy.stored).toEqual({ shardCount: 4, leaseTtlMs: 3000, invalid: [], repaired: [] });
    expect(JSON.parse(legacy.write ?? '')).toEqual({ shardCount: 4, x: 1, leaseTtlMs: 3000 });
  });

  it('reports unusable fields, and replaces them only when asked', () => {
    const garbage = parseMeta('{"leaseTtlMs":-1}');
    const left = planMeta(keys.meta, garbage, GROUP, false);
    expect(left.write).toBeUndefined();
    expect(left.stored).toEqual({
      shardCount: undefined,
      leaseTtlMs: undefined,
      invalid: [
        { key: keys.meta, reason: 'meta field shardCount is missing' },
        { key: keys.meta, reason: 'meta field leaseTtlMs is not a positive integer (-1)' },
      ],
      repaired: [],
    });
    const replaced = planMeta(keys.meta, garbage, GROUP, true);
    expect(replaced.stored).toMatchObject({ ...GROUP, invalid: [] });
    expect(replaced.stored.repaired).toHaveLength(2);
    expect(JSON.parse(replaced.write ?? '')).toEqual(GROUP);
    // Not an object: nothing can be completed without replacing it.
    expect(planMeta(keys.meta, parseMeta('[1]'), GROUP, false).write).toBeUndefined();
    expect(JSON.parse(planMeta(keys.meta, parseMeta('[1]'), GROUP, true).write ?? '')).toEqual(GROUP);
  });
});

describe('snapshot parsing', () => {
  it('counts every key in the version, the marker included, and judges claims by their owner', () => {
    const member = JSON.stringify({ id: 'm1', host: 'h', pid: 1, startedAt: 0, weight: 1, labels: {} });
    const parsed = parseService(keys.root, [
      kv(keys.meta, JSON.stringify(GROUP), { mod_revision: '2' }),
      kv(keys.released, '', { mod_revision: '9' }),
      kv(keys.member('m1'), member, { lease: '77', create_revision: '3', mod_revision: '3' }),
      kv(keys.claim(0), 'm1', { lease: '77', create_revision: '4', mod_revision: '4' }),
      kv(keys.claim(1), 'm1', { lease: '78' }),
      kv(keys.claim(2), 'm2', { lease: '77' }),
    ]);
    expect(parsed.version).toBe('6:9');
    expect(parsed.shardCount).toBe(8);
    expect(parsed.members).toEqual([{ id: 'm1', host: 'h', pid: 1, startedAt: 0, weight: 1, labels: {}, joinSeq: 3 }]);
    expect(parsed.claims).toEqual([{ shard: 0, owner: 'm1', token: 4000 }]);
    expect(parsed.invalid).toEqual([
      { key: keys.claim(1), reason: "claim is not bound to its owner's lease" },
      { key: keys.claim(2), reason: 'claim owner "m2" is not a live member' },
    ]);
  });
});

describe('watch events', () => {
  const member = JSON.stringify({ id: 'm1', host: 'h', pid: 1, startedAt: 0, weight: 1, labels: {}, draining: true });
  it('turns members and claims into changes', () => {
    expect(
      decodeEvent(keys.root, event('Put', kv(keys.member('m1'), member, { lease: '7', create_revision: '3' }))),
    ).toEqual({
      type: 'member:put',
      member: { id: 'm1', host: 'h', pid: 1, startedAt: 0, weight: 1, labels: {}, joinSeq: 3, draining: true },
    });
    expect(decodeEvent(keys.root, event('Delete', kv(keys.member('m1'), '')))).toEqual({
      type: 'member:removed',
      id: 'm1',
    });
    expect(decodeEvent(keys.root, event('Put', kv(keys.claim(3), 'm1', { lease: '7', create_revision: '9' })))).toEqual(
      {
        type: 'claim:put',
        claim: { shard: 3, owner: 'm1', token: 9003 },
      },
    );
    // A deletion names the lowest token of its revision: the claim removed is the one created before it.
    expect(decodeEvent(keys.root, event('Delete', kv(keys.claim(3), '', { mod_revision: '12' })))).toEqual({
      type: 'claim:removed',
      shard: 3,
      tokenBelow: 12_000,
    });
    expect(decodeEvent(keys.root, event('Put', kv(keys.released, '')))).toBe('none');
  });

  it('gives up on anything it cannot express exactly', () => {
    const hints = [
      event('Put', kv(keys.member('m1'), member)), // no lease
      event('Put', kv(keys.member('m1'), '{', { lease: '7' })),
      event('Put', kv(keys.claim(3), 'm1')), // no lease
      event('Put', kv(keys.claim(3), 'm1', { lease: '7', version: '2' })), // overwritten
      event('Put', kv(keys.meta, '{}')),
      event('Put', kv(`${keys.root}stray`, 'x')),
      event('Delete', kv(keys.released, '')),
    ];
    for (const e of hints) expect(decodeEvent(keys.root, e), e.kv.key.toString()).toBeUndefined();
  });
});
