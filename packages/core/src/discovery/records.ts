/**
 * The member record every backend stores: one JSON object per member, written
 * and checked here so that the backends cannot drift apart on what a valid
 * member is. A backend may add fields of its own to the object (Redis puts
 * `ttlMs` and `joinSeq` first); {@link parseMemberRecord} hands them back in
 * `fields`.
 *
 * @module
 */

import type { MemberInfo } from './contract.js';

/** A parsed member record: the contract fields, the draining flag, and every field as stored. */
export interface ParsedMemberRecord {
  readonly info: MemberInfo;
  readonly draining: boolean;
  /** The whole JSON object, for fields a backend adds itself. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** The outcome of {@link parseMemberRecord}: the record, or why it is invalid. */
export type MemberRecordResult =
  | { readonly ok: true; readonly value: ParsedMemberRecord }
  | { readonly ok: false; readonly reason: string };

/**
 * The JSON of a member record: the fields of {@link MemberInfo} in a fixed
 * order (unknown properties of `member` are left out), then `draining` when set.
 */
export function encodeMemberRecord(member: MemberInfo, draining = false): string {
  const record: Record<string, unknown> = {
    id: member.id,
    host: member.host,
    pid: member.pid,
    startedAt: member.startedAt,
    weight: member.weight,
    labels: { ...member.labels },
  };
  if (member.shardCount !== undefined) record.shardCount = member.shardCount;
  if (member.leaseTtlMs !== undefined) record.leaseTtlMs = member.leaseTtlMs;
  if (draining) record.draining = true;
  return JSON.stringify(record);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalPositiveInteger(value: unknown): boolean {
  return value === undefined || (typeof value === 'number' && Number.isSafeInteger(value) && value > 0);
}

/**
 * Parse and check a member record stored for member `id`; never throws.
 * The reason of an invalid record names the field that is wrong.
 */
export function parseMemberRecord(id: string, text: string): MemberRecordResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      reason: `member record is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  if (!isObject(raw)) return { ok: false, reason: 'member record is not a JSON object' };
  const bad = (field: string, what: string): MemberRecordResult => ({
    ok: false,
    reason: `member record field ${field} is not ${what}`,
  });
  if (raw.id !== id) return { ok: false, reason: `member record id ${JSON.stringify(raw.id)} does not match its key` };
  if (typeof raw.host !== 'string') return bad('host', 'a string');
  if (typeof raw.pid !== 'number' || !Number.isSafeInteger(raw.pid)) return bad('pid', 'an integer');
  if (typeof raw.startedAt !== 'number' || !Number.isFinite(raw.startedAt)) return bad('startedAt', 'a number');
  if (typeof raw.weight !== 'number' || !Number.isFinite(raw.weight) || !(raw.weight > 0)) {
    return bad('weight', 'a positive number');
  }
  if (!isObject(raw.labels)) return bad('labels', 'an object');
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw.labels)) {
    if (typeof value !== 'string') return bad(`labels.${key}`, 'a string');
    labels[key] = value;
  }
  if (!optionalPositiveInteger(raw.shardCount)) return bad('shardCount', 'a positive integer');
  if (!optionalPositiveInteger(raw.leaseTtlMs)) return bad('leaseTtlMs', 'a positive integer');
  if (raw.draining !== undefined && typeof raw.draining !== 'boolean') return bad('draining', 'a boolean');
  const info: MemberInfo = {
    id,
    host: raw.host,
    pid: raw.pid,
    startedAt: raw.startedAt,
    weight: raw.weight,
    labels,
    ...(raw.shardCount === undefined ? {} : { shardCount: raw.shardCount as number }),
    ...(raw.leaseTtlMs === undefined ? {} : { leaseTtlMs: raw.leaseTtlMs as number }),
  };
  return { ok: true, value: { info, draining: raw.draining === true, fields: raw } };
}
