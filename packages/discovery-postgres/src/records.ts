/**
 * Rows and notifications of the PostgreSQL backend, and what they mean:
 * member rows (core's member record codec, so every backend agrees on a
 * valid member), claim rows, and the payload of a NOTIFY with the changes of
 * one transaction. Nothing here throws on bad data: a row that does not
 * parse is an `InvalidRecord`, a notification that does not parse is a hint
 * to re-list.
 *
 * @module
 */

import type { Claim, DiscoveryChange, DiscoveryEvent, InvalidRecord, Member } from '@shardwork/core';
import { parseMemberRecord } from '@shardwork/core/backend';
import type { ServiceRecords } from './keys.js';

/** Outcome of reading one record. */
export type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** A member row as selected. */
export interface MemberRow {
  readonly id: string;
  readonly record: string;
  /** bigint, as node-postgres returns it: decimal text. */
  readonly join_seq: string;
  readonly draining: boolean;
  /** ms until the lease runs out by the server's clock (≤ 0: expired, not reaped yet). */
  readonly expires_in_ms: number | string;
  readonly ttl_ms: number;
}

/** A claim row as selected. */
export interface ClaimRow {
  readonly shard: number;
  readonly owner: string;
  /** bigint as decimal text. */
  readonly token: string;
}

/** A bigint column as an exact number, or `undefined` when it is not a positive safe integer. */
export function exactPositive(text: string | number): number | undefined {
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** The member of a row: a valid record, and a usable join order. */
export function memberFromRow(row: MemberRow): Read<Member> {
  const joinSeq = exactPositive(row.join_seq);
  if (joinSeq === undefined)
    return { ok: false, reason: `member join_seq ${row.join_seq} is not a positive safe integer` };
  const parsed = parseMemberRecord(row.id, row.record);
  if (!parsed.ok) return parsed;
  const draining = row.draining || parsed.value.draining;
  // Only when set, so that a member that never drained equals its MemberInfo plus joinSeq.
  return { ok: true, value: { ...parsed.value.info, joinSeq, ...(draining ? { draining: true } : {}) } };
}

/**
 * Why a claim row is not a live claim, or `undefined` when it is one:
 * `live` holds the ids of the live members with a valid record.
 */
export function claimProblem(row: ClaimRow, live: ReadonlySet<string>): string | undefined {
  if (row.owner === '') return 'claim has an empty owner';
  if (exactPositive(row.token) === undefined) return `claim token ${row.token} is not a positive safe integer`;
  if (!live.has(row.owner)) return `claim owner ${JSON.stringify(row.owner)} is not a live member`;
  return undefined;
}

/** Members and claims of rows: the valid ones, and the others as `InvalidRecord`s. */
export function parseRows(
  records: ServiceRecords,
  memberRows: readonly MemberRow[],
  claimRows: readonly ClaimRow[],
): { members: Member[]; claims: Claim[]; invalid: InvalidRecord[] } {
  const members: Member[] = [];
  const invalid: InvalidRecord[] = [];
  for (const row of memberRows) {
    const member = memberFromRow(row);
    if (!member.ok) {
      invalid.push({ key: records.member(row.id), reason: member.reason });
      continue;
    }
    const left = Number(row.expires_in_ms);
    members.push({ ...member.value, expiresInMs: Math.max(0, Math.round(left)) });
  }
  const live = new Set(members.map((m) => m.id));
  const claims: Claim[] = [];
  for (const row of claimRows) {
    const problem = claimProblem(row, live);
    if (problem === undefined) claims.push({ shard: row.shard, owner: row.owner, token: Number(row.token) });
    else invalid.push({ key: records.claim(row.shard), reason: problem });
  }
  return { members, claims, invalid };
}

/**
 * One change as a notification carries it: compact arrays, bigints as text.
 * `m+` carries the member's TTL, so that watchers can time its expiry check.
 */
export type WireChange =
  | readonly ['m+', string, string, string, boolean, number]
  | readonly ['m-', string]
  | readonly ['c+', number, string, string]
  | readonly ['c-', number, string];

/**
 * Most bytes of changes one notification carries; more, and it carries none
 * (a hint: watchers re-list). PostgreSQL's payload limit is 8000 bytes.
 */
export const MAX_CHANGES_BYTES = 7000;

/** The `,"c":[…]` part of a payload, or `''` for a hint (no changes known, or too many to send). */
export function encodeChanges(changes: readonly WireChange[] | undefined): string {
  if (changes === undefined) return '';
  const text = JSON.stringify(changes);
  return Buffer.byteLength(text) > MAX_CHANGES_BYTES ? '' : `,"c":${text}`;
}

function parseChange(raw: unknown): DiscoveryChange | undefined {
  if (!Array.isArray(raw)) return undefined;
  const [kind, a, b, c, d] = raw as unknown[];
  if (kind === 'm+' && typeof a === 'string' && typeof b === 'string' && typeof c === 'string') {
    const member = memberFromRow({ id: a, record: b, join_seq: c, draining: d === true, expires_in_ms: 0, ttl_ms: 0 });
    return member.ok ? { type: 'member:put', member: member.value } : undefined;
  }
  if (kind === 'm-' && typeof a === 'string') return { type: 'member:removed', id: a };
  if (typeof a !== 'number' || !Number.isSafeInteger(a) || a < 0) return undefined;
  if (kind === 'c+' && typeof b === 'string' && typeof c === 'string') {
    const token = exactPositive(c);
    return token === undefined ? undefined : { type: 'claim:put', claim: { shard: a, owner: b, token } };
  }
  if (kind === 'c-' && typeof b === 'string') {
    const token = exactPositive(b);
    return token === undefined ? undefined : { type: 'claim:removed', shard: a, token };
  }
  return undefined;
}

/** What a notification says: the event, and the TTLs of the members it puts (for expiry timers). */
export interface ParsedNotification {
  readonly event: DiscoveryEvent;
  readonly ttls: readonly number[];
}

/**
 * Parse a payload `{"p":"<previous>","r":"<revision>","c":[…]}`. Without
 * `c`, or with a change that does not parse, the event carries no changes:
 * a hint to re-list. A payload that is not ours at all is a bare hint.
 */
export function parseNotification(payload: string): ParsedNotification {
  let raw: unknown;
  try {
    raw = JSON.parse(payload);
  } catch {
    return { event: { type: 'change' }, ttls: [] };
  }
  const { p, r, c } = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const decimal = (x: unknown): x is string => typeof x === 'string' && /^\d{1,19}$/.test(x);
  if (!decimal(p) || !decimal(r)) return { event: { type: 'change' }, ttls: [] };
  const base = { type: 'change' as const, revision: r, previous: p };
  if (!Array.isArray(c)) return { event: base, ttls: [] };
  const changes: DiscoveryChange[] = [];
  const ttls: number[] = [];
  for (const item of c) {
    const change = parseChange(item);
    if (change === undefined) return { event: base, ttls: [] };
    changes.push(change);
    const ttl = (item as unknown[])[5];
    if (change.type === 'member:put' && typeof ttl === 'number' && ttl > 0) ttls.push(ttl);
  }
  return { event: { ...base, changes }, ttls };
}
