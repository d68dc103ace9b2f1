import { InvalidJobArgsError } from '@shardwork/jobs';
import { canonicalJson, checkArgs } from '@shardwork/jobs/adapter';
import { describe, expect, it } from 'vitest';

describe('checkArgs', () => {
  it('accepts plain JSON data and returns its JSON, leaving undefined properties out', () => {
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(checkArgs({ a: [1, 'b', null, { c: true }], d: undefined, e: nullProto }, 1000)).toBe(
      '{"a":[1,"b",null,{"c":true}],"e":{"a":1}}',
    );
  });

  it.each<[unknown, string]>([
    [{ 'a b': { 'x-y': new Set() } }, 'args["a b"]["x-y"]'],
    [{ list: [[1, Number.POSITIVE_INFINITY]] }, 'args.list[0][1]'],
    [{ s: Symbol('x') }, 'args.s'],
    [{ list: [undefined] }, 'args.list[0]'],
    [{ u: new Uint8Array(2) }, 'args.u'],
  ])('names the path of a value JSON would change: %o → %s', (args, path) => {
    expect(() => checkArgs(args, 1000)).toThrow(InvalidJobArgsError);
    expect(() => checkArgs(args, 1000)).toThrow(expect.objectContaining({ path }));
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(checkArgs({ a: shared, b: shared, list: [shared, shared] }, 1000)).toContain('"b":{"x":1}');
  });

  it('counts the size in UTF-8 bytes', () => {
    expect(() => checkArgs({ s: 'é'.repeat(10) }, 25)).toThrow(/over the limit of 25/);
    expect(checkArgs({ s: 'é'.repeat(5) }, 25)).toBe('{"s":"ééééé"}');
  });
});

describe('canonicalJson', () => {
  it('gives equal text for equal data whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } })).toBe(
      canonicalJson({ a: { c: null, d: [2, { y: 2, z: 1 }] }, b: 1 }),
    );
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });
});
