/**
 * Fencing tokens of the etcd backend: `createRevision × 1000 + shard mod 1000`.
 *
 * A claim batch is one etcd transaction, and every key one transaction
 * creates gets the same create revision. The revision alone would therefore
 * hand one token to several shards' owners, and a store that fences one
 * resource written by the owners of several shards would accept two writers
 * holding it. So the token also carries the shard's *slot*, `shard mod 1000`,
 * and a transaction never claims two shards of one slot ({@link slotChunks}):
 *
 * - tokens of one transaction differ, since their slots differ;
 * - a later transaction has a higher revision, and a slot is below 1000, so
 *   each of its tokens exceeds every token of every earlier one;
 * - a token is read back from the key alone (its create revision and shard),
 *   so listings, watch events and the compares of a release need nothing
 *   stored beside the owner id.
 *
 * Tokens stay exact numbers up to revision {@link MAX_TOKEN_REVISION}
 * (9,007,199,254,739: 2^53 / 1000); a claim created later is refused rather
 * than given a rounded token. At 10,000 writes a second that revision is
 * 28 years away. Decimal on purpose: token 6003 reads as revision 6, shard 3.
 *
 * @module
 */

/** Tokens per revision: the most claims one transaction holds, and the slot modulus. */
export const TOKENS_PER_REVISION = 1000;

/** The highest create revision whose tokens are all exact (below `Number.MAX_SAFE_INTEGER`). */
export const MAX_TOKEN_REVISION = Math.floor(
  (Number.MAX_SAFE_INTEGER - (TOKENS_PER_REVISION - 1)) / TOKENS_PER_REVISION,
);

/** The slot of `shard`: its position in the token of any transaction that claims it. */
function slot(shard: number): number {
  return shard % TOKENS_PER_REVISION;
}

/**
 * The token of the claim of `shard` created at `createRevision` (etcd3
 * returns int64 as decimal strings); `undefined` beyond {@link MAX_TOKEN_REVISION}.
 */
export function claimToken(createRevision: string | number, shard: number): number | undefined {
  const revision = Number(createRevision);
  if (!Number.isSafeInteger(revision) || revision < 1 || revision > MAX_TOKEN_REVISION) return undefined;
  return revision * TOKENS_PER_REVISION + slot(shard);
}

/**
 * The create revision of the claim of `shard` that holds `token`;
 * `undefined` when no claim of `shard` can hold it (another slot).
 */
export function claimRevision(token: number, shard: number): number | undefined {
  if (!Number.isSafeInteger(token) || token % TOKENS_PER_REVISION !== slot(shard)) return undefined;
  const revision = Math.floor(token / TOKENS_PER_REVISION);
  return revision >= 1 ? revision : undefined;
}

/**
 * The `tokenBelow` of a claim deleted at `modRevision`: that claim was
 * created at an earlier revision, so its token is below `modRevision × 1000`,
 * and any claim created at or after the deletion has a token at least that
 * high. Capped at the first revision past the exact range, whose tokens are
 * never handed out, so the value stays exact.
 */
export function tokenBelow(modRevision: string | number): number {
  return Math.min(Number(modRevision), MAX_TOKEN_REVISION + 1) * TOKENS_PER_REVISION;
}

/**
 * Split `shards` (distinct) into transactions of at most `size` shards
 * without two of one slot: the n-th shard of a slot goes to the n-th layer,
 * and each layer, in the order given, is cut into chunks. Shards of one slot
 * are 1000 apart, so a service below 1000 shards is cut exactly as by size alone.
 */
export function slotChunks(shards: readonly number[], size: number): number[][] {
  const perSlot = new Map<number, number>();
  const layers: number[][] = [];
  for (const shard of shards) {
    const depth = perSlot.get(slot(shard)) ?? 0;
    perSlot.set(slot(shard), depth + 1);
    let layer = layers[depth];
    if (layer === undefined) {
      layer = [];
      layers[depth] = layer;
    }
    layer.push(shard);
  }
  const chunks: number[][] = [];
  const step = Math.min(size, TOKENS_PER_REVISION);
  for (const layer of layers) {
    for (let i = 0; i < layer.length; i += step) chunks.push(layer.slice(i, i + step));
  }
  return chunks;
}
