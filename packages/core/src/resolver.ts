/**
 * The resolver: the reconcile loop of one worker, the processing room of
 * client-go's three (`tools/cache`). Its {@link Reflector} keeps the cached
 * view of the service (`service-view.ts`); on every change the loop plans
 * with the pure {@link plan} (`plan.ts`) and acts on the plan: revoke before
 * assign, claims batched into one request per pass, releases batched by the
 * runs. Passes are merged while one runs and put off briefly during a burst.
 *
 * @module
 */

import type { ClaimRef, Discovery, Member } from './discovery/contract.js';
import { LeaseExpiredError } from './errors.js';
import type { HoldBack } from './hold-back.js';
import type { Lease } from './lease.js';
import type { CompiledWorkerOptions } from './options.js';
import { type PlannedRevocation, type PlannedRun, plan } from './plan.js';
import { type Acquisition, type ListingReports, Reflector, type ServiceView } from './service-view.js';

/** A request this soon after the last pass is part of a burst. */
const BURST_WINDOW_MS = 50;
/** During a burst, a pass waits until no request came for this long… */
const QUIET_MS = 2;
/** …but at most this many times the duration of the last planning step, within the bounds below. */
const DEFER_PER_PLAN_MS = 100;
const MIN_DEFER_MS = 100;
const MAX_DEFER_MS = 250;

/** What the resolver needs of the lease keeper. */
export interface ResolverLease {
  /** The held lease, if any. */
  readonly held: Lease | undefined;
  /** Synchronous ownership check of a registration (reads the clock). */
  holds(instance: string): boolean;
  /** The member is missing from the backend: the lease is lost. */
  fence(lease: Lease, detail: string): void;
}

/** What the resolver needs of the table of shard runs. */
export interface RunTable {
  /** This replica's runs by shard, revoked ones included until they are done. */
  readonly planned: ReadonlyMap<number, PlannedRun>;
  /** A claim is ours: start its run, under the lease that claimed it. */
  acquire(shard: number, token: number, lease: Lease, how: Acquisition): void;
  /** Revoke a run in the background (drain, then give the claim back after a rebalance). */
  revoke(shard: number, reason: PlannedRevocation['reason']): void;
  /** Give claims back that no run acts on (batched). */
  release(instance: string, claims: readonly ClaimRef[]): void;
}

/** What the resolver needs from its worker. */
export interface ResolverHost {
  readonly options: CompiledWorkerOptions;
  readonly discovery: Discovery;
  readonly lease: ResolverLease;
  readonly runs: RunTable;
  /** Where errors and garbage records are reported. */
  readonly reports: ListingReports;
  /** Whether passes may run (the worker is running). */
  running(): boolean;
  /** The view changed (or may have): members and ownership. */
  viewUpdated(view: readonly Member[]): void;
  /** A pass finished. */
  passed(): void;
  /** When to claim nothing (fed the group's age by every listing; asked before every claim). */
  readonly holdBack: HoldBack;
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
  readonly #reflector: Reflector;
  #passing: Promise<void> | undefined;
  #dirty = false;
  /** A pass put off during a burst of requests. */
  #deferred:
    | { since: number; promise: Promise<void>; resolve: () => void; timer: ReturnType<typeof setTimeout> | undefined }
    | undefined;
  #lastPassEnd = Number.NEGATIVE_INFINITY;
  /** How long the last planning step took, ms: a burst defers passes longer when planning is costly. */
  #planMs = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  /** Counts of what the loop did. */
  readonly counters: ResolverCounters = { snapshots: 0, versionChecks: 0, deltas: 0, passes: 0 };

