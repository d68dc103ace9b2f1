/**
 * The PostgreSQL discovery backend: one {@link PostgresDiscovery} is a pool
 * of statement connections plus, once somebody watches, one LISTEN
 * connection. Leases are timed by the server's clock; every change of a
 * service is one transaction that first reaps the members whose lease ran
 * out (`changes.ts`), claims live in `claims.ts`, the tables in
 * `migrations.ts`, notifications and the expiry timer in `watch.ts`.
 *
 * @module
 */

import {
  type ClaimBatch,
  type ClaimRef,
  type Discovery,
  type DiscoveryListener,
  type EnsureGroupOptions,
  type GroupSettings,
  InvalidOptionsError,
  LeaseExpiredError,
  type MemberInfo,
  type Registration,
  type RenewResult,
  ServiceRunningError,
  type Snapshot,
  type StoredGroup,
} from '@shardwork/core';
import { encodeMemberRecord } from '@shardwork/core/backend';
import { type ChangeContext, changeService, reapService } from './changes.js';
import { checkShard, claimMany, releaseMany } from './claims.js';
import { Database } from './database.js';
import { checkGroup, planSettings, readSettings } from './group.js';
import { checkService, type ServiceRecords, serviceRecords } from './keys.js';
import { Listener } from './listener.js';
import { quotedSchema } from './migrate.js';
import { type CompiledPostgresOptions, compilePostgresOptions, type PostgresDiscoveryOptions } from './options.js';
import { type ClaimRow, type MemberRow, parseRows, type WireChange } from './records.js';
import { type Statements, statements } from './statements.js';
import { ServiceWatches } from './watch.js';

interface SnapshotRow {
  readonly revision: string | null;
  readonly settings: string | null;
  readonly members: MemberRow[];
  readonly claims: ClaimRow[];
}

/**
 * A {@link Discovery} backed by PostgreSQL (≥ 12; tested with 15).
 *
 * ```ts
 * const discovery = new PostgresDiscovery({ url: 'postgres://worker@db.internal:5432/app?schema=sw&sslmode=verify-full' });
 * await discovery.ensureGroup('billing-sync', { shardCount: 8, leaseTtlMs: 10_000 });
 * ```
 */
export class PostgresDiscovery implements Discovery {
  /** Backend kind for messages. */
  readonly kind = 'postgres';
  readonly #options: CompiledPostgresOptions;
  readonly #db: Database;
  readonly #sql: Statements;
  readonly #ctx: ChangeContext;
  readonly #listener: Listener;
  readonly #watches: ServiceWatches;
  #closed = false;

