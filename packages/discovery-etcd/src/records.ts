/**
 * Records of the etcd backend: the group metadata, claims, and what a range
 * read of a service means. Member records use core's codec
 * (`encodeMemberRecord` / `parseMemberRecord`), so every backend agrees on
 * what a valid member is; the key layout is in `keys.ts`.
 *
 * @module
 */

import type { Claim, GroupSettings, InvalidRecord, Member, Snapshot } from '@shardwork/core';
import { parseMemberRecord } from '@shardwork/core/backend';
import { parseServiceKey } from './keys.js';
import { claimToken } from './tokens.js';

/**
 * One key/value as etcd3 returns it. int64 fields arrive as decimal strings,
 * except that a zero default can arrive as the number 0 when the protobuf
 * runtime runs without long.js: always compare through `String()`.
 */
export interface RawKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly create_revision: string | number;
  readonly mod_revision: string | number;
  readonly version: string | number;
  readonly lease: string | number;
}

/** One field of the meta record as read. */
export type MetaField =
  | { readonly state: 'ok'; readonly value: number }
  | { readonly state: 'missing' }
  | { readonly state: 'invalid'; readonly reason: string };

/** The meta record as read: each field on its own, so one bad field does not hide the other. */
export interface MetaRecord {
  readonly shardCount: MetaField;
  readonly leaseTtlMs: MetaField;
  /** The stored JSON object; `undefined` when the value is not a JSON object. */
  readonly fields: Readonly<Record<string, unknown>> | undefined;
}

/** The names of the group settings in the meta record. */
export const META_FIELDS = ['shardCount', 'leaseTtlMs'] as const satisfies readonly (keyof GroupSettings)[];

/** The JSON stored under the meta key: `extra` (fields of newer versions are kept), then the settings. */
export function encodeMeta(group: GroupSettings, extra: Readonly<Record<string, unknown>> = {}): string {
  return JSON.stringify({ ...extra, shardCount: group.shardCount, leaseTtlMs: group.leaseTtlMs });
}

function metaField(fields: Readonly<Record<string, unknown>>, name: string): MetaField {
  const value = fields[name];
  if (value === undefined) return { state: 'missing' };
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    return { state: 'invalid', reason: `meta field ${name} is not a positive integer (${JSON.stringify(value)})` };
  }
  return { state: 'ok', value };
}

/** Parse the meta record; never throws. */
export function parseMeta(text: string): MetaRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    const invalid = (name: string): MetaField => ({
      state: 'invalid',
      reason: `meta record is not a JSON object, so field ${name} cannot be read`,
    });
    return { shardCount: invalid('shardCount'), leaseTtlMs: invalid('leaseTtlMs'), fields: undefined };
  }
  const fields = json as Record<string, unknown>;
  return { shardCount: metaField(fields, 'shardCount'), leaseTtlMs: metaField(fields, 'leaseTtlMs'), fields };
}

/**
 * Why a field of the meta record is unusable, or `undefined` when it is
 * fine. A missing `shardCount` is garbage; a missing `leaseTtlMs` is a
 * record of a version before 0.2, which `ensureGroup` completes.
 */
export function metaFieldProblem(name: (typeof META_FIELDS)[number], field: MetaField): string | undefined {
  if (field.state === 'invalid') return field.reason;
  if (field.state === 'missing' && name === 'shardCount') return 'meta field shardCount is missing';
  return undefined;
}

/** The unusable fields of a meta record stored under `key`, one entry each. */
export function metaInvalid(key: string, meta: MetaRecord): InvalidRecord[] {
  const invalid: InvalidRecord[] = [];
  for (const name of META_FIELDS) {
    const reason = metaFieldProblem(name, meta[name]);
    if (reason !== undefined) invalid.push({ key, reason });
  }
  return invalid;
}

/** The value of a usable meta field. */
export function metaValue(field: MetaField): number | undefined {
  return field.state === 'ok' ? field.value : undefined;
}

/** Outcome of reading one record. */
export type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** The member stored in `kv` under the key of member `id`: bound to a lease, and a valid record. */
export function memberFromKv(id: string, kv: RawKeyValue): Read<Member> {
  if (String(kv.lease) === '0') return { ok: false, reason: 'member record is not bound to a lease' };
  const parsed = parseMemberRecord(id, kv.value.toString('utf8'));
  if (!parsed.ok) return parsed;
  const member: Member = {
    ...parsed.value.info,
    joinSeq: Number(kv.create_revision),
    // Only when set, so that a member that never drained equals its MemberInfo plus joinSeq.
    ...(parsed.value.draining ? { draining: true } : {}),
  };
  return { ok: true, value: member };
}

