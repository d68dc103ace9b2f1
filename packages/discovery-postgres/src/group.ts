/**
 * The group record of a service: `services.settings`, JSON text
 * `{"shardCount":8,"leaseTtlMs":10000}` holding what every replica must agree
 * on. {@link planSettings} decides what `ensureGroup` stores: the first
 * caller's settings when there are none; a stored record is checked field by
 * field, a missing `leaseTtlMs` is added, and an unusable field is replaced
 * only with `replaceInvalid` (else reported and kept). The caller holds the
 * service's row lock, so of two racing repairs only the first reports one.
 *
 * @module
 */

import { type GroupSettings, InvalidOptionsError, type InvalidRecord, type StoredGroup } from '@shardwork/core';

/** The names of the group settings in the record. */
const FIELDS = ['shardCount', 'leaseTtlMs'] as const satisfies readonly (keyof GroupSettings)[];

/** The settings to ensure, or the error for the first unusable one. */
export function checkGroup(group: GroupSettings): GroupSettings {
  const shardCount = group?.shardCount;
  if (typeof shardCount !== 'number' || !Number.isSafeInteger(shardCount) || shardCount < 1) {
    throw new InvalidOptionsError('shards', shardCount, 'a positive integer');
  }
  const leaseTtlMs = group.leaseTtlMs;
  if (typeof leaseTtlMs !== 'number' || !Number.isSafeInteger(leaseTtlMs) || leaseTtlMs < 1) {
    throw new InvalidOptionsError('leaseTtlMs', leaseTtlMs, 'a positive integer number of ms');
  }
  return { shardCount, leaseTtlMs };
}

/** The JSON of a group record: `extra` (fields of other versions are kept), then the settings. */
export function encodeSettings(group: GroupSettings, extra: Readonly<Record<string, unknown>> = {}): string {
  return JSON.stringify({ ...extra, shardCount: group.shardCount, leaseTtlMs: group.leaseTtlMs });
}

/** One field as read: its value, or why it is unusable (`missing` for an absent one). */
type Field = { readonly value: number } | { readonly problem: string; readonly missing?: true };

function readFields(text: string): { fields: Record<string, unknown> | undefined; read: Record<string, Field> } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const read: Record<string, Field> = {};
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    for (const name of FIELDS) read[name] = { problem: `group record is not a JSON object, so ${name} cannot be read` };
    return { fields: undefined, read };
  }
  const fields = json as Record<string, unknown>;
  for (const name of FIELDS) {
    const value = fields[name];
    if (value === undefined) read[name] = { problem: `group record field ${name} is missing`, missing: true };
    else if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      read[name] = { problem: `group record field ${name} is not a positive integer (${JSON.stringify(value)})` };
    } else read[name] = { value };
  }
  return { fields, read };
}

/** The shard count of a stored record and its unusable fields, for a snapshot. */
export function readSettings(key: string, text: string): { shardCount: number | undefined; invalid: InvalidRecord[] } {
  const { read } = readFields(text);
  const problems: string[] = [];
  for (const name of FIELDS) {
    const field = read[name];
    // A missing leaseTtlMs is a record written before the TTL was stored: ensureGroup completes it.
    if (field !== undefined && 'problem' in field && !(name === 'leaseTtlMs' && field.missing))
      problems.push(field.problem);
  }
  const count = read.shardCount;
  return {
    shardCount: count !== undefined && 'value' in count ? count.value : undefined,
    // One entry per record, as for every other record.
    invalid: problems.length > 0 ? [{ key, reason: problems.join('; ') }] : [],
  };
}

/** What `ensureGroup` stores: the group as the caller sees it, and the text to write (`undefined`: none). */
export interface SettingsPlan {
  readonly stored: StoredGroup;
  readonly write: string | undefined;
}

/** See the module documentation. `text`: the stored record, `null` when there is none. */
export function planSettings(
  key: string,
  text: string | null,
  group: GroupSettings,
  replaceInvalid: boolean,
): SettingsPlan {
  if (text === null) return { stored: { ...group, invalid: [], repaired: [] }, write: encodeSettings(group) };
  const { fields, read } = readFields(text);
  const values: Partial<Record<keyof GroupSettings, number>> = {};
  const updates: Record<string, number> = {};
  const invalid: InvalidRecord[] = [];
  const repaired: InvalidRecord[] = [];
  for (const name of FIELDS) {
    const field = read[name] as Field;
    const completes = 'missing' in field && name === 'leaseTtlMs' && fields !== undefined;
    if ('value' in field) values[name] = field.value;
    else if (completes || replaceInvalid) {
      values[name] = group[name];
      updates[name] = group[name];
      if (!completes) repaired.push({ key, reason: field.problem });
    } else invalid.push({ key, reason: field.problem });
  }
  const stored = { shardCount: values.shardCount, leaseTtlMs: values.leaseTtlMs, invalid, repaired };
  if (Object.keys(updates).length === 0) return { stored, write: undefined };
  return { stored, write: JSON.stringify({ ...(fields ?? {}), ...updates }) };
}
