/**
 * The verdict of a chaos run: ownership (no overlap, increasing tokens, no
 * token for two shards) from the recorded side effects and handler records,
 * and liveness from two independent sources — the
 * effect records (is every shard actually being worked?) and the observer's
 * coverage samples (does every shard have a claim by a healthy member?).
 *
 * Liveness rule: a shard may be unowned only inside the grace window of some
 * event, `[issuedAt, doneAt + bound]`, where the bound depends on the kind of
 * event (crash-like: TTL + slack; graceful: a few round trips). Windows of
 * overlapping events merge, so a kill during a cut is judged by the later
 * deadline. The schedule keeps at least two replicas healthy at every instant,
 * so "once the cluster has a live member" always holds.
 *
 * @module
 */

import { checkOwnership, type OwnershipInterval, type OwnershipRecord } from '@shardwork/core/testing';
import { type ChaosEvent, formatEvent } from './schedule.js';

/** What happened to one scheduled event at run time. */
export interface EventOutcome {
  readonly event: ChaosEvent;
  /** Clock time the action was issued. */
  issuedAt: number;
  /** Clock time the action completed (`undefined`: never did). */
  doneAt: number | undefined;
  /** The action failed (e.g. a replica did not become ready). */
  error: string | undefined;
  /** First observer poll, begun after `doneAt`, that found every shard claimed by a healthy member. */
  recoveredAt: number | undefined;
  /** Grace after `doneAt` during which shards may be unowned. */
  readonly boundMs: number;
}

/** One observer poll: `covered` shards claimed by healthy members, `undefined` when the backend was unreachable. */
export interface CoverageSample {
  readonly at: number;
  readonly covered: number | undefined;
  readonly detail: string;
}

/** Bounds of one backend. */
export interface ChaosBounds {
  /** Lease TTL of the replicas. */
  readonly ttlMs: number;
  /** Grace after a crash-like event (kill, pause, cut, heal, resume, backend restart). */
  readonly crashMs: number;
  /** Grace after a graceful stop or a start. */
  readonly gracefulMs: number;
  /** A pause between two effects of a shard shorter than this is not an outage (effects are periodic). */
  readonly gapToleranceMs: number;
}

/** Grace bound of an event. */
export function boundFor(event: ChaosEvent, bounds: ChaosBounds): number {
  return event.kind === 'stop' || event.kind === 'start' ? bounds.gracefulMs : bounds.crashMs;
}

/** Everything the checker needs. */
export interface ChaosRunData {
  readonly backend: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly shardCount: number;
  readonly bounds: ChaosBounds;
  /** Clock time the schedule started (all shards owned then). */
  readonly t0: number;
  /** Clock time the analysis stops (after the final recovery, before teardown). */
  readonly runEnd: number;
  readonly records: readonly OwnershipRecord[];
  readonly outcomes: readonly EventOutcome[];
  readonly samples: readonly CoverageSample[];
  /** Failures of the run itself (final coverage not reached, setup errors …). */
  readonly runErrors: readonly string[];
}

/** Recovery times of one kind of event. */
export interface RecoveryStats {
  readonly kind: string;
  readonly count: number;
  /** Events that never saw full coverage again before the next poll window closed. */
  readonly unrecovered: number;
  readonly minMs: number;
  readonly medianMs: number;
  readonly maxMs: number;
}

/** The verdict. */
export interface ChaosVerdict {
  readonly ok: boolean;
  /** Every violation, each a self-contained message with seed, schedule position and intervals. */
  readonly violations: readonly string[];
  /** Ownership intervals built from side effects. */
  readonly intervals: readonly OwnershipInterval[];
  readonly effectCount: number;
  /** Overlaps of handler lifetimes (acquire…release), informational: see {@link analyze}. */
  readonly lifetimeOverlaps: readonly string[];
  readonly recoveries: readonly RecoveryStats[];
}

type Span = readonly [number, number];

function mergeSpans(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  return merged;
}