  constructor(host: ResolverHost) {
    this.#host = host;
    const o = host.options;
    this.#reflector = new Reflector({
      options: o,
      discovery: host.discovery,
      reports: host.reports,
      counters: this.counters,
      changed: () => this.request(),
      groupListed: (groupAgeMs) => host.holdBack.groupListed(groupAgeMs),
    });
  }

  /** Live members in view order (empty before the first listing). */
  get members(): readonly Member[] {
    return this.#reflector.view?.sorted() ?? [];
  }

  /** Subscribe to changes and start the periodic version check. */
  start(): void {
    this.#reflector.start();
  }

  /** No more passes; waits for the one in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#reflector.stop();
    clearTimeout(this.#retryTimer);
    const deferred = this.#deferred;
    this.#deferred = undefined;
    if (deferred !== undefined) {
      clearTimeout(deferred.timer);
      deferred.resolve();
    }
    await this.#passing?.catch(() => undefined);
  }

  /** Re-list on the next pass (a new registration, or anything that casts doubt on the cache). */
  invalidate(): void {
    this.#reflector.invalidate();
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
          const lease = this.#host.lease.held;
          if (lease !== undefined) this.#host.lease.fence(lease, 'the backend no longer knows this member');
        } else this.#host.reports.error(error);
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

  #retryLater(delay: number): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.request(), delay);
    this.#retryTimer.unref?.();
  }

  async #pass(): Promise<void> {
    const host = this.#host;
    const o = host.options;
    const lease = host.lease.held;
    if (lease === undefined || !host.running()) return;
    this.counters.passes += 1;
    if (this.#reflector.stale) {
      // Changes that arrive during the listing ask for another pass (a request while this one runs).
      await this.#reflector.list();
      if (host.lease.held !== lease || !host.running()) return;
    }
    const view = this.#reflector.view as ServiceView;
    const members = view.sorted();
    host.viewUpdated(members);
    if (!view.members.has(lease.instance)) {
      host.lease.fence(lease, 'this member is missing from the backend');
      return;
    }
    const planStart = o.clock.now();
    const p = plan({
      view: members,
      claims: view.claims,
      runs: host.runs.planned,
      self: lease.instance,
      shardCount: o.shardCount,
      strategy: o.strategy,
    });
    this.#planMs = o.clock.now() - planStart;
    // Revoke before assign: each revocation drains and releases in the
    // background and asks for another pass when done; a revoked run stays
    // until then, so its shard is not claimed again meanwhile.
    for (const r of p.revoke) host.runs.revoke(r.shard, r.reason);
    if (!this.#mayAct(lease)) return;
    const blockedFor = host.holdBack.remainingMs();
    if (blockedFor > 0) {
      this.#retryLater(blockedFor + 1);
      return;
    }
    for (const claim of p.adopt) {
      host.runs.acquire(claim.shard, claim.token, lease, { reason: 'adopted', vacantMs: undefined });
    }
    if (p.giveBack.length > 0) {
      for (const ref of p.giveBack) view.released(ref);
      host.runs.release(lease.instance, p.giveBack);
    }
    if (p.claim.length > 0) await this.#claim(view, lease, p.claim);
  }

  async #claim(view: ServiceView, lease: Lease, shards: readonly number[]): Promise<void> {
    const host = this.#host;
    // Before the call: its own change event may be applied while it is in flight.
    const how = shards.map((shard) => view.vacancy(shard));
    const batch = await host.discovery.claimMany(host.options.service, lease.instance, shards);
    if (batch.repaired.length > 0) host.reports.repaired(batch.repaired);
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
      if (this.#mayAct(lease) && !host.runs.planned.has(shard)) {
        host.runs.acquire(shard, result.token, lease, how[i] as Acquisition);
      } else if (!host.runs.planned.has(shard)) late.push({ shard, token: result.token });
    });
    if (late.length > 0) {
      for (const ref of late) view.released(ref);
      host.runs.release(lease.instance, late);
    }
    // Another member got some of them first: our view was behind. Plan again
    // once the changes in flight are in, rather than wait for the next one.
    if (lost) this.#dirty = true;
  }

  #mayAct(lease: Lease): boolean {
    return !this.#stopped && this.#host.running() && this.#host.lease.holds(lease.instance);
  }
}
