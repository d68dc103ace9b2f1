/**
 * Is a service balanced? All shards claimed by live members, the expected
 * number of members, and every member holding exactly its `balanced` quota.
 *
 * @module
 */

import { type Discovery, quotas, type Snapshot } from '@shardwork/core';
import { monotonicMs } from './protocol.js';

/** Result of {@link balanceOf}. */
export interface Balance {
  readonly balanced: boolean;
  /** Shards claimed by live members. */
  readonly covered: number;
  readonly members: number;
  /** Members whose count differs from their quota. */
  readonly offQuota: number;
}

/** Check a snapshot against the `balanced` quotas of its view (equal weights assumed when absent). */
export function balanceOf(snap: Snapshot, shardCount: number, expectedMembers: number): Balance {
  const view = [...snap.members].sort((a, b) => a.joinSeq - b.joinSeq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const quota = quotas(view, shardCount);
  const live = new Set(view.map((m) => m.id));
  const counts = new Map<string, number>();
  const covered = new Set<number>();
  for (const c of snap.claims) {
    if (!live.has(c.owner)) continue;
    covered.add(c.shard);
    counts.set(c.owner, (counts.get(c.owner) ?? 0) + 1);
  }
  let offQuota = 0;
  view.forEach((m, i) => {
    if ((counts.get(m.id) ?? 0) !== quota[i]) offQuota += 1;
  });
  return {
    balanced: view.length === expectedMembers && covered.size === shardCount && offQuota === 0,
    covered: covered.size,
    members: view.length,
    offQuota,
  };
}

/**
 * Poll until the service is balanced with `expectedMembers` members; resolve
 * with the {@link monotonicMs} at which that was first seen.
 */
export async function waitBalanced(
  discovery: Discovery,
  service: string,
  shardCount: number,
  expectedMembers: number,
  options: { readonly timeoutMs: number; readonly pollMs?: number },
): Promise<number> {
  const deadline = monotonicMs() + options.timeoutMs;
  let last = 'no snapshot yet';
  for (;;) {
    try {
      const b = balanceOf(await discovery.snapshot(service), shardCount, expectedMembers);
      if (b.balanced) return monotonicMs();
      last = `${b.covered}/${shardCount} shards covered, ${b.members}/${expectedMembers} members, ${b.offQuota} off quota`;
    } catch (error) {
      last = String(error);
    }
    if (monotonicMs() > deadline) {
      throw new Error(`${service} not balanced within ${options.timeoutMs} ms (last: ${last})`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 20));
  }
}

/** When each stage of convergence was first seen ({@link monotonicMs}); `undefined` if never. */
export interface Convergence {
  /** Every expected member registered. */
  readonly allMembers: number | undefined;
  /** Every shard claimed by a live member. */
  readonly allCovered: number | undefined;
  /** Balanced (see {@link balanceOf}). */
  readonly balanced: number | undefined;
  /** The last state seen. */
  readonly last: Balance | undefined;
}

/**
 * Poll until balanced or `timeoutMs`, noting when all members and full
 * coverage were first seen. Never rejects: a timeout leaves `balanced` unset.
 */
export async function trackConvergence(
  snapshot: () => Promise<Snapshot>,
  shardCount: number,
  expectedMembers: number,
  options: {
    readonly timeoutMs: number;
    readonly pollMs: number;
    readonly progress?: (b: Balance) => void;
    readonly progressEveryMs?: number;
  },
): Promise<Convergence> {
  const deadline = monotonicMs() + options.timeoutMs;
  let allMembers: number | undefined;
  let allCovered: number | undefined;
  let last: Balance | undefined;
  let reported = monotonicMs();
  while (monotonicMs() < deadline) {
    try {
      const b = balanceOf(await snapshot(), shardCount, expectedMembers);
      const now = monotonicMs();
      last = b;
      if (allMembers === undefined && b.members >= expectedMembers) allMembers = now;
      if (allCovered === undefined && b.covered === shardCount) allCovered = now;
      if (b.balanced) return { allMembers, allCovered, balanced: now, last };
      if (options.progress !== undefined && now - reported >= (options.progressEveryMs ?? 10_000)) {
        reported = now;
        options.progress(b);
      }
    } catch {
      // unreachable for a moment: poll again
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
  return { allMembers, allCovered, balanced: undefined, last };
}