/** The claim value: the owner's member id. */
export function encodeClaim(owner: string): string {
  return owner;
}

/** A claim as stored, before its owner is checked. */
export interface StoredClaim extends Claim {
  /** The etcd lease the claim key is bound to, decimal. */
  readonly lease: string;
}

/**
 * The claim of `shard` stored in `kv`, judged on its own: bound to a lease,
 * with an owner, and a create revision within the range of exact tokens.
 * Whether the lease is the owner's is checked by {@link ownerProblem}. (An
 * overwritten claim on its owner's lease is still that owner's: its token,
 * made of the create revision and the shard, did not change.)
 */
export function claimFromKv(shard: number, kv: RawKeyValue): Read<StoredClaim> {
  const lease = String(kv.lease);
  if (lease === '0') return { ok: false, reason: 'claim is not bound to a lease' };
  const owner = kv.value.toString('utf8');
  if (owner === '') return { ok: false, reason: 'claim has an empty owner' };
  const token = claimToken(kv.create_revision, shard);
  if (token === undefined) {
    return { ok: false, reason: `claim revision ${kv.create_revision} is beyond the range of exact fencing tokens` };
  }
  return { ok: true, value: { shard, owner, token, lease } };
}

/**
 * Why `claim` is not a live claim, given the lease of its owner's member key
 * (`undefined`: no such live member); `undefined` when it is one.
 */
export function ownerProblem(claim: StoredClaim, ownerLease: string | undefined): string | undefined {
  if (ownerLease === undefined) return `claim owner ${JSON.stringify(claim.owner)} is not a live member`;
  if (ownerLease !== claim.lease) return "claim is not bound to its owner's lease";
  return undefined;
}

/**
 * The value {@link EtcdDiscovery.version} reads: the number of keys under the
 * service root and their highest mod revision. A put raises the highest mod
 * revision and a delete lowers the count, and the highest mod revision never
 * falls back while the count stays: for that, every key created later would
 * have to be deleted again, and the deletes shardwork makes itself (releases)
 * rewrite the `released` marker. So the version never returns to an earlier
 * value, except after keys were created and then removed by lease expiry or
 * revocation alone, which restores exactly the earlier contents.
 */
export function versionOf(count: number | string, maxModRevision: number | string): string {
  return `${count}:${maxModRevision}`;
}

/**
 * Turn the keys under a service root into members, claims and the shard
 * count. Anything unparsable is reported in `invalid` and left out; so is a
 * claim whose owner is not a live member bound to the same lease, since such a
 * claim cannot have been written by shardwork.
 */
export function parseService(root: string, kvs: readonly RawKeyValue[]): Omit<Snapshot, 'revision'> {
  let shardCount: number | undefined;
  let maxMod = 0;
  const members: Member[] = [];
  const memberLeases = new Map<string, string>();
  const stored: { key: string; claim: StoredClaim }[] = [];
  const invalid: InvalidRecord[] = [];
  for (const kv of kvs) {
    maxMod = Math.max(maxMod, Number(kv.mod_revision));
    const key = kv.key.toString('utf8');
    const named = parseServiceKey(root, key);
    if (named.kind === 'invalid') {
      invalid.push({ key, reason: named.reason });
    } else if (named.kind === 'marker') {
      // Counted in the version, nothing else.
    } else if (named.kind === 'meta') {
      const meta = parseMeta(kv.value.toString('utf8'));
      shardCount = metaValue(meta.shardCount);
      // One entry per record, as for every other key.
      const problems = metaInvalid(key, meta).map((record) => record.reason);
      if (problems.length > 0) invalid.push({ key, reason: problems.join('; ') });
    } else if (named.kind === 'member') {
      const member = memberFromKv(named.id, kv);
      if (!member.ok) {
        invalid.push({ key, reason: member.reason });
        continue;
      }
      members.push(member.value);
      memberLeases.set(named.id, String(kv.lease));
    } else {
      const claim = claimFromKv(named.shard, kv);
      if (claim.ok) stored.push({ key, claim: claim.value });
      else invalid.push({ key, reason: claim.reason });
    }
  }
  const claims: Claim[] = [];
  for (const { key, claim } of stored) {
    const problem = ownerProblem(claim, memberLeases.get(claim.owner));
    if (problem === undefined) claims.push({ shard: claim.shard, owner: claim.owner, token: claim.token });
    else invalid.push({ key, reason: problem });
  }
  return { version: versionOf(kvs.length, maxMod), shardCount, members, claims, invalid };
}
