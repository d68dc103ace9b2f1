/**
 * Claiming and releasing shards in batches, one etcd transaction per chunk.
 *
 * A claim batch is one transaction: it requires the member key to be bound to
 * the member's lease, and holds one nested transaction per shard that creates
 * the claim key if it is absent (`create_revision == 0`) and otherwise reads
 * it. A plain transaction is all or nothing, so one taken shard would fail
 * the whole batch; nested ones let every free shard be claimed in the same
 * round trip. Every claim made by one transaction gets that transaction's
 * revision as create revision, so the token is that revision and the shard's
 * slot (`tokens.ts`), and a transaction never holds two shards of one slot:
 * every claim gets a token of its own, above every token handed out before.
 * An equal token for the shards of one batch would let a store that fences
 * one resource written by several shards' owners accept two writers.
 *
 * A claim key that shardwork cannot have written (no lease, an empty owner,
 * overwritten, or not bound to its owner's live member lease) would block its
 * shard forever, since claims are only created when absent. The batch deletes
 * such a key with a compare on the mod revision it read (so a key that
 * changed in between is left alone), reports it as repaired, and claims the
 * shard in a second transaction.
 *
 * @module
 */

import {
  type ClaimBatch,
  type ClaimRef,
  type ClaimResult,
  InvalidOptionsError,
  type InvalidRecord,
} from '@shardwork/core';
import type { ITxnResponse } from 'etcd3';
import type { ServiceKeys } from './keys.js';
import { claimFromKv, encodeClaim, ownerProblem, type RawKeyValue } from './records.js';
import { claimRevision, claimToken, MAX_TOKEN_REVISION, slotChunks } from './tokens.js';
import {
  absent,
  boundTo,
  chunks,
  createdAt,
  del,
  get,
  getKeyOnly,
  holds,
  modifiedAt,
  nested,
  put,
  type TxnRequest,
} from './txn.js';

/** What the batch functions need from the connection, for one member of one service. */
export interface ClaimContext {
  /** Run one transaction with the call deadline. */
  readonly txn: (request: TxnRequest) => Promise<ITxnResponse>;
  readonly keys: ServiceKeys;
  readonly memberId: string;
  /** The member's etcd lease, decimal. */
  readonly lease: string;
  /** Shards per transaction (below the server's `--max-txn-ops`; at most 1000 are used, see `tokens.ts`). */
  readonly batchSize: number;
}

/** Returned instead of a batch when the member's key is no longer bound to its lease. */
export const LEASE_GONE = Symbol('lease gone');

/** A claim key in the way that shardwork cannot have written. */
interface Garbage {
  readonly shard: number;
  readonly key: string;
  readonly modRevision: string;
  readonly reason: string;
  /** What to report if it stays in place: its owner, as far as readable, and token (0: none). */
  readonly owner: string;
  readonly token: number;
}

/** A claim held by another member, valid unless that member's key is not on the claim's lease. */
interface Foreign {
  readonly shard: number;
  readonly kv: RawKeyValue;
}

type Outcome = Map<number, ClaimResult>;

/**
 * Claim `shards` for the member of `ctx`: one result per requested shard (a
 * shard requested twice gets the same result twice), and the garbage claim
 * keys this call deleted. {@link LEASE_GONE} when the member is gone.
 */
export async function claimShards(
  ctx: ClaimContext,
  shards: readonly number[],
): Promise<ClaimBatch | typeof LEASE_GONE> {
  const distinct = [...new Set(shards)];
  const outcome: Outcome = new Map();
  const repaired: InvalidRecord[] = [];
  for (const chunk of slotChunks(distinct, ctx.batchSize)) {
    const done = await claimChunk(ctx, chunk, repaired, true);
    if (done === LEASE_GONE) return LEASE_GONE;
    for (const [shard, result] of done) outcome.set(shard, result);
  }
  const results = shards.map((shard) => {
    const result = outcome.get(shard);
    if (result === undefined) throw new Error(`claim batch lost the result of shard ${shard}`);
    return result;
  });
  return { results, repaired };
}

function claimRequest(ctx: ClaimContext, shards: readonly number[]): TxnRequest {
  const memberKey = ctx.keys.member(ctx.memberId);
  return {
    compare: [boundTo(memberKey, ctx.lease)],
    success: shards.map((shard) => {
      const key = ctx.keys.claim(shard);
      return nested({
        compare: [absent(key)],
        success: [put(key, encodeClaim(ctx.memberId), ctx.lease)],
        failure: [get(key)],
      });
    }),
    failure: [],
  };
}