/** Parts of `[s, e]` not covered by the merged `union` (for `s === e`: the point, if outside). */
function uncovered(s: number, e: number, union: readonly Span[]): Span[] {
  if (s === e) return union.some(([us, ue]) => us <= s && s <= ue) ? [] : [[s, e]];
  const out: Span[] = [];
  let cursor = s;
  for (const [us, ue] of union) {
    if (ue < cursor) continue;
    if (us > e) break;
    if (us > cursor) out.push([cursor, Math.min(us, e)]);
    cursor = Math.max(cursor, ue);
    if (cursor >= e) break;
  }
  if (cursor < e) out.push([cursor, e]);
  return out;
}

/** Recovery label: pauses split by TTL, cuts by mode. */
function recoveryKind(event: ChaosEvent, ttlMs: number): string {
  if (event.kind === 'pause') return event.forMs < ttlMs ? 'pause<ttl' : 'pause>ttl';
  if (event.kind === 'cut') return `cut(${event.mode})`;
  return event.kind;
}

/**
 * How long after an event every shard was owned again. Measured from the issue
 * time, except for `start`, measured from the moment the replica was ready (a
 * start takes no shard away; its boot time is not an outage).
 */
export function recoveryMs(o: EventOutcome): number | undefined {
  if (o.recoveredAt === undefined || o.doneAt === undefined) return undefined;
  return o.recoveredAt - (o.event.kind === 'start' ? o.doneAt : o.issuedAt);
}

/**
 * Check a finished run. Ownership is judged on `effect` records only: they are
 * written right after the synchronous `ctx.owned` check, so they lie inside
 * the true ownership interval. `release` records are not: a replica frozen by
 * SIGSTOP past its lease deadline writes its `release` when it thaws, long
 * after a successor took over, without ever acting as owner. Their overlaps are
 * reported as `lifetimeOverlaps`, for information.
 */
