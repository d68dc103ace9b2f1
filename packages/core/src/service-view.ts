/**
 * The cached view of a service, kept the way a Kubernetes informer keeps
 * one, in client-go's rooms (`tools/cache`): the {@link Reflector} lists
 * once and then follows the watch, applying each change in revision order,
 * and re-lists only on a gap, a reset, or a periodic version check that
 * disagrees; the store, {@link ServiceView}, holds members and claims as of
 * one revision behind a few narrow methods; the processing (planning and
 * acting on it) is the resolver's, in `resolver.ts`.
 *
 * @module
 */

import { type Clock, systemClock } from './clock.js';
import type {
  Claim,
  ClaimRef,
  Discovery,
  DiscoveryEvent,
  InvalidRecord,
  Member,
  Snapshot,
} from './discovery/contract.js';
import { ShardCountMismatchError } from './errors.js';
import { ensureGroup } from './group.js';
import type { CompiledWorkerOptions } from './options.js';

// ── the store ──────────────────────────────────────────────────────────────

/** Order of the view: join order, then id. */
export function compareMembers(a: Member, b: Member): number {
  return a.joinSeq - b.joinSeq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Outcome of {@link ServiceView.apply}. */
export type ApplyResult = 'applied' | 'stale' | 'relist';

function revisionNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * How a shard this replica claims came to be free, as its view saw it:
 * - `handoff`: its previous claim was released (a rebalance or a graceful
 *   stop), or its owner left while draining;
 * - `failover`: its owner left holding it (crashed or lost its lease; also a
 *   stop whose handlers settled within 20 ms, which revokes the lease at once);
 * - `vacant`: this replica never saw it owned (a new service, or it was free
 *   in the first listing);
 * - `adopted`: the backend already held a claim of this replica for it.
 */
export type AcquireReason = 'handoff' | 'failover' | 'vacant' | 'adopted';

/** How this replica came by a shard it claimed. */
export interface Acquisition {
  readonly reason: AcquireReason;
  /**
   * How long the shard had been free when this replica's claim succeeded, ms,
   * from the change that freed it as this replica saw it (for `failover`, the
   * backend's wait for the dead owner's lease to expire comes before that);
   * `undefined` for `vacant` and `adopted`.
   */
  readonly vacantMs: number | undefined;
}

/** When and how a shard lost its owner, as a view saw it. */
export interface Vacancy {
  /** Monotonic time ({@link Clock}) of the change that freed it. */
  readonly since: number;
  readonly reason: 'handoff' | 'failover';
}

/** Members and claims of one service as of one revision. */
export class ServiceView {
  revision: number;
  /** The value {@link Discovery.version} answers while nothing changed; `undefined` when unknown. */
  version: string | undefined;
  readonly shardCount: number | undefined;
  readonly groupAgeMs: number | undefined;
  readonly invalid: readonly InvalidRecord[];
  readonly members = new Map<string, Member>();
  readonly claims = new Map<number, Claim>();
  /** `version` follows `revision` (the backend's version is its revision). */
  readonly #versionIsRevision: boolean;
  #sorted: Member[] | undefined;
  /** Shards freed while this view followed the service (removed when claimed again). */
  readonly #vacated = new Map<number, Vacancy>();
  readonly #clock: Clock;

  private constructor(snapshot: Snapshot, revision: number, clock: Clock) {
    this.#clock = clock;
    this.revision = revision;
    this.#versionIsRevision = snapshot.version === undefined;
    this.version = snapshot.version ?? snapshot.revision;
    this.shardCount = snapshot.shardCount;
    this.groupAgeMs = snapshot.groupAgeMs;
    this.invalid = snapshot.invalid;
    for (const m of snapshot.members) this.members.set(m.id, withoutExpiry(m));
    for (const c of snapshot.claims) if (this.members.has(c.owner)) this.claims.set(c.shard, c);
  }

  /** The view of a snapshot; `undefined` when its revision is not a decimal integer. */
  static fromSnapshot(snapshot: Snapshot, clock: Clock = systemClock): ServiceView | undefined {
    const revision = revisionNumber(snapshot.revision);
    return revision === undefined ? undefined : new ServiceView(snapshot, revision, clock);
  }

  /**
   * Carry over what `older` knew of shards that are free in this (newer)
   * listing; a shard that `older` saw owned and this listing sees free was
   * freed in between: by a release if its owner is still listed, else by the
   * owner leaving.
   */
  inheritVacancies(older: ServiceView): void {
    const now = this.#clock.now();
    for (const [shard, vacancy] of older.#vacated) if (!this.claims.has(shard)) this.#vacated.set(shard, vacancy);
    for (const [shard, claim] of older.claims) {
      if (this.claims.has(shard) || this.#vacated.has(shard)) continue;
      const owner = this.members.get(claim.owner);
      const reason = owner !== undefined || older.members.get(claim.owner)?.draining === true ? 'handoff' : 'failover';
      this.#vacated.set(shard, { since: now, reason });
    }
  }

  /** How `shard` came to be free, and how long ago (ms); `vacant` when this view never saw it owned. */
  vacancy(shard: number): Acquisition {
    const v = this.#vacated.get(shard);
    return v === undefined
      ? { reason: 'vacant', vacantMs: undefined }
      : { reason: v.reason, vacantMs: Math.max(0, this.#clock.now() - v.since) };
  }

  /** Live members sorted by `(joinSeq, id)`. */
  sorted(): readonly Member[] {
    this.#sorted ??= [...this.members.values()].sort(compareMembers);
    return this.#sorted;
  }

  /**
   * Apply a watch event: `applied` when its changes follow on from this view,
   * `stale` when the view already includes them, `relist` when the event
   * carries no changes or something was missed in between.
   */
  apply(event: DiscoveryEvent): ApplyResult {
    if (event.type !== 'change' || event.changes === undefined) return 'relist';
    const revision = revisionNumber(event.revision);
    const previous = revisionNumber(event.previous);
    if (revision === undefined || previous === undefined) return 'relist';
    if (revision <= this.revision) return 'stale';
    if (previous > this.revision) return 'relist';
    for (const change of event.changes) {
      switch (change.type) {
        case 'member:put':
          this.members.set(change.member.id, withoutExpiry(change.member));
          this.#sorted = undefined;
          break;
        case 'member:removed':
          this.#removeMember(change.id);
          break;
        case 'claim:put':
          this.claimed(change.claim);
          break;
        case 'claim:removed':
          if ('tokenBelow' in change) {
            const held = this.claims.get(change.shard);
            if (held !== undefined && held.token < change.tokenBelow) this.#free(change.shard, 'handoff');
          } else this.released(change);
          break;
      }
    }
    this.revision = revision;
    this.version = this.#versionIsRevision ? String(revision) : undefined;
    return 'applied';
  }

  /**
   * Record a claim this replica just made (its change event may come later;
   * applying it twice is harmless). Claims of members not in the view are
   * left out, as in a listing: nobody would ever release them here.
   */
  claimed(claim: Claim): void {
    if (!this.members.has(claim.owner)) return;
    this.claims.set(claim.shard, claim);
    this.#vacated.delete(claim.shard);
  }

  /** Forget a claim if it still has `token`. */
  released(ref: ClaimRef): void {
    if (this.claims.get(ref.shard)?.token === ref.token) this.#free(ref.shard, 'handoff');
  }

  #free(shard: number, reason: Vacancy['reason']): void {
    this.claims.delete(shard);
    this.#vacated.set(shard, { since: this.#clock.now(), reason });
  }

  #removeMember(id: string): void {
    const member = this.members.get(id);
    if (member === undefined) return;
    this.members.delete(id);
    this.#sorted = undefined;
    const reason = member.draining === true ? 'handoff' : 'failover';
    for (const [shard, claim] of this.claims) if (claim.owner === id) this.#free(shard, reason);
  }
}

function withoutExpiry(member: Member): Member {
  if (member.expiresInMs === undefined) return member;
  const { expiresInMs: _, ...rest } = member;
  return rest;
}

// ── list and watch ─────────────────────────────────────────────────────────

/** Where a {@link Reflector} reports what it met in the backend. */
export interface ListingReports {
  /** A call failed (the periodic version check). */
  error(error: unknown): void;
  /** Records of the last listing that could not be parsed. */
  invalid(records: readonly InvalidRecord[]): void;
  /** Garbage records the group check repaired. */
  repaired(records: readonly InvalidRecord[]): void;
}

/** How many backend calls of each kind a {@link Reflector} made. */
export interface ReflectorCounters {
  snapshots: number;
  versionChecks: number;
  deltas: number;
}

/** What a {@link Reflector} needs. */
export interface ReflectorHost {
  readonly options: CompiledWorkerOptions;
  readonly discovery: Discovery;
  readonly reports: ListingReports;
  /** Counted into (shared with the resolver's own counts). */
  readonly counters: ReflectorCounters;
  /**
   * The view changed, or needs a listing: process it (a reconcile pass).
   * Resolves once processed; the periodic check waits for it.
   */
  changed(): Promise<void>;
  /** A listing read the group record; its age by the backend's clock, when the backend reports one. */
  groupListed(groupAgeMs: number | undefined): void;
}

/**
 * Lists a service and follows its watch into a {@link ServiceView}. Changes
 * that arrive while a listing is in flight are buffered and applied on top
 * of it (the ones it already includes are stale). A backend whose revisions
 * are not numbers cannot be followed by deltas: it stays stale, listed on every pass.
 */
export class Reflector {
  readonly #host: ReflectorHost;
  #view: ServiceView | undefined;
  #needsList = true;
  /** Events that arrive while a listing is in flight, applied on top of it once it is in. */
  #buffered: DiscoveryEvent[] | undefined;
  #unwatch: (() => void) | undefined;
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(host: ReflectorHost) {
    this.#host = host;
  }

  /** The view as of the last listing and the changes since; `undefined` before the first listing. */
  get view(): ServiceView | undefined {
    return this.#view;
  }

  /** Subscribe to changes and start the periodic version check. */
  start(): void {
    const o = this.#host.options;
    this.#unwatch = this.#host.discovery.watch(o.service, (event) => this.#onEvent(event));
    this.#scheduleResync();
  }

  /** Unsubscribe and stop the version check. */
  stop(): void {
    this.#stopped = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    clearTimeout(this.#resyncTimer);
  }

  /** Make the view {@link Reflector.stale} (a new registration, or anything that casts doubt on the cache). */
  invalidate(): void {
    this.#needsList = true;
  }

  /** Whether the view is missing or in doubt: {@link Reflector.list} before relying on it. */
  get stale(): boolean {
    return this.#needsList || this.#view === undefined;
  }

  /**
   * List the service into a new view. Changes that arrive meanwhile are
   * applied on top of it, and those that need processing call
   * {@link ReflectorHost.changed}, even when the listing fails.
   */
  async list(): Promise<void> {
    this.#buffered = [];
    let listed: ServiceView | undefined;
    try {
      listed = await this.#snapshot();
    } finally {
      const buffered = this.#buffered;
      this.#buffered = undefined;
      if (listed !== undefined) {
        if (this.#view !== undefined) listed.inheritVacancies(this.#view);
        this.#view = listed;
      }
      // Changes made while the listing was in flight: the ones it already includes are stale.
      for (const event of buffered) if (this.#follow(event)) void this.#host.changed();
    }
  }

  #onEvent(event: DiscoveryEvent): void {
    if (this.#stopped) return;
    if (this.#buffered !== undefined) {
      this.#buffered.push(event);
      return;
    }
    if (this.#follow(event)) void this.#host.changed();
  }

  /** Apply an event to the view; true when it needs processing. */
  #follow(event: DiscoveryEvent): boolean {
    const view = this.#view;
    const result = view === undefined || this.#needsList ? 'relist' : view.apply(event);
    if (result === 'stale') return false;
    if (result === 'relist') this.#needsList = true;
    else this.#host.counters.deltas += 1;
    return true;
  }

  /** Every `resyncIntervalMs` (±10 %), compare versions; re-list only when they differ. */
  #scheduleResync(): void {
    const interval = this.#host.options.resyncIntervalMs;
    this.#resyncTimer = setTimeout(() => void this.#resync(), interval * (0.9 + Math.random() * 0.2));
    this.#resyncTimer.unref?.();
  }

  async #resync(): Promise<void> {
    if (this.#stopped) return;
    try {
      const view = this.#view;
      if (view !== undefined && !this.#needsList && view.version !== undefined) {
        this.#host.counters.versionChecks += 1;
        const version = await this.#host.discovery.version(this.#host.options.service);
        if (version === view.version || this.#view !== view) return;
      }
      this.#needsList = true;
      await this.#host.changed();
    } catch (error) {
      this.#host.reports.error(error);
    } finally {
      if (!this.#stopped) this.#scheduleResync();
    }
  }

  async #snapshot(): Promise<ServiceView | undefined> {
    const { discovery, options: o, reports } = this.#host;
    this.#host.counters.snapshots += 1;
    const snapshot = await discovery.snapshot(o.service);
    reports.invalid(snapshot.invalid);
    if (snapshot.shardCount === undefined) {
      // The backend lost its data (e.g. a Redis restart, our member is gone
      // too) or holds garbage: recreate or repair the group record.
      await ensureGroup(discovery, o, (records) => reports.repaired(records));
    } else if (snapshot.shardCount !== o.shardCount) {
      throw new ShardCountMismatchError(o.service, snapshot.shardCount, o.shardCount, o.subject);
    }
    const view = ServiceView.fromSnapshot(snapshot, o.clock);
    // A backend whose revisions are not numbers cannot be followed by deltas: list every pass.
    this.#needsList = view === undefined;
    this.#host.groupListed(snapshot.groupAgeMs);
    return view ?? ServiceView.fromSnapshot({ ...snapshot, revision: '0' }, o.clock);
  }
}
