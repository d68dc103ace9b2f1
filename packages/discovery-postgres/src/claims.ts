/**
 * Claiming and releasing shards, each batch one change of the service (see
 * `changes.ts`). A claim is a row `(service, shard) → owner, token`, created
 * only if the shard has none, for a member that is alive by the server's
 * clock; its token comes from the `fencing_tokens` sequence, so tokens only
 * grow, across services, restarts and crashes (a token is handed out only
 * after the transaction that used it committed, and a commit makes the
 * sequence's advance durable with it). A row in the way that is not a live
 * claim (written by hand, or naming no live member) is deleted, reported in
 * `repaired`, and the shard claimed.
 *
 * @module
 */

import {
  type ClaimBatch,
  type ClaimRef,
  type ClaimResult,
  InvalidOptionsError,
  type InvalidRecord,
  LeaseExpiredError,
} from '@shardwork/core';
import { type ChangeContext, changeService } from './changes.js';
import { type ClaimRow, claimProblem, exactPositive, type WireChange } from './records.js';

/** Most shards one statement claims or releases; a larger batch is split (each chunk one change). */
export const MAX_BATCH = 1000;

/** A shard index, checked. */
export function checkShard(shard: unknown): number {
  if (typeof shard !== 'number' || !Number.isSafeInteger(shard) || shard < 0 || shard > 2 ** 31 - 1) {
    throw new InvalidOptionsError('shard', shard, 'an integer in [0, 2^31)');
  }
  return shard;
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += MAX_BATCH) out.push(items.slice(i, i + MAX_BATCH));
  return out;
}

/** See the module documentation. */
export async function claimMany(
  ctx: ChangeContext,
  service: string,
  memberId: string,
  shards: readonly number[],
): Promise<ClaimBatch> {
  const checked = shards.map(checkShard);
  const results: ClaimResult[] = [];
  const repaired: InvalidRecord[] = [];
  if (checked.length === 0) {
    // Still refuse a gone member, as for a batch with shards.
    await claimChunk(ctx, service, memberId, []);
    return { results, repaired };
  }
  for (const chunk of chunks(checked)) {
    const batch = await claimChunk(ctx, service, memberId, chunk);
    results.push(...batch.results);
    repaired.push(...batch.repaired);
  }
  return { results, repaired };
}

async function claimChunk(
  ctx: ChangeContext,
  service: string,
  memberId: string,
  shards: readonly number[],
): Promise<ClaimBatch> {
  const records = ctx.records(service);
  const { value } = await changeService(ctx, service, async (query) => {
    const alive = await query(ctx.sql.member, [service, memberId]);
    if (alive.length === 0) throw new LeaseExpiredError(memberId);
    const distinct = [...new Set(shards)];
    const held = new Map<number, { owner: string; token: number }>();
    const changes: WireChange[] = [];
    const repaired: InvalidRecord[] = [];
    const garbage: number[] = [];
    const rows = await query<ClaimRow & { owner_live: boolean }>(ctx.sql.heldClaims, [service, distinct]);
    for (const row of rows) {
      const problem = claimProblem(row, new Set(row.owner_live ? [row.owner] : []));
      if (problem === undefined) {
        held.set(row.shard, { owner: row.owner, token: Number(row.token) });
        continue;
      }
      garbage.push(row.shard);
      repaired.push({ key: records.claim(row.shard), reason: problem });
      // Views hold only claims of live members with a valid token; this row was never one of them.
    }
    if (garbage.length > 0) await query(ctx.sql.deleteClaims, [service, garbage]);
    const free = distinct.filter((shard) => !held.has(shard));
    const won = new Map<number, number>();
    if (free.length > 0) {
      const inserted = await query<{ shard: number; token: string }>(ctx.sql.insertClaims, [service, memberId, free]);
      for (const row of [...inserted].sort((a, b) => Number(a.token) - Number(b.token))) {
        const token = exactPositive(row.token);
        if (token === undefined) throw new Error(`fencing token ${row.token} is beyond the range of exact numbers`);
        won.set(row.shard, token);
        changes.push(['c+', row.shard, memberId, row.token]);
      }
    }
    const seen = new Set<number>();
    const results = shards.map((shard): ClaimResult => {
      const token = won.get(shard);
      const first = !seen.has(shard);
      seen.add(shard);
      if (token !== undefined) return first ? { ok: true, token } : { ok: false, owner: memberId, token };
      const other = held.get(shard) ?? { owner: '', token: 0 };
      return { ok: false, owner: other.owner, token: other.token };
    });
    // A garbage row deleted frees its shard, which is then claimed: a repair always comes with a claim:put.
    return { value: { results, repaired }, changes };
  });
  return value;
}

/** Release claims: each only if `memberId` owns it with that token. One result per claim, in order. */
export async function releaseMany(
  ctx: ChangeContext,
  service: string,
  memberId: string,
  claims: readonly ClaimRef[],
): Promise<readonly boolean[]> {
  const checked = claims.map(({ shard, token }) => {
    if (typeof token !== 'number' || !Number.isSafeInteger(token)) {
      throw new InvalidOptionsError('token', token, 'an integer');
    }
    return { shard: checkShard(shard), token };
  });
  const results: boolean[] = [];
  for (const chunk of chunks(checked)) {
    const { value } = await changeService(ctx, service, async (query) => {
      const deleted = await query<{ shard: number; token: string }>(ctx.sql.release, [
        service,
        memberId,
        chunk.map((c) => c.shard),
        chunk.map((c) => String(c.token)),
      ]);
      const gone = new Set(deleted.map((row) => `${row.shard}:${row.token}`));
      const changes: WireChange[] = deleted.map((row) => ['c-', row.shard, row.token] as const);
      const released = chunk.map(({ shard, token }) => gone.delete(`${shard}:${token}`));
      return { value: released, changes };
    });
    results.push(...value);
  }
  return results;
}
