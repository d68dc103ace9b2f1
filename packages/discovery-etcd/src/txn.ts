/**
 * Raw etcd transaction parts. etcd3's builder covers flat transactions only;
 * batches need nested transactions (one per shard, so that one taken shard
 * does not fail the others) and count-only / keys-only ranges, which these
 * small builders produce as plain protobuf objects.
 *
 * @module
 */

import { CompareResult, CompareTarget, type ICompare, type IRequestOp, SortOrder, SortTarget } from 'etcd3';
import { prefixEnd } from './keys.js';

/** A transaction request (etcd3's `ITxnRequest`, restated with required parts). */
export interface TxnRequest {
  readonly compare: ICompare[];
  readonly success: IRequestOp[];
  readonly failure: IRequestOp[];
}

const buffer = (key: string): Buffer => Buffer.from(key, 'utf8');

/** `create_revision(key) == 0`: the key does not exist. */
export function absent(key: string): ICompare {
  return { key: buffer(key), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 };
}

/** The key is bound to `lease` (an absent key has lease 0). */
export function boundTo(key: string, lease: string): ICompare {
  return { key: buffer(key), target: CompareTarget.Lease, result: CompareResult.Equal, lease };
}

/** The key was last written at `modRevision` (an absent key has mod revision 0). */
export function modifiedAt(key: string, modRevision: string): ICompare {
  return { key: buffer(key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: modRevision };
}

/** The key was created at `createRevision`. */
export function createdAt(key: string, createRevision: number): ICompare {
  return {
    key: buffer(key),
    target: CompareTarget.Create,
    result: CompareResult.Equal,
    create_revision: createRevision,
  };
}

/** The key holds `value`. */
export function holds(key: string, value: string): ICompare {
  return { key: buffer(key), target: CompareTarget.Value, result: CompareResult.Equal, value: buffer(value) };
}

/** Put `value` under `key`, bound to `lease` (`'0'`: none). */
export function put(key: string, value: string, lease = '0'): IRequestOp {
  return { request_put: { key: buffer(key), value: buffer(value), lease } };
}

/** Read one key. */
export function get(key: string): IRequestOp {
  return { request_range: { key: buffer(key) } };
}

/** Read one key without its value (lease and revisions only). */
export function getKeyOnly(key: string): IRequestOp {
  return { request_range: { key: buffer(key), keys_only: true } };
}

/** Delete one key. */
export function del(key: string): IRequestOp {
  return { request_delete_range: { key: buffer(key) } };
}

/** Count the keys under `prefix` (no keys or values are sent back). */
export function countPrefix(prefix: string): IRequestOp {
  const key = buffer(prefix);
  return { request_range: { key, range_end: prefixEnd(key), count_only: true } };
}

/** The key under `prefix` with the highest mod revision, without its value. */
export function lastModified(prefix: string): IRequestOp {
  const key = buffer(prefix);
  return {
    request_range: {
      key,
      range_end: prefixEnd(key),
      keys_only: true,
      limit: 1,
      sort_target: SortTarget.Mod,
      sort_order: SortOrder.Descend,
    },
  };
}

/**
 * No key exists under `prefix`: a range compare (etcd ≥ 3.3) holds when every
 * key in the range has create revision 0, and an empty range compares as one
 * absent key, which has.
 */
export function noKeyUnder(prefix: string): ICompare {
  const key = buffer(prefix);
  return {
    key,
    range_end: prefixEnd(key),
    target: CompareTarget.Create,
    result: CompareResult.Equal,
    create_revision: 0,
  };
}

/** The keys (without values) under `prefix`. */
export function getKeysUnder(prefix: string): IRequestOp {
  const key = buffer(prefix);
  return { request_range: { key, range_end: prefixEnd(key), keys_only: true } };
}

/** Delete every key under `prefix`. */
export function deletePrefix(prefix: string): IRequestOp {
  const key = buffer(prefix);
  return { request_delete_range: { key, range_end: prefixEnd(key) } };
}

/** A nested transaction, as one operation of an enclosing one (etcd ≥ 3.3). */
export function nested(request: TxnRequest): IRequestOp {
  return { request_txn: request };
}

/** Split `items` into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