async function claimChunk(
  ctx: ClaimContext,
  shards: readonly number[],
  repaired: InvalidRecord[],
  repair: boolean,
): Promise<Outcome | typeof LEASE_GONE> {
  const res = await ctx.txn(claimRequest(ctx, shards));
  // The member key lives exactly as long as the lease: not bound means expired or revoked.
  if (!res.succeeded) return LEASE_GONE;
  const revision = res.header.revision;
  const outcome: Outcome = new Map();
  const garbage: Garbage[] = [];
  const foreign: Foreign[] = [];
  shards.forEach((shard, i) => {
    const inner = res.responses[i]?.response_txn;
    if (inner?.succeeded === true) {
      outcome.set(shard, { ok: true, token: createdToken(revision, shard) });
      return;
    }
    // The compare saw the key, and a transaction reads one revision: it is there.
    const kv = inner?.responses[0]?.response_range?.kvs[0];
    if (kv === undefined) throw new Error(`claim transaction for shard ${shard} failed with no claim present`);
    const judged = judgeOwn(ctx, shard, kv);
    if (judged === 'foreign') foreign.push({ shard, kv });
    else if ('ok' in judged) outcome.set(shard, judged);
    else garbage.push(judged);
  });
  for (const result of await judgeForeign(ctx, foreign)) {
    if ('ok' in result.judged) outcome.set(result.shard, result.judged);
    else garbage.push(result.judged);
  }
  if (garbage.length === 0) return outcome;
  if (!repair) {
    for (const g of garbage) outcome.set(g.shard, { ok: false, owner: g.owner, token: g.token });
    return outcome;
  }
  repaired.push(...(await deleteGarbage(ctx, garbage)));
  // Claim the shards again, whether this call deleted the key or someone else got there first.
  const again = await claimChunk(
    ctx,
    garbage.map((g) => g.shard),
    repaired,
    false,
  );
  if (again === LEASE_GONE) return LEASE_GONE;
  for (const [shard, result] of again) outcome.set(shard, result);
  return outcome;
}

/**
 * The token of a claim this call created at `revision`. Past the exact range
 * the claim stays unused (it goes with the lease, and listings report it):
 * a rounded token could equal another.
 */
function createdToken(revision: string, shard: number): number {
  const token = claimToken(revision, shard);
  if (token === undefined) {
    throw new RangeError(
      `etcd revision ${revision} is beyond ${MAX_TOKEN_REVISION}, the last one whose fencing tokens are exact numbers`,
    );
  }
  return token;
}

function garbageOf(shard: number, kv: RawKeyValue, reason: string): Garbage {
  return {
    shard,
    key: kv.key.toString('utf8'),
    modRevision: String(kv.mod_revision),
    reason,
    owner: kv.value.toString('utf8'),
    token: claimToken(kv.create_revision, shard) ?? 0,
  };
}

/** Judge a claim key in the way, as far as possible without reading its owner's member key. */
function judgeOwn(ctx: ClaimContext, shard: number, kv: RawKeyValue): ClaimResult | Garbage | 'foreign' {
  const stored = claimFromKv(shard, kv);
  if (!stored.ok) return garbageOf(shard, kv, stored.reason);
  if (stored.value.owner !== ctx.memberId) return 'foreign';
  const problem = ownerProblem(stored.value, ctx.lease);
  if (problem !== undefined) return garbageOf(shard, kv, problem);
  return { ok: false, owner: ctx.memberId, token: stored.value.token };
}

/** Judge claims held by other members: one read of their member keys (without values). */
async function judgeForeign(
  ctx: ClaimContext,
  foreign: readonly Foreign[],
): Promise<{ shard: number; judged: ClaimResult | Garbage }[]> {
  if (foreign.length === 0) return [];
  const owners = [...new Set(foreign.map((f) => f.kv.value.toString('utf8')))];
  const res = await ctx.txn({ compare: [], success: owners.map((o) => getKeyOnly(ctx.keys.member(o))), failure: [] });
  const leases = new Map<string, string>();
  owners.forEach((owner, i) => {
    const kv = res.responses[i]?.response_range?.kvs[0];
    if (kv !== undefined && String(kv.lease) !== '0') leases.set(owner, String(kv.lease));
  });
  return foreign.map(({ shard, kv }) => {
    const stored = claimFromKv(shard, kv);
    if (!stored.ok) return { shard, judged: garbageOf(shard, kv, stored.reason) };
    const problem = ownerProblem(stored.value, leases.get(stored.value.owner));
    if (problem !== undefined) return { shard, judged: garbageOf(shard, kv, problem) };
    return { shard, judged: { ok: false, owner: stored.value.owner, token: stored.value.token } };
  });
}

/** Delete each garbage key if it is still the one read; the ones this call deleted. */
async function deleteGarbage(ctx: ClaimContext, garbage: readonly Garbage[]): Promise<InvalidRecord[]> {
  const res = await ctx.txn({
    compare: [],
    success: garbage.map((g) =>
      nested({ compare: [modifiedAt(g.key, g.modRevision)], success: [del(g.key)], failure: [] }),
    ),
    failure: [],
  });
  return garbage
    .filter((_, i) => res.responses[i]?.response_txn?.succeeded === true)
    .map((g) => ({ key: g.key, reason: g.reason }));
}

/**
 * Release `claims` of the member of `ctx`: each claim key is deleted if it
 * still holds the member's id and was created with the given token, and the
 * `released` marker is rewritten. One result per claim, in order.
 */
