/**
 * Parsing of script replies and pub/sub messages into contract types. A record
 * that does not parse is skipped and reported in `Snapshot.invalid`; a message
 * that does not parse becomes a `change` event without `changes` (a hint to
 * re-list). Parsing never throws for bad data in Redis; only a reply that a
 * script cannot produce raises {@link UnexpectedReplyError}.
 *
 * Member records are checked by the codec of `@shardwork/core`
 * (`parseMemberRecord`); Redis adds `ttlMs` and `joinSeq` in front of them.
 *
 * @module
 */

import type {
  Claim,
  ClaimBatch,
  ClaimRef,
  ClaimResult,
  DiscoveryChange,
  DiscoveryEvent,
  InvalidRecord,
  Member,
  Snapshot,
  StoredGroup,
} from '@shardwork/core';
import { parseMemberRecord } from '@shardwork/core/backend';
import type { RedisServiceKeys } from './keys.js';

/** A reply of a script that does not have the shape the script promises. */
export class UnexpectedReplyError extends Error {
  constructor(script: string, reply: unknown) {
    super(`Unexpected reply from the ${script} script: ${JSON.stringify(reply)?.slice(0, 200)}`);
    this.name = 'UnexpectedReplyError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A positive safe integer written as digits, or undefined (the rule of `is_positive_integer` in common.lua). */
export function parsePositiveInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A decimal revision (digits), or undefined. */
function parseRevision(value: unknown): string | undefined {
  return typeof value === 'string' && /^\d{1,20}$/.test(value) ? value : undefined;
}

/** A non-negative number of ms as digits, or undefined. */
function parseMs(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return undefined;
  return Number(value);
}

/** `"value"` for messages, shortened. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/**
 * A stored member record (what register.lua writes: `ttlMs`, `joinSeq`, then
 * the record of `encodeMemberRecord`) as a {@link Member}; a string is the
 * reason it is invalid.
 */
export function parseStoredMember(id: string, text: string): Member | string {
  const parsed = parseMemberRecord(id, text);
  if (!parsed.ok) return parsed.reason;
  const joinSeq = parsePositiveInteger(parsed.value.fields.joinSeq);
  if (joinSeq === undefined) return 'member record field joinSeq is not a positive integer';
  const { info, draining } = parsed.value;
  return draining ? { ...info, joinSeq, draining } : { ...info, joinSeq };
}

/** Parse a stored claim `"<owner>|<token>"`; a string is the reason it is invalid. */
export function parseClaim(field: string, value: string): Claim | string {
  if (!/^\d{1,9}$/.test(field)) return 'shard is not a non-negative integer';
  const match = /^(.+)\|(\d{1,16})$/s.exec(value);
  const token = parsePositiveInteger(match?.[2]);
  if (match?.[1] === undefined || token === undefined) return 'value is not "<owner>|<token>"';
  return { shard: Number(field), owner: match[1], token };
}

function asStringOrNull(value: unknown): string | null | undefined {
  if (value === null || typeof value === 'string') return value;
  return undefined;
}

/** A flat `{key, reason, ...}` reply as records. */
export function parseRepaired(reply: unknown): InvalidRecord[] {
  if (!Array.isArray(reply)) return [];
  const repaired: InvalidRecord[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const key = reply[i];
    const reason = reply[i + 1];
    if (typeof key === 'string' && typeof reason === 'string') repaired.push({ key, reason });
  }
  return repaired;
}

/** A snapshot plus what the watch machinery wants from it. */
export interface ParsedSnapshot {
  readonly snapshot: Snapshot;
  /** ms until the earliest lease (of any member, readable or not) expires; undefined without members. */
  readonly nextExpiryMs: number | undefined;
}

/**
 * Turn the reply of `snapshot.lua` into a {@link Snapshot}. Members carry no
 * `expiresInMs`: a watching connection reaps and announces expiries itself
 * (see `watch.ts`), so the worker needs no timer of its own for them.
 */
export function parseSnapshot(keys: RedisServiceKeys, reply: unknown): ParsedSnapshot {
  if (!Array.isArray(reply) || reply.length < 4) throw new UnexpectedReplyError('snapshot', reply);
  const [revision, rawCount, rawMembers, rawClaims, rawAge, rawRepaired] = reply as unknown[];
  if (parseRevision(revision) === undefined || !Array.isArray(rawMembers) || !Array.isArray(rawClaims)) {
    throw new UnexpectedReplyError('snapshot', reply);
  }
  const invalid: InvalidRecord[] = parseRepaired(rawRepaired);
  const field = (key: string, name: string): string => `${key}[${name}]`;

  let shardCount: number | undefined;
  const count = asStringOrNull(rawCount);
  if (typeof count === 'string') {
    shardCount = parsePositiveInteger(count);
    if (shardCount === undefined) {
      invalid.push({
        key: field(keys.meta, 'shardCount'),
        reason: `shardCount ${shown(count)} is not a positive integer`,
      });
    }
  }

  const members: Member[] = [];
  let nextExpiryMs: number | undefined;
  for (let i = 0; i + 2 < rawMembers.length; i += 3) {
    const id = rawMembers[i];
    const expires = parseMs(rawMembers[i + 1]);
    const record = asStringOrNull(rawMembers[i + 2]);
    if (typeof id !== 'string') continue;
    if (expires !== undefined) nextExpiryMs = Math.min(nextExpiryMs ?? expires, expires);
    if (typeof record !== 'string') {
      invalid.push({ key: field(keys.members, id), reason: 'member has a lease but no info record' });
      continue;
    }
    const parsed = parseStoredMember(id, record);
    if (typeof parsed === 'string') invalid.push({ key: field(keys.info, id), reason: parsed });
    else members.push(expires === undefined ? parsed : { ...parsed, expiresInMs: expires });
  }

  const live = new Set(members.map((m) => m.id));
  const claims: Claim[] = [];
  for (let i = 0; i + 1 < rawClaims.length; i += 2) {
    const shard = rawClaims[i];
    const value = rawClaims[i + 1];
    if (typeof shard !== 'string' || typeof value !== 'string') continue;
    const parsed = parseClaim(shard, value);
    if (typeof parsed === 'string') invalid.push({ key: field(keys.claims, shard), reason: parsed });
    else if (!live.has(parsed.owner)) {
      // The owner holds a lease but its info is unreadable: without it the
      // claim cannot be placed in the view, so it is reported, not listed.
      invalid.push({ key: field(keys.claims, shard), reason: `owner ${parsed.owner} is not a listed member` });
    } else claims.push(parsed);
  }
  const age = asStringOrNull(rawAge);
  const groupAgeMs = typeof age === 'string' && /^\d+$/.test(age) ? Number(age) : undefined;
  return {
    snapshot: { revision: revision as string, shardCount, members, claims, invalid, groupAgeMs },
    nextExpiryMs,
  };
}

/** Turn the reply of `ensure-group.lua` into a {@link StoredGroup}. */
export function parseStoredGroup(keys: RedisServiceKeys, reply: unknown, wanted: Record<string, number>): StoredGroup {
  if (!Array.isArray(reply) || reply.length < 3) throw new UnexpectedReplyError('ensure-group', reply);
  const [rawCount, rawTtl, rawRepaired] = reply as unknown[];
  const invalid: InvalidRecord[] = [];
  const read = (name: string, value: unknown): number | undefined => {
    if (value === null || value === undefined) return undefined;
    const parsed = parsePositiveInteger(value);
    if (parsed === undefined) {
      invalid.push({ key: `${keys.meta}[${name}]`, reason: `${name} ${shown(value)} is not a positive integer` });
    }
    return parsed;
  };
  const repaired: InvalidRecord[] = [];
  const flat = Array.isArray(rawRepaired) ? (rawRepaired as unknown[]) : [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]);
    repaired.push({
      key: `${keys.meta}[${name}]`,
      reason: `${name} ${shown(flat[i + 1])} was not a positive integer; replaced with ${wanted[name]}`,
    });
  }
  return { shardCount: read('shardCount', rawCount), leaseTtlMs: read('leaseTtlMs', rawTtl), invalid, repaired };
}

