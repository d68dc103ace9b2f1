/**
 * Assignment strategies: pure, deterministic functions from the view (healthy
 * members in join order), the shard count and the current owners to the shards
 * each member should own. Every replica computes the same result from the same
 * inputs, so no coordinator is needed.
 *
 * @module
 */

import { InvalidAssignmentError } from './errors.js';

/** What a strategy sees of a member. */
export interface AssignmentMember {
  /** Member id. */
  readonly id: string;
  /** Relative capacity, positive. */
  readonly weight: number;
}

/** Input of an {@link AssignmentStrategy}. */
export interface AssignmentInput {
  /** Healthy members sorted by join order, then id. */
  readonly members: readonly AssignmentMember[];
  /** Number of shards `T`. */
  readonly shardCount: number;
  /** Current owner of each claimed shard (member ids in `members` only). */
  readonly owners: ReadonlyMap<number, string>;
}

/**
 * Member id → the shards it should own (ascending). Members may be missing
 * (they own nothing); shards may be missing (nobody should own them).
 */
export type Assignment = Map<string, number[]>;

/** A strategy: a pure function of its input. */
export type AssignmentStrategy = (input: AssignmentInput) => Assignment;

/** Names of the built-in strategies. */
export type StrategyName = 'balanced' | 'range' | 'roundRobin';

/**
 * How many shards each member should own: proportional to weight by the
 * largest-remainder method, ties (and equal weights) favouring earlier members
 * of the view. With equal weights the first `T mod N` members get ⌈T/N⌉ and the
 * rest ⌊T/N⌋; with `N > T` the first `T` members get one shard each.
 */
export function quotas(members: readonly AssignmentMember[], shardCount: number): number[] {
  if (members.length === 0) return [];
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  const exact = members.map((m) => (shardCount * m.weight) / total);
  const result = exact.map((x) => Math.floor(x + 1e-9));
  let left = shardCount - result.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, i) => ({ i, frac: x - Math.floor(x + 1e-9) }))
    .sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    result[i] = (result[i] ?? 0) + 1;
    left -= 1;
  }
  return result;
}

/**
 * Sticky, balanced (the default). Current owners keep their lowest shards up to
 * their quota; the remaining shards go, lowest first, to members under quota in
 * view order. A join or leave therefore moves only the shards needed to restore
 * the quotas, never a full reshuffle.
 */
export const balanced: AssignmentStrategy = ({ members, shardCount, owners }) => {
  const quota = quotas(members, shardCount);
  const index = new Map(members.map((m, i) => [m.id, i]));
  const result: number[][] = members.map(() => []);
  const free: number[] = [];
  for (let shard = 0; shard < shardCount; shard++) {
    const owner = owners.get(shard);
    const i = owner === undefined ? undefined : index.get(owner);
    const mine = i === undefined ? undefined : result[i];
    if (i !== undefined && mine !== undefined && mine.length < (quota[i] ?? 0)) mine.push(shard);
    else free.push(shard);
  }
  let next = 0;
  for (let i = 0; i < members.length; i++) {
    const mine = result[i] as number[];
    const kept = mine.length;
    while (mine.length < (quota[i] ?? 0) && next < free.length) mine.push(free[next++] as number);
    // Kept and free shards are each ascending; merge them only when both are there.
    if (kept > 0 && mine.length > kept) mine.sort((a, b) => a - b);
  }
  return toAssignment(members, result);
};

/**
 * Contiguous blocks in view order (ElasticJob's average allocation). Not sticky:
 * a join or leave in the middle of the view shifts every later block.
 */
export const range: AssignmentStrategy = ({ members, shardCount }) => {
  const quota = quotas(members, shardCount);
  let next = 0;
  const result = members.map((_, i) => {
    const block: number[] = [];
    for (let k = 0; k < (quota[i] ?? 0); k++) block.push(next++);
    return block;
  });
  return toAssignment(members, result);
};

/** Shard `k` goes to member `k mod N` (weights ignored). Not sticky. */
export const roundRobin: AssignmentStrategy = ({ members, shardCount }) => {
  const result: number[][] = members.map(() => []);
  for (let shard = 0; shard < shardCount && members.length > 0; shard++) {
    result[shard % members.length]?.push(shard);
  }
  return toAssignment(members, result);
};

/** The built-in strategies by name. */
export const strategies: Readonly<Record<StrategyName, AssignmentStrategy>> = { balanced, range, roundRobin };

function toAssignment(members: readonly AssignmentMember[], shards: number[][]): Assignment {
  return new Map(members.map((m, i) => [m.id, shards[i] ?? []]));
}

const BUILT_IN: ReadonlySet<AssignmentStrategy> = new Set(Object.values(strategies));

/**
 * Run a strategy and check its output: only known members, integer shards in
 * range, no shard given twice. Throws {@link InvalidAssignmentError} otherwise,
 * so a buggy custom strategy cannot create two owners. The built-in strategies
 * are trusted (their output is property-tested) and skip the check, which
 * costs more than the strategy itself and runs on every reconcile pass.
 */
export function computeAssignment(strategy: AssignmentStrategy, input: AssignmentInput): Assignment {
  if (BUILT_IN.has(strategy)) return strategy(input);
  const raw: unknown = strategy(input);
  if (!(raw instanceof Map)) throw new InvalidAssignmentError('expected a Map of member id to shard array');
  const known = new Set(input.members.map((m) => m.id));
  const seen = new Map<number, string>();
  const result: Assignment = new Map();
  for (const [id, shards] of raw as Map<unknown, unknown>) {
    if (typeof id !== 'string' || !known.has(id)) throw new InvalidAssignmentError(`unknown member ${String(id)}`);
    if (!Array.isArray(shards)) throw new InvalidAssignmentError(`shards of ${id} are not an array`);
    for (const shard of shards as unknown[]) {
      if (typeof shard !== 'number' || !Number.isInteger(shard) || shard < 0 || shard >= input.shardCount) {
        throw new InvalidAssignmentError(`shard ${String(shard)} of ${id} is not in [0, ${input.shardCount})`);
      }
      const other = seen.get(shard);
      if (other !== undefined) throw new InvalidAssignmentError(`shard ${shard} given to both ${other} and ${id}`);
      seen.set(shard, id);
    }
    result.set(
      id,
      [...(shards as number[])].sort((a, b) => a - b),
    );
  }
  return result;
}