export async function releaseShards(ctx: Omit<ClaimContext, 'lease'>, claims: readonly ClaimRef[]): Promise<boolean[]> {
  const results = new Array<boolean>(claims.length).fill(false);
  // A token of another slot names no claim of the shard: nothing to compare, nothing released.
  const named = claims.flatMap((claim, index) => {
    const revision = claimRevision(claim.token, claim.shard);
    return revision === undefined ? [] : [{ shard: claim.shard, revision, index }];
  });
  for (const round of rounds(named)) {
    // One operation of each transaction is the marker, and each nested one has two compares.
    for (const chunk of chunks(round, ctx.batchSize - 1)) {
      const deletes = chunk.map(({ shard, revision }) => {
        const key = ctx.keys.claim(shard);
        return nested({
          compare: [holds(key, encodeClaim(ctx.memberId)), createdAt(key, revision)],
          success: [del(key)],
          failure: [],
        });
      });
      // The marker moves the version on even when this only undoes claims made since a snapshot (see versionOf).
      const res = await ctx.txn({ compare: [], success: [...deletes, put(ctx.keys.released, '')], failure: [] });
      chunk.forEach(({ index }, i) => {
        results[index] = res.responses[i]?.response_txn?.succeeded === true;
      });
    }
  }
  return results;
}

/**
 * Of `held`, the claims that are no longer the member's: the key must still
 * hold the member's id, have the create revision the token names, and be
 * bound to the member's lease. One transaction per chunk, compares only (no
 * values come back) while all is well; on a mismatch its failure branch reads
 * the keys, and they are judged here. (etcd's watch announces an overwritten
 * claim by itself; this covers a watch that went silent without knowing it.)
 */
export async function heldClaimsLost(ctx: ClaimContext, held: readonly ClaimRef[]): Promise<ClaimRef[]> {
  const lost: ClaimRef[] = [];
  const named: { ref: ClaimRef; revision: number }[] = [];
  for (const ref of held) {
    const revision = claimRevision(ref.token, ref.shard);
    if (revision === undefined) lost.push(ref);
    else named.push({ ref, revision });
  }
  const owner = encodeClaim(ctx.memberId);
  // Three compares per claim, and etcd counts compares against --max-txn-ops too.
  const check = async (chunk: typeof named): Promise<void> => {
    const res = await ctx.txn({
      compare: chunk.flatMap(({ ref, revision }) => {
        const key = ctx.keys.claim(ref.shard);
        return [holds(key, owner), createdAt(key, revision), boundTo(key, ctx.lease)];
      }),
      success: [],
      failure: chunk.map(({ ref }) => get(ctx.keys.claim(ref.shard))),
    });
    if (res.succeeded) return;
    chunk.forEach(({ ref, revision }, i) => {
      const kv = res.responses[i]?.response_range?.kvs[0];
      const ours =
        kv !== undefined &&
        kv.value.toString('utf8') === owner &&
        String(kv.create_revision) === String(revision) &&
        String(kv.lease) === ctx.lease;
      if (!ours) lost.push(ref);
    });
  };
  // Reads only: the chunks go out together, so the check takes one round trip.
  await Promise.all(chunks(named, Math.max(1, Math.floor(ctx.batchSize / 3))).map(check));
  return lost;
}

/** A claim to release: its shard, the create revision its token names, and its position in the call. */
interface NamedClaim {
  readonly shard: number;
  readonly revision: number;
  readonly index: number;
}

/** The claims in rounds without a shard twice (etcd rejects deleting one key twice in a transaction). */
function rounds(claims: readonly NamedClaim[]): NamedClaim[][] {
  const result: { entries: NamedClaim[]; shards: Set<number> }[] = [];
  for (const claim of claims) {
    let round = result.find((r) => !r.shards.has(claim.shard));
    if (round === undefined) {
      round = { entries: [], shards: new Set() };
      result.push(round);
    }
    round.entries.push(claim);
    round.shards.add(claim.shard);
  }
  return result.map((r) => r.entries);
}

/** The error for the first entry of `shards` that is not a shard index. */
export function checkShards(shards: unknown): InvalidOptionsError | undefined {
  if (!Array.isArray(shards)) return new InvalidOptionsError('shards', shards, 'an array of shard indices');
  for (const shard of shards) {
    if (!Number.isSafeInteger(shard) || shard < 0)
      return new InvalidOptionsError('shard', shard, 'a non-negative integer');
  }
  return undefined;
}

/** The error for the first entry of `claims` that is not a claim reference. */
export function checkClaimRefs(claims: unknown): InvalidOptionsError | undefined {
  if (!Array.isArray(claims)) return new InvalidOptionsError('claims', claims, 'an array of { shard, token }');
  const bad = checkShards(claims.map((c: Partial<ClaimRef> | null | undefined) => c?.shard));
  if (bad !== undefined) return bad;
  for (const claim of claims as ClaimRef[]) {
    if (!Number.isSafeInteger(claim.token) || claim.token < 1) {
      return new InvalidOptionsError('token', claim.token, 'a positive integer');
    }
  }
  return undefined;
}
