/**
 * Parsing of script replies into contract types. A record that does not parse
 * is skipped and reported in `Snapshot.invalid`; parsing never throws for bad
 * data in Redis.
 *
 * @module
 */

import type { Claim, InvalidRecord, Member, Snapshot } from '@shardwork/core';
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

/** A positive safe integer written as digits, or undefined. */
export function parsePositiveInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Parse the stored member JSON; a string is the reason it is invalid. */
export function parseMember(id: string, json: string, expiresInMs: number): Member | string {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    return `info is not JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!isRecord(raw)) return 'info is not a JSON object';
  if (raw.id !== id) return `info.id ${JSON.stringify(raw.id)} does not match the member id`;
  if (typeof raw.host !== 'string') return 'info.host is not a string';
  if (typeof raw.pid !== 'number' || !Number.isFinite(raw.pid)) return 'info.pid is not a number';
  if (typeof raw.startedAt !== 'number' || !Number.isFinite(raw.startedAt)) return 'info.startedAt is not a number';
  if (typeof raw.weight !== 'number' || !(raw.weight > 0) || !Number.isFinite(raw.weight)) {
    return 'info.weight is not a positive number';
  }
  const joinSeq = parsePositiveInteger(raw.joinSeq);
  if (joinSeq === undefined) return 'info.joinSeq is not a positive integer';
  if (!isRecord(raw.labels)) return 'info.labels is not an object';
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw.labels)) {
    if (typeof value !== 'string') return `info.labels.${key} is not a string`;
    labels[key] = value;
  }
  return {
    id,
    host: raw.host,
    pid: raw.pid,
    startedAt: raw.startedAt,
    weight: raw.weight,
    labels,
    joinSeq,
    expiresInMs,
  };
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

/** Turn the reply of `snapshot.lua` into a {@link Snapshot}. */
export function parseSnapshot(keys: RedisServiceKeys, reply: unknown): Snapshot {
  if (!Array.isArray(reply) || reply.length < 4) throw new UnexpectedReplyError('snapshot', reply);
  const [revision, rawCount, rawMembers, rawClaims, rawAge] = reply as unknown[];
  if (typeof revision !== 'string' || !Array.isArray(rawMembers) || !Array.isArray(rawClaims)) {
    throw new UnexpectedReplyError('snapshot', reply);
  }
  const invalid: InvalidRecord[] = [];
  const field = (key: string, name: string): string => `${key}[${name}]`;

  let shardCount: number | undefined;
  const count = asStringOrNull(rawCount);
  if (typeof count === 'string') {
    shardCount = parsePositiveInteger(count);
    if (shardCount === undefined) {
      invalid.push({ key: field(keys.meta, 'shardCount'), reason: 'shardCount is not a positive integer' });
    }
  }

  const members: Member[] = [];
  for (let i = 0; i + 2 < rawMembers.length; i += 3) {
    const id = rawMembers[i];
    const expires = Number(rawMembers[i + 1]);
    const info = asStringOrNull(rawMembers[i + 2]);
    if (typeof id !== 'string') continue;
    if (typeof info !== 'string') {
      invalid.push({ key: field(keys.members, id), reason: 'member has a lease but no info record' });
      continue;
    }
    const parsed = parseMember(id, info, Number.isFinite(expires) ? expires : 0);
    if (typeof parsed === 'string') invalid.push({ key: field(keys.info, id), reason: parsed });
    else members.push(parsed);
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
  return { revision, shardCount, members, claims, invalid, groupAgeMs };
}

/** Turn the reply of `reap.lua` into the revision and the time until the earliest expiry. */
export function parseReap(reply: unknown): { revision: string; nextExpiryMs: number | undefined } {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new UnexpectedReplyError('reap', reply);
  const next = reply[1] === null || reply[1] === undefined ? undefined : Number(reply[1]);
  return { revision: reply[0], nextExpiryMs: next !== undefined && Number.isFinite(next) ? next : undefined };
}