function parseClaimResult(entry: unknown): ClaimResult | undefined {
  if (!Array.isArray(entry)) return undefined;
  const [status, a, b] = entry as unknown[];
  if (status === 1) {
    const token = parsePositiveInteger(a);
    return token === undefined ? undefined : { ok: true, token };
  }
  if (status === 0 && typeof a === 'string') {
    const token = parsePositiveInteger(b);
    return token === undefined ? undefined : { ok: false, owner: a, token };
  }
  return undefined;
}

/** Turn the reply of `claim.lua` into a {@link ClaimBatch}; `undefined` when the member is not live. */
export function parseClaimBatch(reply: unknown, count: number): ClaimBatch | undefined {
  if (Array.isArray(reply) && reply[0] === -1) return undefined;
  if (!Array.isArray(reply) || reply[0] !== 1 || !Array.isArray(reply[1]) || reply[1].length !== count) {
    throw new UnexpectedReplyError('claim', reply);
  }
  const results: ClaimResult[] = [];
  for (const entry of reply[1] as unknown[]) {
    const result = parseClaimResult(entry);
    if (result === undefined) throw new UnexpectedReplyError('claim', reply);
    results.push(result);
  }
  return { results, repaired: parseRepaired(reply[2]) };
}

/** Turn the reply of `release.lua` into one boolean per claim. */
export function parseReleaseBatch(reply: unknown, count: number): boolean[] {
  if (!Array.isArray(reply) || reply.length !== count) throw new UnexpectedReplyError('release', reply);
  return reply.map((r) => r === 1);
}