export function analyze(run: ChaosRunData): ChaosVerdict {
  const rel = (t: number): string => `${t < run.t0 ? '-' : '+'}${(Math.abs(t - run.t0) / 1000).toFixed(3)}s`;
  const header = `seed ${run.seed}, backend ${run.backend}, duration ${run.durationMs / 1000} s (replay: pnpm chaos --seed ${run.seed} --duration ${run.durationMs / 1000} --backend ${run.backend})`;
  const windows = mergeSpans(run.outcomes.map((o): Span => [o.issuedAt, (o.doneAt ?? run.runEnd) + o.boundMs]));
  /** Events whose window contains [s, e] or that were issued shortly before it. */
  const around = (s: number, e: number): string => {
    const near = run.outcomes.filter(
      (o) => o.issuedAt <= e && (o.doneAt ?? run.runEnd) + o.boundMs >= s - 3000 && o.issuedAt >= s - 15_000,
    );
    if (near.length === 0) return '      (no event nearby)';
    return near
      .map(
        (o) =>
          `      ${formatEvent(o.event)} — issued ${rel(o.issuedAt)}, done ${o.doneAt === undefined ? 'never' : rel(o.doneAt)}, grace until ${rel((o.doneAt ?? run.runEnd) + o.boundMs)}${o.error === undefined ? '' : `, error: ${o.error}`}`,
      )
      .join('\n');
  };
  const lastEventBefore = (t: number): string => {
    const before = run.outcomes.filter((o) => o.issuedAt <= t).at(-1);
    return before === undefined ? 'before event #0' : `after schedule event #${before.event.index}`;
  };
  const fmtInterval = (i: OwnershipInterval): string =>
    `[token ${i.token} by ${i.owner}: ${rel(i.start)} … ${rel(i.end)} (${i.start.toFixed(3)} … ${i.end.toFixed(3)})]`;
  const violations: string[] = [];

  // ── ownership ──
  const effects = run.records.filter((r) => r.kind === 'effect');
  const report = checkOwnership(effects);
  for (const v of report.violations) {
    if (v.includes('several owners')) violations.push(`${header}\n  ownership: ${v}`);
  }
  const intervals = report.intervals;
  for (let i = 1; i < intervals.length; i++) {
    const prev = intervals[i - 1] as OwnershipInterval;
    const next = intervals[i] as OwnershipInterval;
    if (prev.shard !== next.shard) continue;
    const overlap = next.start <= prev.end;
    const tokenDown = next.token <= prev.token;
    if (!overlap && !tokenDown) continue;
    const what = overlap
      ? `two owners at once (overlap ${(prev.end - next.start).toFixed(3)} ms)`
      : 'token did not increase';
    const sample = effects
      .filter(
        (r) =>
          r.shard === next.shard &&
          (r.token === prev.token || r.token === next.token) &&
          r.t >= next.start - 50 &&
          r.t <= prev.end + 50,
      )
      .slice(0, 12)
      .map((r) => `${r.owner}/t${r.token}@${rel(r.t)}`)
      .join(', ');
    violations.push(
      `${header}\n  ownership: shard ${next.shard}: ${what}, ${lastEventBefore(next.start)}\n` +
        `    intervals: ${fmtInterval(prev)} then ${fmtInterval(next)}\n` +
        `    effects in the overlap: ${sample || '(none)'}\n    events:\n${around(next.start, prev.end)}`,
    );
  }

  // ── one token, one claim: a token fences every store its owner writes to ──
  violations.push(...sharedTokens(run.records).map((v) => `${header}\n  ownership: ${v}`));

  // ── liveness from records: gaps in each shard's effects ──
  const tol = run.bounds.gapToleranceMs;
  const byShard = new Map<number, number[]>();
  for (const r of effects) {
    if (r.t > run.runEnd) continue;
    let list = byShard.get(r.shard);
    if (list === undefined) {
      list = [];
      byShard.set(r.shard, list);
    }
    list.push(r.t);
  }
  for (let shard = 0; shard < run.shardCount; shard++) {
    const times = (byShard.get(shard) ?? []).sort((a, b) => a - b);
    const gaps: [number, number | undefined][] = [];
    let prev = run.t0 - tol;
    for (const t of times) {
      if (t - prev > tol) gaps.push([prev, t]);
      prev = Math.max(prev, t);
    }
    if (run.runEnd - prev > tol) gaps.push([prev, undefined]);
    for (const [a, b] of gaps) {
      const from = Math.max(a + tol, run.t0);
      const to = b ?? run.runEnd;
      if (to <= from) continue;
      const bad = uncovered(from, to, windows);
      if (bad.length === 0) continue;
      const before = intervals.filter((i) => i.shard === shard && i.end <= a + 1e-6).at(-1);
      const after = intervals.find((i) => i.shard === shard && b !== undefined && i.start >= b - 1e-6);
      violations.push(
        `${header}\n  liveness: shard ${shard} had no owner doing work from ${rel(a)} to ${b === undefined ? 'the end of the run' : rel(b)}, ${lastEventBefore(a)}; ` +
          `outside every grace window: ${bad.map(([s, e]) => `${rel(s)}…${rel(e)}`).join(', ')}\n` +
          `    intervals: before ${before === undefined ? '(none)' : fmtInterval(before)}, after ${after === undefined ? '(none)' : fmtInterval(after)}\n` +
          `    events:\n${around(a, to)}`,
      );
    }
  }

  // ── liveness from the observer: polls that found a shard without a healthy owner ──
  let runStart: CoverageSample | undefined;
  let runLast: CoverageSample | undefined;
  const flush = (): void => {
    if (runStart === undefined || runLast === undefined) return;
    // As with effects: a hand-over (revoke, release, claim) leaves a shard
    // unclaimed for a few round trips at any rebalance, even one no event
    // explains (a healed replica rejoining late); only a longer hole counts.
    const bad = runLast.at - runStart.at >= tol ? uncovered(runStart.at + tol, runLast.at, windows) : [];
    if (bad.length > 0) {
      violations.push(
        `${header}\n  liveness: the observer found shards without a healthy owner from ${rel(runStart.at)} to ${rel(runLast.at)} ` +
          `(${runStart.detail} … ${runLast.detail}), ${lastEventBefore(runStart.at)}; outside every grace window: ` +
          `${bad.map(([s, e]) => `${rel(s)}…${rel(e)}`).join(', ')}\n    events:\n${around(runStart.at, runLast.at)}`,
      );
    }
    runStart = undefined;
    runLast = undefined;
  };
  for (const s of run.samples) {
    if (s.at < run.t0) continue;
    if (s.at > run.runEnd) break;
    if (s.covered !== undefined && s.covered < run.shardCount) {
      runStart ??= s;
      runLast = s;
    } else if (s.covered !== undefined) {
      flush();
    }
  }
  flush();

  for (const e of run.runErrors) violations.push(`${header}\n  run: ${e}`);

  // ── informational: handler lifetimes ──
  const lifetime = checkOwnership(run.records);
  const lifetimeOverlaps = lifetime.violations.filter((v) => !report.violations.includes(v));

  // ── recovery stats ──
  const groups = new Map<string, { values: number[]; unrecovered: number }>();
  for (const o of run.outcomes) {
    const kind = recoveryKind(o.event, run.bounds.ttlMs);
    let g = groups.get(kind);
    if (g === undefined) {
      g = { values: [], unrecovered: 0 };
      groups.set(kind, g);
    }
    const ms = recoveryMs(o);
    if (ms === undefined) g.unrecovered++;
    else g.values.push(ms);
  }
  const recoveries: RecoveryStats[] = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([kind, g]) => {
      const v = [...g.values].sort((a, b) => a - b);
      return {
        kind,
        count: v.length + g.unrecovered,
        unrecovered: g.unrecovered,
        minMs: v[0] ?? Number.NaN,
        medianMs: v[Math.floor((v.length - 1) / 2)] ?? Number.NaN,
        maxMs: v.at(-1) ?? Number.NaN,
      };
    });

  return {
    ok: violations.length === 0,
    violations,
    intervals,
    effectCount: effects.length,
    lifetimeOverlaps,
    recoveries,
  };
}

