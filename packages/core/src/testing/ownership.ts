/**
 * Checking the "at most one owner" invariant from records of what handlers saw
 * and did. Records carry times on the machine-wide monotonic clock
 * ({@link monotonicMs}), so records written by different processes on one
 * machine compare directly.
 *
 * @module
 */

import { appendFileSync, readFileSync } from 'node:fs';
import type { Discovery } from '../discovery/contract.js';

/** Milliseconds on CLOCK_MONOTONIC: one scale for every process of the machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * One observation of a handler:
 * - `acquire`: the handler started for `(shard, token)` (record it after a `ctx.owned` check).
 * - `effect`: a side effect, recorded only after `ctx.owned`/`ctx.assertOwned()` passed.
 * - `release`: the handler of `(shard, token)` ended. It only marks the interval
 *   as released: a process frozen by SIGSTOP writes it long after its ownership
 *   ended, so it is no evidence of owning.
 */
export interface OwnershipRecord {
  readonly kind: 'acquire' | 'effect' | 'release';
  readonly shard: number;
  readonly token: number;
  readonly owner: string;
  /** {@link monotonicMs} at the observation. */
  readonly t: number;
}

/** The span of one `(shard, token)` ownership as evidenced by records. */
export interface OwnershipInterval {
  readonly shard: number;
  readonly token: number;
  readonly owner: string;
  readonly start: number;
  readonly end: number;
  /** Whether a `release` record closed it (a crashed owner never writes one). */
  readonly released: boolean;
}

/** What {@link checkOwnership} found. */
export interface OwnershipReport {
  readonly intervals: readonly OwnershipInterval[];
  /** Human-readable descriptions of every violation; empty when the invariant holds. */
  readonly violations: readonly string[];
}

/**
 * Build intervals (from the first to the last `acquire`/`effect` of each
 * `(shard, token)`) and check, per shard: one owner per token,
 * intervals that never overlap, and tokens that strictly increase from one owner
 * to the next (ordered by start time).
 */
export function checkOwnership(records: readonly OwnershipRecord[]): OwnershipReport {
  const byKey = new Map<
    string,
    { shard: number; token: number; owners: Set<string>; start: number; end: number; released: boolean }
  >();
  for (const r of records) {
    const key = `${r.shard}/${r.token}`;
    let entry = byKey.get(key);
    if (entry === undefined) {
      entry = {
        shard: r.shard,
        token: r.token,
        owners: new Set(),
        start: Number.POSITIVE_INFINITY,
        end: Number.NEGATIVE_INFINITY,
        released: false,
      };
      byKey.set(key, entry);
    }
    entry.owners.add(r.owner);
    if (r.kind === 'release') {
      entry.released = true;
      continue;
    }
    entry.start = Math.min(entry.start, r.t);
    entry.end = Math.max(entry.end, r.t);
  }
  const violations: string[] = [];
  const intervals: OwnershipInterval[] = [];
  for (const e of byKey.values()) {
    if (e.start === Number.POSITIVE_INFINITY) continue; // released without ever acting
    if (e.owners.size > 1) {
      violations.push(`shard ${e.shard} token ${e.token} was used by several owners: ${[...e.owners].join(', ')}`);
    }
    intervals.push({
      shard: e.shard,
      token: e.token,
      owner: [...e.owners][0] ?? '?',
      start: e.start,
      end: e.end,
      released: e.released,
    });
  }
  intervals.sort((a, b) => a.shard - b.shard || a.start - b.start);
  for (let i = 1; i < intervals.length; i++) {
    const prev = intervals[i - 1] as OwnershipInterval;
    const next = intervals[i] as OwnershipInterval;
    if (prev.shard !== next.shard) continue;
    if (next.start <= prev.end) {
      violations.push(
        `shard ${next.shard}: owners overlap — ${fmt(prev)} and ${fmt(next)} (overlap ${(prev.end - next.start).toFixed(3)} ms)`,
      );
    }
    if (next.token <= prev.token) {
      violations.push(`shard ${next.shard}: token did not increase — ${fmt(prev)} then ${fmt(next)}`);
    }
  }
  return { intervals, violations };
}

function fmt(i: OwnershipInterval): string {
  return `[token ${i.token} by ${i.owner}: ${i.start.toFixed(3)}…${i.end.toFixed(3)}${i.released ? '' : ' (not released)'}]`;
}

/** Append one record as a JSON line (safe for concurrent appends of small lines). */
export function appendOwnershipRecord(file: string, record: OwnershipRecord): void {
  appendFileSync(file, `${JSON.stringify(record)}\n`);
}

/** Read JSON-line records written by {@link appendOwnershipRecord}; a torn last line is ignored. */
export function readOwnershipRecords(file: string): OwnershipRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const records: OwnershipRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      records.push(JSON.parse(line) as OwnershipRecord);
    } catch {
      // a process killed mid-write leaves a partial line
    }
  }
  return records;
}

/**
 * Poll the backend until every shard in `[0, shardCount)` is claimed by a live
 * member (optionally: none of them by `excluding`), and return the
 * {@link monotonicMs} at which that was first seen. Rejects after `timeoutMs`.
 */
export async function waitForFullCoverage(
  discovery: Discovery,
  service: string,
  shardCount: number,
  options: { timeoutMs: number; excluding?: readonly string[]; pollMs?: number; minMembers?: number },
): Promise<number> {
  const deadline = monotonicMs() + options.timeoutMs;
  const excluded = new Set(options.excluding ?? []);
  let last = '';
  for (;;) {
    try {
      const snap = await discovery.snapshot(service);
      const live = new Set(snap.members.map((m) => m.id));
      const covered = new Set(
        snap.claims.filter((c) => live.has(c.owner) && !excluded.has(c.owner)).map((c) => c.shard),
      );
      const enoughMembers = snap.members.filter((m) => !excluded.has(m.id)).length >= (options.minMembers ?? 1);
      if (covered.size === shardCount && enoughMembers) return monotonicMs();
      last = `${covered.size}/${shardCount} shards covered by ${live.size} members`;
    } catch (error) {
      last = String(error);
    }
    if (monotonicMs() > deadline) {
      throw new Error(`shards not all owned within ${options.timeoutMs} ms (last: ${last})`);
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 20));
  }
}