/** What the reap and renew scripts tell a watcher: the revision and the next lease expiry. */
export interface RevisionProbe {
  /** The revision after the call (digits). */
  readonly revision: string;
  /** ms until the earliest lease expires (renew: of another member), undefined when none. */
  readonly nextExpiryMs: number | undefined;
}

/** Turn the reply of `reap.lua` into a {@link RevisionProbe}. */
export function parseReap(reply: unknown): RevisionProbe {
  const revision = Array.isArray(reply) ? parseRevision(reply[0]) : undefined;
  if (revision === undefined) throw new UnexpectedReplyError('reap', reply);
  return { revision, nextExpiryMs: parseMs((reply as unknown[])[1]) };
}

/** What `renew.lua` answers. */
export interface ParsedRenew {
  readonly renewed: boolean;
  readonly probe: RevisionProbe;
  /** Held claims that are not the member's any more. */
  readonly lost: readonly ClaimRef[];
}

/** Turn the reply of `renew.lua` into whether it renewed, a {@link RevisionProbe} and the claims lost. */
export function parseRenew(reply: unknown): ParsedRenew {
  const revision = Array.isArray(reply) ? parseRevision(reply[1]) : undefined;
  if (!Array.isArray(reply) || revision === undefined) throw new UnexpectedReplyError('renew', reply);
  const flat: unknown[] = Array.isArray(reply[3]) ? reply[3] : [];
  const lost: ClaimRef[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const shard = parseMs(flat[i]);
    const token = parsePositiveInteger(flat[i + 1]);
    if (shard === undefined || token === undefined) throw new UnexpectedReplyError('renew', reply);
    lost.push({ shard, token });
  }
  return { renewed: reply[0] === 1, probe: { revision, nextExpiryMs: parseMs(reply[2]) }, lost };
}

/** Turn the reply of `forget.lua` into the live members that refused it, or whether keys were removed. */
export function parseForget(
  reply: unknown,
): { readonly forgotten: boolean; readonly live?: undefined } | { readonly live: readonly string[] } {
  if (Array.isArray(reply) && reply[0] === 1 && typeof reply[1] === 'number') return { forgotten: reply[1] > 0 };
  if (Array.isArray(reply) && reply[0] === 0 && reply.slice(1).every((id) => typeof id === 'string')) {
    return { live: reply.slice(1) as string[] };
  }
  throw new UnexpectedReplyError('forget', reply);
}

function parseChange(raw: unknown): DiscoveryChange | undefined {
  if (!isRecord(raw)) return undefined;
  switch (raw.type) {
    case 'member:put': {
      if (typeof raw.id !== 'string' || typeof raw.record !== 'string') return undefined;
      const member = parseStoredMember(raw.id, raw.record);
      return typeof member === 'string' ? undefined : { type: 'member:put', member };
    }
    case 'member:removed':
      return typeof raw.id === 'string' ? { type: 'member:removed', id: raw.id } : undefined;
    case 'claim:put': {
      if (typeof raw.shard !== 'string' || typeof raw.owner !== 'string') return undefined;
      const claim = parseClaim(raw.shard, `${raw.owner}|${String(raw.token)}`);
      return typeof claim === 'string' ? undefined : { type: 'claim:put', claim };
    }
    case 'claim:removed': {
      const token = parsePositiveInteger(raw.token);
      if (typeof raw.shard !== 'string' || !/^\d{1,9}$/.test(raw.shard) || token === undefined) return undefined;
      return { type: 'claim:removed', shard: Number(raw.shard), token };
    }
    default:
      return undefined;
  }
}

/**
 * Turn a message of the events channel (see common.lua) into a
 * {@link DiscoveryEvent}. Whatever does not parse is dropped from the event,
 * which then has no `changes` (a hint to re-list), and also no `revision`
 * when that is what is missing.
 */
export function parseMessage(message: string): DiscoveryEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return { type: 'change' };
  }
  if (!isRecord(raw)) return { type: 'change' };
  const revision = parseRevision(raw.revision);
  const previous = parseRevision(raw.previous);
  if (revision === undefined || previous === undefined || BigInt(previous) >= BigInt(revision)) {
    return { type: 'change' };
  }
  const hint: DiscoveryEvent = { type: 'change', revision, previous };
  if (!Array.isArray(raw.changes)) return hint;
  const changes: DiscoveryChange[] = [];
  for (const entry of raw.changes as unknown[]) {
    const parsed = parseChange(entry);
    if (parsed === undefined) return hint;
    changes.push(parsed);
  }
  return { ...hint, changes };
}
