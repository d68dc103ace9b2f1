/**
 * Group metadata: the record `<prefix>/<svc>/meta` that holds a service's
 * shard count and lease TTL. {@link ensureMeta} creates it if it is absent
 * (the first replica's settings win), checks a stored one field by field, and
 * repairs it: a record from before 0.2 gains `leaseTtlMs`, and with
 * `replaceInvalid` an unusable field is rewritten with the given value. Every
 * write of a stored record is a compare on the mod revision it read, so of
 * two racing callers only the one whose write succeeded reports the repair;
 * the other reads the repaired record.
 *
 * @module
 */

import {
  DiscoveryUnavailableError,
  type GroupSettings,
  InvalidOptionsError,
  type InvalidRecord,
  type StoredGroup,
} from '@shardwork/core';
import type { ITxnResponse } from 'etcd3';
import { encodeMeta, META_FIELDS, type MetaRecord, metaFieldProblem, parseMeta, type RawKeyValue } from './records.js';
import { absent, get, modifiedAt, put, type TxnRequest } from './txn.js';

/** How often {@link ensureMeta} re-reads after losing a compare-and-set race. */
const ENSURE_GROUP_ATTEMPTS = 5;

/** Runs one transaction with the call deadline. */
type Txn = (request: TxnRequest) => Promise<ITxnResponse>;

/** The settings to ensure, or the error for the first unusable one. */
export function checkGroup(group: GroupSettings): GroupSettings | InvalidOptionsError {
  const shardCount = group?.shardCount;
  if (!Number.isSafeInteger(shardCount) || shardCount < 1) {
    return new InvalidOptionsError('shards', shardCount, 'a positive integer');
  }
  const leaseTtlMs = group.leaseTtlMs;
  if (!Number.isSafeInteger(leaseTtlMs) || leaseTtlMs < 1) {
    return new InvalidOptionsError('leaseTtlMs', leaseTtlMs, 'a positive integer number of ms');
  }
  return { shardCount, leaseTtlMs };
}

/**
 * Make sure the meta record `key` exists: create it with `settings` if it is
 * absent, else read it, and complete or repair it as {@link planMeta} says.
 * Returns the group as stored.
 */
export async function ensureMeta(
  txn: Txn,
  key: string,
  settings: GroupSettings,
  replaceInvalid: boolean,
): Promise<StoredGroup> {
  for (let attempt = 1; attempt <= ENSURE_GROUP_ATTEMPTS; attempt++) {
    const kv = await createMeta(txn, key, settings);
    if (kv === undefined) return { ...settings, invalid: [], repaired: [] };
    const plan = planMeta(key, parseMeta(kv.value.toString('utf8')), settings, replaceInvalid);
    if (plan.write === undefined) return plan.stored;
    // Compare on the mod revision read: whatever another replica wrote meanwhile wins, and is read again.
    const res = await txn({
      compare: [modifiedAt(key, String(kv.mod_revision))],
      success: [put(key, plan.write)],
      failure: [],
    });
    if (res.succeeded) return plan.stored;
  }
  throw new DiscoveryUnavailableError('etcd', `ensureGroup lost ${ENSURE_GROUP_ATTEMPTS} races for ${key}`);
}

/** Create the meta record if it is absent; the stored one (`undefined`: this call created it). */
async function createMeta(txn: Txn, key: string, group: GroupSettings): Promise<RawKeyValue | undefined> {
  for (;;) {
    const res = await txn({
      compare: [absent(key)],
      success: [put(key, encodeMeta(group))],
      failure: [get(key)],
    });
    if (res.succeeded) return undefined;
    // The key existed at the compare; a transaction reads one revision, so it is there.
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (kv !== undefined) return kv;
  }
}

/** The group as read from a meta record, and the value to write back, if any. */
interface MetaPlan {
  readonly stored: StoredGroup;
  readonly write: string | undefined;
}

/**
 * What {@link ensureMeta} makes of a stored meta record: usable
 * fields stay; a missing `leaseTtlMs` (a record from before 0.2) is added;
 * unusable fields are replaced when `replaceInvalid`, else reported and kept.
 * Fields of other versions are kept as they are.
 */
export function planMeta(key: string, meta: MetaRecord, group: GroupSettings, replaceInvalid: boolean): MetaPlan {
  const values: Partial<Record<keyof GroupSettings, number>> = {};
  const updates: Record<string, number> = {};
  const invalid: InvalidRecord[] = [];
  const repaired: InvalidRecord[] = [];
  for (const name of META_FIELDS) {
    const field = meta[name];
    const problem = metaFieldProblem(name, field);
    if (field.state === 'ok') {
      values[name] = field.value;
    } else if (problem === undefined || replaceInvalid) {
      values[name] = group[name];
      updates[name] = group[name];
      if (problem !== undefined) repaired.push({ key, reason: problem });
    } else {
      invalid.push({ key, reason: problem });
    }
  }
  const stored = { shardCount: values.shardCount, leaseTtlMs: values.leaseTtlMs, invalid, repaired };
  if (Object.keys(updates).length === 0) return { stored, write: undefined };
  // A record that is not a JSON object has no field to keep, so both fields are unusable: with
  // replaceInvalid both are in `updates`, without it nothing is (a missing field needs an object).
  return { stored, write: JSON.stringify({ ...(meta.fields ?? {}), ...updates }) };
}

/**
 * The services named by the group records among `keys` (every key under
 * `root`, `<prefix>/`): `<prefix>/<service>/meta`, names decoded, sorted.
 */
export function servicesOf(root: string, keys: readonly string[]): string[] {
  const names = new Set<string>();
  for (const key of keys) {
    const rest = key.slice(root.length);
    const slash = rest.indexOf('/');
    if (slash > 0 && rest.slice(slash + 1) === 'meta') {
      try {
        names.add(decodeURIComponent(rest.slice(0, slash)));
      } catch {
        // Not a key of ours (a malformed escape): not a service.
      }
    }
  }
  return [...names].sort();
}
