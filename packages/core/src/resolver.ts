/**
 * The resolver: a cached view of the service kept up to date the way a
 * Kubernetes informer does (list once, then apply the watch's changes in
 * revision order; re-list only on a gap, a reset, or a periodic version check
 * that disagrees), and the reconcile loop around a pure planning function,
 * {@link plan}: revoke before assign, claims and releases batched into one
 * request per pass.
 *
 * @module
 */

import { type AssignmentStrategy, computeAssignment } from './assignment.js';
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
import { LeaseExpiredError, ShardCountMismatchError } from './errors.js';
import { ensureGroup } from './group.js';
import type { HoldBackReason } from './hold-back.js';
import type { Lease } from './lease.js';
import type { CompiledWorkerOptions } from './options.js';

// ── the pure part ──────────────────────────────────────────────────────────

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

/** Order of the view: join order, then id. */
export function compareMembers(a: Member, b: Member): number {
  return a.joinSeq - b.joinSeq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

// ── the cached view ────────────────────────────────────────────────────────

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

// ── the loop ───────────────────────────────────────────────────────────────

/** A request this soon after the last pass is part of a burst. */
const BURST_WINDOW_MS = 50;
/** During a burst, a pass waits until no request came for this long… */
const QUIET_MS = 2;
/** …but at most this many times the duration of the last planning step, within the bounds below. */
const DEFER_PER_PLAN_MS = 100;
const MIN_DEFER_MS = 100;
const MAX_DEFER_MS = 250;

/** What the resolver needs from its worker. */
export interface ResolverHost {
  readonly options: CompiledWorkerOptions;
  readonly discovery: Discovery;
  /** The held lease, if any. */
  lease(): Lease | undefined;
  /** Whether passes may run (the worker is running). */
  running(): boolean;
  /** Synchronous ownership check of a registration. */
  holds(instance: string): boolean;
  /** This replica's runs by shard. */
  runs(): ReadonlyMap<number, PlannedRun>;
  /** The member is missing from the backend: the lease is lost. */
  fence(lease: Lease, detail: string): void;
  /** A claim is ours: start its run. */
  acquire(shard: number, token: number, instance: string, how: Acquisition): void;
  /** Revoke a run in the background (drain, then release when `reason` is rebalance). */
  revoke(shard: number, reason: 'rebalance' | 'claim-lost'): void;
  /** Give claims back (batched by the worker). */
  release(instance: string, claims: readonly ClaimRef[]): void;
  /** The view changed (or may have): members and ownership. */
  viewUpdated(view: readonly Member[]): void;
  /** A pass finished. */
  passed(): void;
  reportError(error: unknown): void;
  /** Records of the last listing that could not be parsed. */
  listedInvalid(records: readonly InvalidRecord[]): void;
  /** Garbage records the backend or the group check repaired. */
  repaired(records: readonly InvalidRecord[]): void;
  /**
   * Claims are held back until monotonic time `until` (a new hold-back, or
   * one moved markedly later); `groupAgeMs` for a young group.
   */
  heldBack(reason: HoldBackReason, until: number, groupAgeMs: number | undefined): void;
}

/** How many backend calls of each kind the resolver made (for tests and benchmarks). */
export interface ResolverCounters {
  snapshots: number;
  versionChecks: number;
  deltas: number;
  passes: number;
}

/** The reconcile loop of one worker. */
export class Resolver {
  readonly #host: ResolverHost;
  #view: ServiceView | undefined;
  #needsList = true;
  /** Events that arrive while a listing is in flight, applied on top of it once it is in. */
  #buffered: DiscoveryEvent[] | undefined;
  #unwatch: (() => void) | undefined;
  #passing: Promise<void> | undefined;
  #dirty = false;
  /** A pass put off during a burst of requests. */
  #deferred:
    | { since: number; promise: Promise<void>; resolve: () => void; timer: ReturnType<typeof setTimeout> | undefined }
    | undefined;
  #lastPassEnd = Number.NEGATIVE_INFINITY;
  /** How long the last planning step took, ms: a burst defers passes longer when planning is costly. */
  #planMs = 0;
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Monotonic time before which this replica must not claim, and why. */
  #claimsBlockedUntil = Number.NEGATIVE_INFINITY;
  #heldBack: { reason: HoldBackReason; until: number } | undefined;
  #stopped = false;
  /** Counts of what the loop did. */
  readonly counters: ResolverCounters = { snapshots: 0, versionChecks: 0, deltas: 0, passes: 0 };

  constructor(host: ResolverHost) {
    this.#host = host;
  }

  /** Live members in view order (empty before the first listing). */
  get members(): readonly Member[] {
    return this.#view?.sorted() ?? [];
  }

  /** Subscribe to changes and start the periodic version check. */
  start(): void {
    const o = this.#host.options;
    this.#unwatch = this.#host.discovery.watch(o.service, (event) => this.#onEvent(event));
    this.#scheduleResync();
  }

  /** No more passes; waits for the one in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    clearTimeout(this.#resyncTimer);
    clearTimeout(this.#retryTimer);
    const deferred = this.#deferred;
    this.#deferred = undefined;
    if (deferred !== undefined) {
      clearTimeout(deferred.timer);
      deferred.resolve();
    }
    await this.#passing?.catch(() => undefined);
  }

  /**
   * Claim nothing before monotonic time `until` (a backend that lost data:
   * older owners may still act). The worker is told of each new hold-back,
   * and of one moved later by more than a tenth of the TTL (a young group's
   * end, recomputed at every listing, jitters by a round trip).
   */
  blockClaimsUntil(until: number, reason: HoldBackReason, groupAgeMs?: number): void {
    if (until <= this.#claimsBlockedUntil) return;
    const now = this.#host.options.clock.now();
    const told = this.#heldBack;
    this.#claimsBlockedUntil = until;
    const news =
      told === undefined ||
      told.until <= now ||
      told.reason !== reason ||
      until - told.until > this.#host.options.leaseTtlMs / 10;
    if (!news) return;
    this.#heldBack = { reason, until };
    this.#host.heldBack(reason, until, groupAgeMs);
  }

  /** Re-list on the next pass (a new registration, or anything that casts doubt on the cache). */
  invalidate(): void {
    this.#needsList = true;
  }

  /**
   * Ask for a reconcile pass. An isolated request runs one at once; requests
   * that arrive while a pass runs are merged into one more pass; and during a
   * burst (a request within {@link BURST_WINDOW_MS} of the last pass) the pass
   * waits for {@link QUIET_MS} without further requests, at most a bounded
   * time that grows with the cost of planning, so that a storm of changes
   * costs a few passes instead of one per change.
   */
  request(): Promise<void> {
    if (this.#stopped || !this.#host.running()) return Promise.resolve();
    if (this.#passing !== undefined) {
      this.#dirty = true;
      return this.#passing;
    }
    const now = this.#host.options.clock.now();
    if (this.#deferred === undefined && now - this.#lastPassEnd >= BURST_WINDOW_MS) return this.#runPass();
    return this.#defer(now);
  }

  #defer(now: number): Promise<void> {
    let deferred = this.#deferred;
    if (deferred === undefined) {
      let resolve = (): void => undefined;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      deferred = { since: now, promise, resolve, timer: undefined };
      this.#deferred = deferred;
    }
    clearTimeout(deferred.timer);
    const longest = Math.min(MAX_DEFER_MS, Math.max(MIN_DEFER_MS, DEFER_PER_PLAN_MS * this.#planMs));
    const due = Math.min(now + QUIET_MS, deferred.since + longest);
    const current = deferred;
    current.timer = setTimeout(
      () => {
        if (this.#deferred !== current) return;
        this.#deferred = undefined;
        void this.#runPass().finally(current.resolve);
      },
      Math.max(0, due - now),
    );
    current.timer.unref?.();
    return current.promise;
  }

  #runPass(): Promise<void> {
    this.#passing = (async () => {
      this.#dirty = false;
      try {
        await this.#pass();
      } catch (error) {
        // No re-list for a failed call: a change it made arrives as an event,
        // and a broken watch announces a reset. Re-listing after every timeout
        // would feed an overloaded backend more of what overloads it.
        if (error instanceof LeaseExpiredError) {
          const lease = this.#host.lease();
          if (lease !== undefined) this.#host.fence(lease, 'the backend no longer knows this member');
        } else this.#host.reportError(error);
        this.#retryLater(Math.min(1000, this.#host.options.resyncIntervalMs));
      }
      this.#lastPassEnd = this.#host.options.clock.now();
      this.#host.passed();
    })().finally(() => {
      this.#passing = undefined;
      if (this.#dirty) {
        this.#dirty = false;
        void this.request();
      }
    });
    return this.#passing;
  }

  #onEvent(event: DiscoveryEvent): void {
    if (this.#stopped) return;
    if (this.#buffered !== undefined) {
      this.#buffered.push(event);
      return;
    }
    if (this.#follow(event)) void this.request();
  }

  /** Apply an event to the view; true when a pass is needed. */
  #follow(event: DiscoveryEvent): boolean {
    const view = this.#view;
    const result = view === undefined || this.#needsList ? 'relist' : view.apply(event);
    if (result === 'stale') return false;
    if (result === 'relist') this.#needsList = true;
    else this.counters.deltas += 1;
    return true;
  }

  #retryLater(delay: number): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.request(), delay);
    this.#retryTimer.unref?.();
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
        this.counters.versionChecks += 1;
        const version = await this.#host.discovery.version(this.#host.options.service);
        if (version === view.version || this.#view !== view) return;
      }
      this.#needsList = true;
      await this.request();
    } catch (error) {
      this.#host.reportError(error);
    } finally {
      if (!this.#stopped) this.#scheduleResync();
    }
  }

  async #list(): Promise<ServiceView | undefined> {
    const { discovery, options: o } = this.#host;
    this.counters.snapshots += 1;
    const snapshot = await discovery.snapshot(o.service);
    this.#host.listedInvalid(snapshot.invalid);
    if (snapshot.shardCount === undefined) {
      // The backend lost its data (e.g. a Redis restart, our member is gone
      // too) or holds garbage: recreate or repair the group record.
      await ensureGroup(discovery, o, (records) => this.#host.repaired(records));
    } else if (snapshot.shardCount !== o.shardCount) {
      throw new ShardCountMismatchError(o.service, snapshot.shardCount, o.shardCount, o.subject);
    }
    const view = ServiceView.fromSnapshot(snapshot, o.clock);
    // A backend whose revisions are not numbers cannot be followed by deltas: list every pass.
    this.#needsList = view === undefined;
    if (snapshot.groupAgeMs !== undefined && snapshot.groupAgeMs < o.leaseTtlMs) {
      // A young group in a backend that can lose data may be a recreated one,
      // with owners from before the loss still inside their leases.
      this.blockClaimsUntil(o.clock.now() + o.leaseTtlMs - snapshot.groupAgeMs, 'young-group', snapshot.groupAgeMs);
    }
    return view ?? ServiceView.fromSnapshot({ ...snapshot, revision: '0' }, o.clock);
  }

  async #pass(): Promise<void> {
    const host = this.#host;
    const o = host.options;
    const lease = host.lease();
    if (lease === undefined || !host.running()) return;
    this.counters.passes += 1;
    if (this.#needsList || this.#view === undefined) {
      this.#buffered = [];
      let listed: ServiceView | undefined;
      try {
        listed = await this.#list();
      } finally {
        const buffered = this.#buffered;
        this.#buffered = undefined;
        if (listed !== undefined) {
          if (this.#view !== undefined) listed.inheritVacancies(this.#view);
          this.#view = listed;
        }
        // Changes made while the listing was in flight: the ones it already includes are stale.
        for (const event of buffered) if (this.#follow(event)) this.#dirty = true;
      }
      if (host.lease() !== lease || !host.running()) return;
    }
    const view = this.#view as ServiceView;
    const members = view.sorted();
    host.viewUpdated(members);
    if (!view.members.has(lease.instance)) {
      host.fence(lease, 'this member is missing from the backend');
      return;
    }
    const runs = host.runs();
    const planStart = o.clock.now();
    const p = plan({
      view: members,
      claims: view.claims,
      runs,
      self: lease.instance,
      shardCount: o.shardCount,
      strategy: o.strategy,
    });
    this.#planMs = o.clock.now() - planStart;
    // Revoke before assign: each revocation drains and releases in the
    // background and asks for another pass when done; a revoked run stays
    // until then, so its shard is not claimed again meanwhile.
    for (const r of p.revoke) host.revoke(r.shard, r.reason);
    if (!this.#mayAct(lease)) return;
    const blockedFor = this.#claimsBlockedUntil - o.clock.now();
    if (blockedFor > 0) {
      this.#retryLater(blockedFor + 1);
      return;
    }
    for (const claim of p.adopt) {
      host.acquire(claim.shard, claim.token, lease.instance, { reason: 'adopted', vacantMs: undefined });
    }
    if (p.giveBack.length > 0) {
      for (const ref of p.giveBack) view.released(ref);
      host.release(lease.instance, p.giveBack);
    }
    if (p.claim.length > 0) await this.#claim(view, lease, p.claim);
  }

  async #claim(view: ServiceView, lease: Lease, shards: readonly number[]): Promise<void> {
    const host = this.#host;
    // Before the call: its own change event may be applied while it is in flight.
    const how = shards.map((shard) => view.vacancy(shard));
    const batch = await host.discovery.claimMany(host.options.service, lease.instance, shards);
    if (batch.repaired.length > 0) host.repaired(batch.repaired);
    const late: ClaimRef[] = [];
    let lost = false;
    shards.forEach((shard, i) => {
      const result = batch.results[i];
      if (result === undefined) return;
      // (`ok: false` naming us: an earlier attempt of this call, retried by the
      // backend client after a timeout, did create the claim: it is ours.)
      if (!result.ok && result.owner !== lease.instance) {
        // Not recorded in the view: the claim's own change event may already
        // have been applied, and so may its release (pub/sub and replies race),
        // so recording it could keep a released shard "held" for good.
        lost = true;
        return;
      }
      view.claimed({ shard, owner: lease.instance, token: result.token });
      if (this.#mayAct(lease) && !host.runs().has(shard)) {
        host.acquire(shard, result.token, lease.instance, how[i] as Acquisition);
      } else if (!host.runs().has(shard)) late.push({ shard, token: result.token });
    });
    if (late.length > 0) {
      for (const ref of late) view.released(ref);
      host.release(lease.instance, late);
    }
    // Another member got some of them first: our view was behind. Plan again
    // once the changes in flight are in, rather than wait for the next one.
    if (lost) this.#dirty = true;
  }

  #mayAct(lease: Lease): boolean {
    return !this.#stopped && this.#host.running() && this.#host.holds(lease.instance);
  }
}
