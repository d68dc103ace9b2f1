/**
 * A change of a service is one transaction, always in this order: lock the
 * service's row (so changes of one service are serialized and their
 * revisions increase in commit order), reap the members whose lease ran out
 * by the server's clock (with their claims), do the change, then bump the
 * revision from the `revisions` sequence and NOTIFY the service's channel
 * with the previous revision, the new one and the changes, all at commit.
 * A change that changed nothing rolls back: no write, no revision, no
 * notification.
 *
 * @module
 */

import type { Database } from './database.js';
import type { ServiceRecords } from './keys.js';
import type { Query } from './query.js';
import { encodeChanges, type WireChange } from './records.js';
import type { Statements } from './statements.js';

/** What a change needs to know of its backend. */
export interface ChangeContext {
  readonly db: Database;
  readonly sql: Statements;
  records(service: string): ServiceRecords;
}

/** The state of the service row when the change took its lock. */
export interface Locked {
  /** Revision before this change. */
  readonly previous: string;
  /** The group record, `null` when there is none. */
  readonly settings: string | null;
}

/** What the work of a change did. */
export interface ChangeOutcome<T> {
  readonly value: T;
  /** The changes to announce; `undefined` with `changed`: a hint (watchers re-list). */
  readonly changes?: readonly WireChange[] | undefined;
  /** Something changed that has no delta (a group record, a repair): announce a hint. */
  readonly hint?: boolean;
}

/** The revision after a change and its value; `revision` is `undefined` when nothing changed. */
export interface Changed<T> {
  readonly value: T;
  readonly revision: string | undefined;
}

/** Run `work` as a change of `service`: see the module documentation. */
export function changeService<T>(
  ctx: ChangeContext,
  service: string,
  work: (query: Query, locked: Locked) => Promise<ChangeOutcome<T>>,
): Promise<Changed<T>> {
  const records = ctx.records(service);
  return ctx.db.transaction(async (query) => {
    const [row] = await query<{ revision: string; settings: string | null }>(ctx.sql.lock, [service]);
    const locked: Locked = { previous: row?.revision ?? '0', settings: row?.settings ?? null };
    const reaped = await query<{ id: string }>(ctx.sql.reap, [service]);
    const outcome = await work(query, locked);
    const removed: WireChange[] = reaped.map((r) => ['m-', r.id] as const);
    const hint = outcome.hint === true;
    const changes = hint ? undefined : [...removed, ...(outcome.changes ?? [])];
    if (changes !== undefined && changes.length === 0)
      return { value: { value: outcome.value, revision: undefined }, commit: false };
    const [bumped] = await query<{ revision: string }>(ctx.sql.bump, [
      service,
      records.channel,
      locked.previous,
      encodeChanges(changes),
    ]);
    return { value: { value: outcome.value, revision: bumped?.revision }, commit: true };
  });
}

/** What a reap found: the revision after it, and when the next lease of the service runs out. */
export interface ReapResult {
  readonly revision: string;
  /** ms until the earliest remaining lease runs out; `undefined` without members. */
  readonly nextExpiryMs: number | undefined;
}

/**
 * Reap the expired members of `service` (announcing their removal), and say
 * when the next lease runs out. A service without a row has nothing to reap,
 * and gets none.
 */
export async function reapService(ctx: ChangeContext, service: string, expiry = true): Promise<ReapResult> {
  const [state] = await ctx.db.run((query) =>
    query<{ revision: string | null; expired: boolean }>(ctx.sql.version, [service]),
  );
  let revision = state?.revision ?? '0';
  if (state?.expired === true) {
    const changed = await changeService(ctx, service, async () => ({ value: undefined }));
    revision = changed.revision ?? (await currentRevision(ctx, service));
  }
  if (!expiry) return { revision, nextExpiryMs: undefined };
  const [next] = await ctx.db.run((query) => query<{ ms: number | null }>(ctx.sql.nextExpiry, [service, '']));
  return { revision, nextExpiryMs: next?.ms === null || next?.ms === undefined ? undefined : Math.max(0, next.ms) };
}

async function currentRevision(ctx: ChangeContext, service: string): Promise<string> {
  const [row] = await ctx.db.run((query) => query<{ revision: string | null }>(ctx.sql.version, [service]));
  return row?.revision ?? '0';
}
