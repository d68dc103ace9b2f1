/**
 * The planner: one reconcile pass's decisions as a pure, deterministic
 * function of what this replica sees (the view, the claims, its own runs).
 * Nothing here reads a clock or calls a backend, so the rules (revoke before
 * assign, wait for a held shard's release, give back a claim nobody runs)
 * are checked by property tests over whole simulated clusters.
 *
 * @module
 */

import { type AssignmentStrategy, computeAssignment } from './assignment.js';
import type { Claim, ClaimRef, Member } from './discovery/contract.js';

/** What the planner sees of one of this replica's runs. */
export interface PlannedRun {
  readonly token: number;
  /** Being revoked already (draining or released). */
  readonly revoked: boolean;
}

/** Input of {@link plan}. */
export interface PlanInput {
  /** Live members sorted by `(joinSeq, id)`, draining ones included. */
  readonly view: readonly Member[];
  /** Live claims by shard. */
  readonly claims: ReadonlyMap<number, Claim>;
  /** This replica's runs by shard. */
  readonly runs: ReadonlyMap<number, PlannedRun>;
  /** This replica's member id. */
  readonly self: string;
  readonly shardCount: number;
  readonly strategy: AssignmentStrategy;
}

/** Why the planner revokes a run. */
export type PlannedRevocation =
  /** The assignment gives the shard to another member: drain, then release. */
  | { readonly shard: number; readonly reason: 'rebalance' }
  /** The claim is gone or is not ours any more: stop at once, nothing to release. */
  | { readonly shard: number; readonly reason: 'claim-lost' };

/** What one reconcile pass should do. */
export interface Plan {
  /** Shards the assignment gives this replica. */
  readonly desired: ReadonlySet<number>;
  /** Runs to revoke (before anything is claimed). */
  readonly revoke: readonly PlannedRevocation[];
  /** Claims of ours without a run that we want (a claim whose reply was lost): run them. */
  readonly adopt: readonly Claim[];
  /** Claims of ours without a run that we do not want: give them back. */
  readonly giveBack: readonly ClaimRef[];
  /** Unclaimed shards we want. Shards another live member still holds are waited for, not claimed. */
  readonly claim: readonly number[];
}

/**
 * Plan one reconcile pass; pure and deterministic. Draining members are left
 * out of the assignment, so their shards are given to the others, who take
 * each one as soon as it is released.
 */
export function plan(input: PlanInput): Plan {
  const { view, claims, runs, self } = input;
  const planned = view.filter((m) => m.draining !== true);
  const plannedIds = new Set(planned.map((m) => m.id));
  const owners = new Map<number, string>();
  for (const claim of claims.values()) if (plannedIds.has(claim.owner)) owners.set(claim.shard, claim.owner);
  const assignment = computeAssignment(input.strategy, {
    members: planned.map((m) => ({ id: m.id, weight: m.weight })),
    shardCount: input.shardCount,
    owners,
  });
  const desired = new Set(assignment.get(self) ?? []);

  const revoke: PlannedRevocation[] = [];
  for (const [shard, run] of runs) {
    if (run.revoked) continue;
    const claim = claims.get(shard);
    if (claim === undefined || claim.owner !== self || claim.token !== run.token) {
      revoke.push({ shard, reason: 'claim-lost' });
    } else if (!desired.has(shard)) {
      revoke.push({ shard, reason: 'rebalance' });
    }
  }
  const adopt: Claim[] = [];
  const claim: number[] = [];
  for (const shard of [...desired].sort((a, b) => a - b)) {
    if (runs.has(shard)) continue;
    const held = claims.get(shard);
    if (held === undefined) claim.push(shard);
    else if (held.owner === self) adopt.push(held);
  }
  const giveBack: ClaimRef[] = [];
  for (const held of claims.values()) {
    if (held.owner === self && !desired.has(held.shard) && !runs.has(held.shard)) {
      giveBack.push({ shard: held.shard, token: held.token });
    }
  }
  return { desired, revoke, adopt, giveBack, claim };
}
