/**
 * Shard movement per join and leave: pure computation over the assignment
 * strategies, no backend. A shard "moves" when its owner after the change
 * differs from its owner before (a departed member's shards always move).
 *
 * The minimum possible for a change: every member must end with ⌊T/N⌋ or
 * ⌈T/N⌉ shards (T mod N of them with the larger number). The departed
 * member's shards must move, and every member above its final count must give
 * up the difference; the best choice gives the larger counts to the members
 * that hold the most. So min = orphans + Σ max(0, held − final).
 *
 * @module
 */

import { type AssignmentStrategy, balanced, computeAssignment, range, roundRobin } from '@shardwork/core';

/** The strategies compared. */
export const STRATEGIES: Readonly<Record<string, AssignmentStrategy>> = { balanced, range, roundRobin };

type Owners = Map<number, string>;

function assign(strategy: AssignmentStrategy, view: readonly string[], shardCount: number, owners: Owners): Owners {
  const assignment = computeAssignment(strategy, {
    members: view.map((id) => ({ id, weight: 1 })),
    shardCount,
    owners,
  });
  const next: Owners = new Map();
  for (const [id, shards] of assignment) for (const shard of shards) next.set(shard, id);
  return next;
}

function moved(before: Owners, after: Owners, shardCount: number): number {
  let count = 0;
  for (let shard = 0; shard < shardCount; shard++) if (before.get(shard) !== after.get(shard)) count += 1;
  return count;
}

/** Least number of moves from `before` to any balanced assignment over `view`. */
export function minimumMoves(before: Owners, view: readonly string[], shardCount: number): number {
  const inView = new Set(view);
  const held = new Map(view.map((id) => [id, 0]));
  let orphans = 0;
  for (let shard = 0; shard < shardCount; shard++) {
    const owner = before.get(shard);
    if (owner !== undefined && inView.has(owner)) held.set(owner, (held.get(owner) ?? 0) + 1);
    else orphans += 1;
  }
  const n = view.length;
  const low = Math.floor(shardCount / n);
  let extra = shardCount % n;
  let excess = 0;
  for (const h of [...held.values()].sort((a, b) => b - a)) {
    const final = extra > 0 ? low + 1 : low;
    if (extra > 0) extra -= 1;
    excess += Math.max(0, h - final);
  }
  return orphans + excess;
}

/** One row of the single-event table. */
export interface MovementRow {
  readonly n: number;
  readonly t: number;
  readonly event: 'join' | 'leave';
  /** Minimum (leave: mean over which member leaves). */
  readonly minimum: number;
  /** Per strategy: mean moves and the worst case over which member leaves. */
  readonly strategies: Readonly<Record<string, { readonly mean: number; readonly max: number }>>;
}

/** One row of the churn table. */
export interface ChurnRow {
  readonly n: number;
  readonly t: number;
  readonly events: number;
  /** Per strategy: total moves, and the total of the minimum from each of its own states. */
  readonly strategies: Readonly<
    Record<string, { readonly moves: number; readonly minimum: number; readonly eventsAboveMinimum: number }>
  >;
}

/** Results of {@link runMovement}. */
export interface MovementResult {
  readonly single: MovementRow[];
  readonly churn: ChurnRow[];
}

const ids = (count: number, from = 0): string[] => Array.from({ length: count }, (_, i) => `m${from + i}`);

/** From the steady state of `n` members: one join (appended to the view), and each possible single leave. */
function singleEvents(n: number, t: number): MovementRow[] {
  const view = ids(n);
  const rows: MovementRow[] = [];
  const joinStats: Record<string, { mean: number; max: number }> = {};
  const leaveStats: Record<string, { mean: number; max: number }> = {};
  let joinMin = 0;
  let leaveMinSum = 0;
  for (const [name, strategy] of Object.entries(STRATEGIES)) {
    const steady = assign(strategy, view, t, new Map());
    const joined = [...view, `m${n}`];
    const j = moved(steady, assign(strategy, joined, t, steady), t);
    joinStats[name] = { mean: j, max: j };
    joinMin = minimumMoves(steady, joined, t);
    let sum = 0;
    let max = 0;
    leaveMinSum = 0;
    for (let leaver = 0; leaver < n; leaver++) {
      const rest = view.filter((_, i) => i !== leaver);
      const m = moved(steady, assign(strategy, rest, t, steady), t);
      sum += m;
      max = Math.max(max, m);
      leaveMinSum += minimumMoves(steady, rest, t);
    }
    leaveStats[name] = { mean: sum / n, max };
  }
  rows.push({ n, t, event: 'join', minimum: joinMin, strategies: joinStats });
  rows.push({ n, t, event: 'leave', minimum: leaveMinSum / n, strategies: leaveStats });
  return rows;
}

/**
 * A random sequence of joins (appended to the view) and leaves (any member),
 * the member count kept within [n/2, 2n], the same sequence for every
 * strategy; total moves against the total minimum.
 */
function churn(n: number, t: number, events: number, random: () => number): ChurnRow {
  const plan: { join: boolean; pick: number }[] = [];
  let size = n;
  for (let i = 0; i < events; i++) {
    const join = size <= Math.max(1, Math.floor(n / 2)) ? true : size >= 2 * n ? false : random() < 0.5;
    plan.push({ join, pick: random() });
    size += join ? 1 : -1;
  }
  const totals: Record<string, { moves: number; minimum: number; eventsAboveMinimum: number }> = {};
  for (const [name, strategy] of Object.entries(STRATEGIES)) {
    let view = ids(n);
    let next = n;
    let owners = assign(strategy, view, t, new Map());
    let total = 0;
    let min = 0;
    let above = 0;
    for (const step of plan) {
      if (step.join) view = [...view, `m${next++}`];
      else view = view.filter((_, i) => i !== Math.floor(step.pick * view.length));
      const least = minimumMoves(owners, view, t);
      const after = assign(strategy, view, t, owners);
      const m = moved(owners, after, t);
      min += least;
      total += m;
      if (m > least) above += 1;
      owners = after;
    }
    totals[name] = { moves: total, minimum: min, eventsAboveMinimum: above };
  }
  return { n, t, events, strategies: totals };
}

/** Every (N, T) with N ≤ T. */
export function runMovement(
  sizes: readonly number[],
  shardCounts: readonly number[],
  churnEvents: number,
  random: () => number,
): MovementResult {
  const single: MovementRow[] = [];
  const churnRows: ChurnRow[] = [];
  for (const t of shardCounts) {
    for (const n of sizes) {
      if (n > t) continue;
      single.push(...singleEvents(n, t));
      churnRows.push(churn(n, t, churnEvents, random));
    }
  }
  return { single, churn: churnRows };
}
