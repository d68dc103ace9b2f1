/**
 * Forgetting a stopped service: every key under its root goes, in one
 * transaction that first checks that no member key is left.
 *
 * @module
 */

import type { ITxnResponse } from 'etcd3';
import { parseServiceKey, type ServiceKeys } from './keys.js';
import { deletePrefix, getKeysUnder, noKeyUnder, type TxnRequest } from './txn.js';

/**
 * If no key exists under `members/` (member keys live exactly as long as
 * their leases), delete every key under the service root: `true` when there
 * were any. Otherwise the ids of the live members, and nothing is deleted.
 * Claims are bound to member leases, so none is live without a member; tokens
 * are etcd revisions, which keep increasing for a service started again.
 */
export async function forgetKeys(
  txn: (request: TxnRequest) => Promise<ITxnResponse>,
  keys: ServiceKeys,
): Promise<boolean | string[]> {
  const members = `${keys.root}members/`;
  const res = await txn({
    compare: [noKeyUnder(members)],
    success: [deletePrefix(keys.root)],
    failure: [getKeysUnder(members)],
  });
  if (res.succeeded) return Number(res.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
  return (res.responses[0]?.response_range?.kvs ?? []).map((kv) => {
    const named = parseServiceKey(keys.root, kv.key.toString('utf8'));
    return named.kind === 'member' ? named.id : kv.key.toString('utf8');
  });
}
