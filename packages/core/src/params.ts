/**
 * Per-shard parameters, as in goworker: `"0=beijing,1=shanghai"`, or an object
 * `{ 0: 'beijing' }`, or an array `['beijing', 'shanghai']` (index = shard).
 *
 * @module
 */

import { InvalidParamsError } from './errors.js';

/** Per-shard parameters in any accepted form. */
export type ShardParamsInput = string | readonly string[] | Readonly<Record<number, string>>;

/**
 * Parse parameters into a shard → value map. Malformed input (a pair without
 * `=`, a key that is not a shard index, a duplicate key, a shard ≥ `shardCount`)
 * throws {@link InvalidParamsError} naming the problem; it never yields a
 * silently empty map.
 */
export function parseParams(input: ShardParamsInput | undefined, shardCount: number): ReadonlyMap<number, string> {
  const result = new Map<number, string>();
  if (input === undefined) return result;
  const put = (rawKey: string, value: unknown): void => {
    const key = rawKey.trim();
    if (!/^\d+$/.test(key)) throw new InvalidParamsError(input, `"${rawKey}" is not a shard index`);
    const shard = Number(key);
    if (shard >= shardCount) {
      throw new InvalidParamsError(
        input,
        `shard ${shard} is out of range: there are ${shardCount} shards (0–${shardCount - 1})`,
      );
    }
    if (typeof value !== 'string') throw new InvalidParamsError(input, `value of shard ${shard} is not a string`);
    if (result.has(shard)) throw new InvalidParamsError(input, `shard ${shard} is given twice`);
    result.set(shard, value);
  };
  if (typeof input === 'string') {
    if (input.trim() === '') return result;
    for (const pair of input.split(',')) {
      const eq = pair.indexOf('=');
      if (eq === -1) throw new InvalidParamsError(input, `"${pair}" is not of the form shard=value`);
      put(pair.slice(0, eq), pair.slice(eq + 1).trim());
    }
  } else if (Array.isArray(input)) {
    input.forEach((value, shard) => {
      put(String(shard), value);
    });
  } else if (typeof input === 'object' && input !== null) {
    for (const [key, value] of Object.entries(input)) put(key, value);
  } else {
    throw new InvalidParamsError(input, 'expected a string "0=a,1=b", an array or an object');
  }
  return result;
}