  constructor(options: PostgresDiscoveryOptions = {}) {
    this.#options = compilePostgresOptions(options);
    this.#db = new Database(this.#options);
    this.#sql = statements(quotedSchema(this.#options.schema));
    this.#ctx = { db: this.#db, sql: this.#sql, records: (service) => this.records(service) };
    this.#listener = new Listener(this.#options.connection, {
      notification: (channel, payload) => this.#watches.notification(channel, payload),
      live: (channel, reconnected) => this.#watches.live(channel, reconnected),
    });
    // After an outage, make sure the LISTEN connection survived it too.
    this.#db.onRecovered = () => this.#listener.probe();
    this.#watches = new ServiceWatches(
      { channel: (service) => this.records(service).channel, reap: (service) => reapService(this.#ctx, service) },
      this.#listener,
    );
  }

  /** Schema of the tables in use. */
  get schema(): string {
    return this.#options.schema;
  }

  /** Where it connects, without secrets. */
  get target(): string {
    return this.#options.target;
  }

  /** The names of the records and the channel of `service` (for tooling and tests). */
  records(service: string): ServiceRecords {
    return serviceRecords(this.#options.schema, service);
  }

  async ensureGroup(service: string, group: GroupSettings, options: EnsureGroupOptions = {}): Promise<StoredGroup> {
    const settings = checkGroup(group);
    const key = this.records(service).group;
    const { value } = await changeService(this.#ctx, service, async (query, locked) => {
      const plan = planSettings(key, locked.settings, settings, options.replaceInvalid === true);
      if (plan.write === undefined) return { value: plan.stored };
      await query(this.#sql.writeGroup, [service, plan.write]);
      // The shard count is only in snapshots: watchers re-list.
      return { value: plan.stored, hint: true };
    });
    return value;
  }

  async register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    checkService(service);
    if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > 2 ** 31 - 1) {
      throw new InvalidOptionsError('ttlMs', ttlMs, 'a whole number of milliseconds >= 1');
    }
    if (typeof member?.id !== 'string' || member.id === '') {
      throw new InvalidOptionsError('member.id', member?.id, 'a non-empty string');
    }
    const record = encodeMemberRecord(member);
    const { value } = await changeService(this.#ctx, service, async (query) => {
      const [row] = await query<{ join_seq: string }>(this.#sql.register, [service, member.id, record, ttlMs]);
      const joinSeq = row?.join_seq ?? '0';
      const change: WireChange = ['m+', member.id, record, joinSeq, false, ttlMs];
      return { value: { joinSeq: Number(joinSeq) }, changes: [change] };
    });
    return value;
  }

  /**
   * One statement: extend the lease by the server's clock (only while it
   * lives: an expired member is never resurrected), and find the held claims
   * that are not the member's any more; those are returned as lost and
   * announced as a hint, so that every watcher re-lists. The reply also says
   * when the next lease of another member runs out, which re-arms the expiry timer.
   */
  async renew(service: string, memberId: string, held: readonly ClaimRef[] = []): Promise<RenewResult> {
    checkService(service);
    const shards = held.map(({ shard }) => checkShard(shard));
    const tokens = held.map(({ token }) => {
      if (typeof token !== 'number' || !Number.isSafeInteger(token)) {
        throw new InvalidOptionsError('token', token, 'an integer');
      }
      return String(token);
    });
    const [row] = await this.#db.run((query) =>
      query<{ renewed: number; next_ms: number | null; lost: [number, string][] }>(this.#sql.renew, [
        service,
        memberId,
        shards,
        tokens,
      ]),
    );
    if (row === undefined || row.renewed !== 1) throw new LeaseExpiredError(memberId);
    this.#watches.observeExpiry(service, row.next_ms ?? undefined);
    const lost = row.lost.map(([shard, token]) => ({ shard, token: Number(token) }));
    if (lost.length > 0) await changeService(this.#ctx, service, async () => ({ value: undefined, hint: true }));
    return { lost };
  }

  async unregister(service: string, memberId: string): Promise<void> {
    checkService(service);
    await changeService(this.#ctx, service, async (query) => {
      const gone = await query<{ id: string }>(this.#sql.unregister, [service, memberId]);
      return { value: undefined, changes: gone.map((r): WireChange => ['m-', r.id]) };
    });
  }

  async drain(service: string, memberId: string): Promise<void> {
    checkService(service);
    await changeService(this.#ctx, service, async (query) => {
      const [row] = await query<{ record: string; join_seq: string; draining: boolean; ttl_ms: number }>(
        this.#sql.member,
        [service, memberId],
      );
      if (row === undefined) throw new LeaseExpiredError(memberId);
      if (row.draining) return { value: undefined };
      await query(this.#sql.drain, [service, memberId]);
      const change: WireChange = ['m+', memberId, row.record, row.join_seq, true, row.ttl_ms];
      return { value: undefined, changes: [change] };
    });
  }

  /** One transaction: refuse while a member lives, else delete the claims and clear the group record. */
  async forgetService(service: string): Promise<boolean> {
    checkService(service);
    const { value } = await changeService(this.#ctx, service, async (query) => {
      const live = await query<{ id: string }>(this.#sql.memberIds, [service]);
      if (live.length > 0) {
        throw new ServiceRunningError(
          service,
          live.map((r) => r.id),
        );
      }
      const claims = await query(this.#sql.forgetClaims, [service]);
      const group = await query(this.#sql.forgetGroup, [service]);
      const forgotten = claims.length > 0 || group.length > 0;
      return { value: forgotten, hint: forgotten };
    });
    return value;
  }

  /**
   * Members, claims and the group record in one statement (one MVCC
   * snapshot). Should a member have expired that nobody reaped yet, it is
   * reaped first (a change, announced), so that a revision always stands
   * for one content.
   */
  async snapshot(service: string): Promise<Snapshot> {
    const records = this.records(service);
    // A listing taken before this instance's LISTEN is live would miss what happens in between.
    await this.#watches.whenLive(service, this.#options.callTimeoutMs);
    let row = await this.#read(service);
    if (row.members.some((m) => Number(m.expires_in_ms) <= 0)) {
      await changeService(this.#ctx, service, async () => ({ value: undefined }));
      row = await this.#read(service);
    }
    const parsed = parseRows(records, row.members, row.claims);
    const group =
      row.settings === null ? { shardCount: undefined, invalid: [] } : readSettings(records.group, row.settings);
    const live = row.members.map((m) => Number(m.expires_in_ms)).filter((ms) => ms > 0);
    this.#watches.observeExpiry(service, live.length > 0 ? Math.min(...live) : undefined);
    return {
      revision: row.revision ?? '0',
      shardCount: group.shardCount,
      members: parsed.members,
      claims: parsed.claims,
      invalid: [...group.invalid, ...parsed.invalid],
    };
  }

  async #read(service: string): Promise<SnapshotRow> {
    const [row] = await this.#db.run((query) => query<SnapshotRow>(this.#sql.snapshot, [service]));
    return row ?? { revision: null, settings: null, members: [], claims: [] };
  }

  /** Services with a group record in this schema, sorted. */
  async services(): Promise<readonly string[]> {
    const rows = await this.#db.run((query) => query<{ service: string }>(this.#sql.services));
    return rows.map((r) => r.service);
  }

  async version(service: string): Promise<string> {
    checkService(service);
    // One statement while no lease ran out unnoticed; else the reap (a change) first.
    return (await reapService(this.#ctx, service, false)).revision;
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    checkService(service);
    if (this.#closed) return () => undefined;
    return this.#watches.watch(service, listener);
  }

  claimMany(service: string, memberId: string, shards: readonly number[]): Promise<ClaimBatch> {
    checkService(service);
    return claimMany(this.#ctx, service, memberId, shards);
  }

  releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]> {
    checkService(service);
    return releaseMany(this.#ctx, service, memberId, claims);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watches.close();
    await Promise.all([this.#listener.close(), this.#db.close()]);
  }

  /** `await using discovery = new PostgresDiscovery(…)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Create a {@link PostgresDiscovery} from a `postgres://` or `postgresql://`
 * URL; what `createDiscovery()` of `@shardwork/core` calls for those protocols.
 *
 * @example `discoveryFromUrl('postgres://worker:s3cret@db.internal:5432/app?schema=sw&sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem')`
 */
export function discoveryFromUrl(url: string): PostgresDiscovery {
  return new PostgresDiscovery({ url });
}