/** Tokens listed one by one in {@link sharedTokens}; the rest are counted. */
const SHARED_TOKENS_SHOWN = 10;

/**
 * Tokens held for more than one shard. Every record of a run belongs to one
 * service, whose tokens must differ for every claim: a store that fences one
 * resource written by the owners of several shards would otherwise accept two
 * writers with one token. All record kinds count, since each shows a handler
 * holding `(shard, token)`.
 */
export function sharedTokens(records: readonly OwnershipRecord[]): string[] {
  const byToken = new Map<number, Map<number, Set<string>>>();
  for (const r of records) {
    let shards = byToken.get(r.token);
    if (shards === undefined) {
      shards = new Map();
      byToken.set(r.token, shards);
    }
    let owners = shards.get(r.shard);
    if (owners === undefined) {
      owners = new Set();
      shards.set(r.shard, owners);
    }
    owners.add(r.owner);
  }
  const shared = [...byToken].filter(([, shards]) => shards.size > 1).sort(([a], [b]) => a - b);
  const lines = shared.slice(0, SHARED_TOKENS_SHOWN).map(
    ([token, shards]) =>
      `token ${token} held for ${shards.size} shards: ` +
      [...shards]
        .sort(([a], [b]) => a - b)
        .map(([shard, owners]) => `shard ${shard} by ${[...owners].join(', ')}`)
        .join('; '),
  );
  if (shared.length > SHARED_TOKENS_SHOWN) {
    lines.push(`${shared.length - SHARED_TOKENS_SHOWN} more tokens held for several shards`);
  }
  return lines;
}

/** A table of recovery times for logs. */
export function formatRecoveries(recoveries: readonly RecoveryStats[]): string {
  const rows = recoveries.map(
    (r) =>
      `  ${r.kind.padEnd(16)} n=${String(r.count).padStart(3)}  min ${fmtMs(r.minMs)}  median ${fmtMs(r.medianMs)}  max ${fmtMs(r.maxMs)}${r.unrecovered > 0 ? `  (${r.unrecovered} not measured)` : ''}`,
  );
  return rows.join('\n');
}

function fmtMs(ms: number): string {
  return Number.isNaN(ms) ? '     -' : `${ms.toFixed(0).padStart(5)} ms`;
}
