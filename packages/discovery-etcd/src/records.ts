/**
 * Key layout and record (de)serialization of the etcd backend.
 *
 * ```
 * <prefix>/<service>/meta              {"shardCount":8}            no lease, created once
 * <prefix>/<service>/members/<id>      MemberInfo as JSON          the member's lease
 * <prefix>/<service>/claims/<shard>    owner member id             the owner's lease
 * ```
 *
 * Service names and member ids are percent-encoded in keys, so a `/` in a
 * name cannot make one service's keys fall under another's prefix.
 *
 * @module
 */

import type { InvalidRecord, Member, MemberInfo } from '@shardwork/core';

/** Keys of one service. */
export interface ServiceKeys {
  /** `<prefix>/<service>/`: every key of the service starts with it. */
  readonly root: string;
  readonly meta: string;
  member(id: string): string;
  claim(shard: number): string;
}

/** Build the keys of `service` under `prefix`. */
export function serviceKeys(prefix: string, service: string): ServiceKeys {
  const root = `${prefix}/${encodeURIComponent(service)}/`;
  return {
    root,
    meta: `${root}meta`,
    member: (id) => `${root}members/${encodeURIComponent(id)}`,
    claim: (shard) => `${root}claims/${shard}`,
  };
}

/** The JSON stored under a member key (only the fields of {@link MemberInfo}). */
export function encodeMember(member: MemberInfo): string {
  return JSON.stringify({
    id: member.id,
    host: member.host,
    pid: member.pid,
    startedAt: member.startedAt,
    weight: member.weight,
    labels: { ...member.labels },
  });
}

/** The JSON stored under the meta key. */
export function encodeMeta(shardCount: number): string {
  return JSON.stringify({ shardCount });
}

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parse the meta record. */
export function parseMeta(text: string): Parsed<number> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'meta value is not JSON' };
  }
  const shardCount = (json as { shardCount?: unknown } | null)?.shardCount;
  if (typeof shardCount !== 'number' || !Number.isInteger(shardCount) || shardCount < 1) {
    return { ok: false, reason: 'meta has no positive integer shardCount' };
  }
  return { ok: true, value: shardCount };
}

/** Parse a member record stored under the member key for `keyId`. */
export function parseMember(keyId: string, text: string): Parsed<MemberInfo> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'member value is not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'member value is not a JSON object' };
  }
  const m = json as Record<string, unknown>;
  if (m.id !== keyId) return { ok: false, reason: `member id ${JSON.stringify(m.id)} does not match its key` };
  if (typeof m.host !== 'string') return { ok: false, reason: 'member host is not a string' };
  if (typeof m.pid !== 'number' || !Number.isInteger(m.pid))
    return { ok: false, reason: 'member pid is not an integer' };
  if (typeof m.startedAt !== 'number' || !Number.isFinite(m.startedAt)) {
    return { ok: false, reason: 'member startedAt is not a number' };
  }
  if (typeof m.weight !== 'number' || !Number.isFinite(m.weight) || m.weight <= 0) {
    return { ok: false, reason: 'member weight is not a positive number' };
  }
  const labels = m.labels;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    return { ok: false, reason: 'member labels is not an object' };
  }
  const copy: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string') return { ok: false, reason: `member label ${JSON.stringify(k)} is not a string` };
    copy[k] = v;
  }
  return {
    ok: true,
    value: { id: keyId, host: m.host, pid: m.pid, startedAt: m.startedAt, weight: m.weight, labels: copy },
  };
}

/**
 * One key/value as etcd3 returns it. int64 fields arrive as decimal strings,
 * except that a zero default can arrive as the number 0 when the protobuf
 * runtime runs without long.js: always compare through `String()`.
 */
export interface RawKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly create_revision: string | number;
  readonly lease: string | number;
}

/** What {@link parseService} makes of one range read of a service. */
export interface ParsedService {
  readonly shardCount: number | undefined;
  readonly members: Member[];
  readonly claims: { shard: number; owner: string; token: number }[];
  readonly invalid: InvalidRecord[];
}

const SHARD = /^(0|[1-9]\d{0,8})$/;

/**
 * Turn the keys under a service root into members, claims and the shard
 * count. Anything unparsable is reported in `invalid` and left out; so is a
 * claim whose owner is not a live member bound to the same lease, since such a
 * claim cannot have been written by shardwork.
 */
export function parseService(root: string, kvs: readonly RawKeyValue[]): ParsedService {
  let shardCount: number | undefined;
  const members: Member[] = [];
  const memberLeases = new Map<string, string>();
  const rawClaims: { key: string; shard: number; owner: string; token: number; lease: string }[] = [];
  const invalid: InvalidRecord[] = [];
  for (const kv of kvs) {
    const key = kv.key.toString('utf8');
    const rest = key.startsWith(root) ? key.slice(root.length) : key;
    const value = kv.value.toString('utf8');
    if (rest === 'meta') {
      const parsed = parseMeta(value);
      if (parsed.ok) shardCount = parsed.value;
      else invalid.push({ key, reason: parsed.reason });
    } else if (rest.startsWith('members/')) {
      let id: string;
      try {
        id = decodeURIComponent(rest.slice('members/'.length));
      } catch {
        invalid.push({ key, reason: 'member key is not percent-encoded' });
        continue;
      }
      const lease = String(kv.lease);
      if (lease === '0') {
        invalid.push({ key, reason: 'member record is not bound to a lease' });
        continue;
      }
      const parsed = parseMember(id, value);
      if (!parsed.ok) {
        invalid.push({ key, reason: parsed.reason });
        continue;
      }
      members.push({ ...parsed.value, joinSeq: Number(kv.create_revision) });
      memberLeases.set(id, lease);
    } else if (rest.startsWith('claims/')) {
      const shardText = rest.slice('claims/'.length);
      if (!SHARD.test(shardText)) {
        invalid.push({ key, reason: `claim key has no shard number (${JSON.stringify(shardText)})` });
        continue;
      }
      if (value === '') {
        invalid.push({ key, reason: 'claim has an empty owner' });
        continue;
      }
      rawClaims.push({
        key,
        shard: Number(shardText),
        owner: value,
        token: Number(kv.create_revision),
        lease: String(kv.lease),
      });
    } else {
      invalid.push({ key, reason: 'unknown key under the service prefix' });
    }
  }
  const claims: ParsedService['claims'] = [];
  for (const c of rawClaims) {
    const lease = memberLeases.get(c.owner);
    if (lease === undefined)
      invalid.push({ key: c.key, reason: `claim owner ${JSON.stringify(c.owner)} is not a live member` });
    else if (lease !== c.lease) invalid.push({ key: c.key, reason: "claim is not bound to its owner's lease" });
    else claims.push({ shard: c.shard, owner: c.owner, token: c.token });
  }
  return { shardCount, members, claims, invalid };
}
