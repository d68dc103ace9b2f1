/**
 * The worker: lifecycle, lease with self-fencing, the resolver loop
 * (revoke before assign) and the per-shard handler pipeline.
 *
 * @module
 */

import { nanoid } from 'nanoid';
import { type Assignment, computeAssignment } from './assignment.js';
import { settlesWithin, sleep } from './clock.js';
import type { Discovery, Member, Snapshot } from './discovery/contract.js';
import { createDiscovery } from './discovery/registry.js';
import {
  AttemptsExhaustedError,
  DiscoveryUnavailableError,
  reason as errorReason,
  IllegalStateError,
  InvalidRecordError,
  isRetryableError,
  LeaseExpiredError,
  LeaseLostError,
  NotOwnerError,
  RevokeTimeoutError,
  ShardCountMismatchError,
  StartTimeoutError,
} from './errors.js';
import { TypedEmitter } from './events.js';
import {
  type CompiledWorkerOptions,
  compileOptions,
  type ShardContext,
  type Stage,
  type StageFunction,
  type WatchInfo,
  type WorkerOptions,
} from './options.js';
import { startTicker, type Ticker } from './schedule.js';

/** Lifecycle states; `start()` and `stop()` move between them. */
export type WorkerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Why a shard stopped being owned. */
export type RevokeReason = 'rebalance' | 'lease-lost' | 'claim-lost' | 'stop';

/** Every event of a {@link Worker}, one payload object each. */
export interface WorkerEventMap {
  /** The lifecycle state changed. */
  state: { readonly from: WorkerState; readonly to: WorkerState };
  /** This replica registered with a new lease (at start and after a lost lease). */
  'lease:registered': { readonly instance: string; readonly joinSeq: number };
  /** This replica's lease is gone (self-fenced or reported by the backend); it re-registers. */
  'lease:lost': { readonly instance: string; readonly error: LeaseLostError };
  /** A member appeared in the view. */
  'member:joined': { readonly member: Member };
  /** A member left the view (stopped, crashed or lost its lease). */
  'member:left': { readonly instance: string };
  /** This replica claimed a shard. */
  'shard:acquired': { readonly shard: number; readonly token: number };
  /** This replica stopped owning a shard. */
  'shard:revoked': { readonly shard: number; readonly token: number; readonly reason: RevokeReason };
  /** This replica's slice changed (same payload as `handler.watch`). */
  assignment: WatchInfo;
  /** A cron tick found the previous run of the shard still going and skipped it. */
  'tick:skipped': { readonly shard: number; readonly scheduledAt: Date };
  /** A handler stage threw (also given to `handler.onError`). */
  'handler:error': { readonly shard: number; readonly stage: Stage; readonly attempt: number; readonly error: unknown };
  /** An unparsable backend record was skipped. */
  'record:invalid': { readonly error: InvalidRecordError };
  /** An infrastructure error (backend unreachable, revoke timeout, …). The worker carries on. */
  error: { readonly error: unknown };
}

/** One owned shard. */
interface ShardRun {
  readonly shard: number;
  readonly token: number;
  readonly instance: string;
  readonly controller: AbortController;
  revoked: boolean;
  /** The claim is gone or about to be released: `ctx.held` is false from here on. */
  released: boolean;
  /** The pipeline run in progress, if any. */
  current: Promise<void> | undefined;
}

/** The current registration. */
interface Lease {
  readonly instance: string;
  readonly joinSeq: number;
  /** Monotonic time after which this replica must consider itself fenced. */
  deadline: number;
  fenced: boolean;
}

/** Snapshot returned by {@link Worker.status}. */
export interface WorkerStatus {
  readonly state: WorkerState;
  readonly service: string;
  readonly shardCount: number;
  /** Current member id, `undefined` while not registered. */
  readonly instance: string | undefined;
  /** Owned shards with their tokens and whether a pipeline run is in progress. */
  readonly shards: readonly { readonly shard: number; readonly token: number; readonly running: boolean }[];
  /** Live members in the last view, in join order. */
  readonly members: readonly string[];
  /** Registered but assigned no shard (more replicas than shards). */
  readonly standby: boolean;
  /** Ms until the self-fencing deadline, `undefined` while not registered. */
  readonly leaseRemainingMs: number | undefined;
}

const CLAIM_CONCURRENCY = 32;

/**
 * The worker's timers. Only `heartbeat` keeps the process alive: a running
 * worker should, and the others exist only while it runs.
 */
type TimerName = 'heartbeat' | 'fence' | 'resync' | 'expiry' | 'retry';

/**
 * A replica of a sharded worker service.
 *
 * ```ts
 * const worker = new Worker({ service: 'billing-sync', shards: 8, handler: { async do(ctx) { … } } });
 * await worker.start();
 * // …
 * await worker.stop();
 * ```
 */
export class Worker extends TypedEmitter<WorkerEventMap> {
  readonly #o: CompiledWorkerOptions;
  #state: WorkerState = 'idle';
  #discovery: Discovery | undefined;
  #ownsDiscovery = false;
  #lease: Lease | undefined;
  readonly #runs = new Map<number, ShardRun>();
  #view: Member[] = [];
  #lastWatch = '';
  #reportedInvalid = new Set<string>();
  #unwatch: (() => void) | undefined;
  #ticker: Ticker | undefined;
  readonly #timers = new Map<TimerName, ReturnType<typeof setTimeout>>();
  #reconciling: Promise<void> | undefined;
  #dirty = false;
  /** Called after every reconcile pass; `start()` waits for the first one only. */
  #afterPass: (() => void) | undefined;
  #recovering: Promise<void> | undefined;
  /** Revocations in progress: they drain in the background so that one slow handler delays nothing else. */
  readonly #revocations = new Set<Promise<void>>();
  /** Monotonic time before which this replica must not claim (after the backend forgot its lease early). */
  #claimsBlockedUntil = Number.NEGATIVE_INFINITY;
  #startAbort = new AbortController();
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #signalHandler: (() => void) | undefined;

  /** Validates options at once; throws `InvalidOptionsError`, `InvalidCronError` or `InvalidParamsError`. */
  constructor(options: WorkerOptions) {
    super();
    this.#o = compileOptions(options);
  }

  /** Current lifecycle state. */
  get state(): WorkerState {
    return this.#state;
  }

  /** A consistent snapshot of what this replica owns and sees. */
  status(): WorkerStatus {
    const lease = this.#lease;
    const usable = lease !== undefined && !lease.fenced;
    return {
      state: this.#state,
      service: this.#o.service,
      shardCount: this.#o.shardCount,
      instance: usable ? lease.instance : undefined,
      shards: this.#ownedRuns().map((r) => ({ shard: r.shard, token: r.token, running: r.current !== undefined })),
      members: this.#view.map((m) => m.id),
      standby: usable && this.#state === 'running' && this.#runs.size === 0 && this.#view.length > this.#o.shardCount,
      leaseRemainingMs: usable ? Math.max(0, lease.deadline - this.#o.clock.now()) : undefined,
    };
  }

  /**
   * Connect, check the shard count, register, and make the first claims:
   * resolves after the first reconcile pass, while later passes (peers still
   * joining) carry on in the background. Keeps retrying an unreachable backend
   * (emitting `error`) for `startTimeoutMs`.
   * Rejects with `ShardCountMismatchError` at once when the backend holds
   * another shard count.
   */
  start(): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new IllegalStateError('start', this.#state));
    this.#setState('starting');
    this.#starting = this.#start().catch(async (error: unknown) => {
      await this.#releaseLease();
      await this.#teardown();
      this.#setState('stopped');
      throw error;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const o = this.#o;
    if (typeof o.discovery !== 'string') {
      this.#discovery = o.discovery;
    } else {
      this.#discovery = await createDiscovery(o.discovery);
      this.#ownsDiscovery = true;
    }
    const began = o.clock.now();
    // One id for every attempt: a registration whose reply was lost is then
    // overwritten by the retry instead of lingering as a ghost member for a TTL.
    const instance = newInstanceId();
    let delay = 100;
    for (;;) {
      if (this.#startAbort.signal.aborted) throw new IllegalStateError('start', 'stopping');
      try {
        await this.#register(instance);
        break;
      } catch (error) {
        if (!isRetryableError(error)) throw error;
        if (this.#startAbort.signal.aborted) throw new IllegalStateError('start', 'stopping');
        if (o.clock.now() - began + delay > o.startTimeoutMs) throw new StartTimeoutError(o.startTimeoutMs, error);
        this.#reportError(error);
        await sleep(delay, this.#startAbort.signal).catch(() => undefined);
        delay = Math.min(delay * 2, 5000);
      }
    }
    if (this.#startAbort.signal.aborted) throw new IllegalStateError('start', 'stopping');
    this.#unwatch = this.#discovery.watch(o.service, () => this.#requestReconcile());
    this.#setState('running');
    if (o.schedule !== undefined) this.#ticker = startTicker(o.schedule, (at) => this.#onTick(at));
    this.#scheduleResync();
    if (o.handleSignals) this.#installSignalHandlers();
    // Resolve after the first pass (first claims made), not when the loop goes
    // idle: under churn more passes keep coming and would hold start() up.
    await new Promise<void>((resolve) => {
      this.#afterPass = resolve;
      void this.#requestReconcile();
    });
    this.#afterPass = undefined;
  }

  /**
   * Stop taking work, abort and drain handlers (each bounded by
   * `revokeTimeoutMs`), then revoke the lease, which drops the member and its
   * claims at once so peers take over. Idempotent; safe in any state.
   */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.#state === 'idle' || this.#state === 'stopped') {
      if (this.#state === 'idle') this.#setState('stopped');
      return Promise.resolve();
    }
    this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#startAbort.abort();
    if (this.#state === 'starting') {
      await this.#starting?.catch(() => undefined);
      if ((this.#state as WorkerState) === 'stopped') return;
    }
    this.#setState('stopping');
    this.#ticker?.stop();
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#clearTimer('resync');
    this.#clearTimer('expiry');
    this.#clearTimer('retry');
    await this.#reconciling?.catch(() => undefined);
    await this.#recovering?.catch(() => undefined);
    // Drain every handler (bounded), then revoke the lease: that deletes the
    // member and all its claims in one step. Releasing claims one by one first
    // would be pure cost, since peers give shards straight back to a member
    // that is still in the view.
    await Promise.all([...this.#runs.keys()].map((shard) => this.#revoke(shard, 'stop', false)));
    await Promise.all([...this.#revocations]);
    await this.#releaseLease();
    this.#emitWatch();
    await this.#teardown();
    this.#setState('stopped');
  }

  /** `await using worker = new Worker(…)` stops it at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Revoke the current lease (best effort): peers see this member leave at once. */
  async #releaseLease(): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined || !this.#retire(lease)) return;
    await this.#discovery?.unregister(this.#o.service, lease.instance).catch((e: unknown) => this.#reportError(e));
  }

  async #teardown(): Promise<void> {
    for (const name of [...this.#timers.keys()]) this.#clearTimer(name);
    this.#ticker?.stop();
    this.#unwatch?.();
    this.#removeSignalHandlers();
    if (this.#ownsDiscovery) await this.#discovery?.close().catch(() => undefined);
  }

  #setState(to: WorkerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.emit('state', { from, to });
  }

  // ── lease ────────────────────────────────────────────────────────────────

  /** Ensure the group (shard count) and register member `instance` with a fresh lease. */
  async #register(instance: string): Promise<void> {
    const o = this.#o;
    const discovery = this.#discovery as Discovery;
    const stored = await discovery.ensureGroup(o.service, o.shardCount);
    if (stored !== o.shardCount) throw new ShardCountMismatchError(o.service, stored, o.shardCount);
    const sentAt = o.clock.now();
    const { joinSeq } = await discovery.register(
      o.service,
      { id: instance, host: o.host, pid: process.pid, startedAt: Date.now(), weight: o.weight, labels: o.labels },
      o.leaseTtlMs,
    );
    const lease: Lease = { instance, joinSeq, deadline: this.#deadlineAfter(sentAt), fenced: false };
    if (o.clock.now() >= lease.deadline) {
      await discovery.unregister(o.service, instance).catch(() => undefined);
      throw new DiscoveryUnavailableError(
        discovery.kind,
        `registration took longer than the lease TTL (${o.leaseTtlMs} ms)`,
      );
    }
    this.#lease = lease;
    this.#armFence(lease);
    this.#scheduleHeartbeat(o.heartbeatIntervalMs);
    this.emit('lease:registered', { instance, joinSeq });
  }

  /**
   * The self-fencing deadline of a registration or renewal sent at `sentAt`.
   * The backend starts the TTL when it processes the request, after `sentAt`,
   * so this is always earlier than the backend's expiry.
   */
  #deadlineAfter(sentAt: number): number {
    return sentAt + this.#o.leaseTtlMs - this.#o.fenceMarginMs;
  }

  /** Mark a lease as no longer ours and stop renewing it. Returns false if it already was. */
  #retire(lease: Lease): boolean {
    if (lease.fenced) return false;
    lease.fenced = true;
    this.#clearTimer('fence');
    this.#clearTimer('heartbeat');
    return true;
  }

  #scheduleHeartbeat(delay: number): void {
    this.#setTimer('heartbeat', delay, () => void this.#heartbeat());
  }

  async #heartbeat(): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined || lease.fenced || !this.#active()) return;
    const o = this.#o;
    const sentAt = o.clock.now();
    // Keep the cadence whatever the reply time: a renewal that hangs must not
    // delay the next one (renewals are idempotent).
    this.#scheduleHeartbeat(o.heartbeatIntervalMs);
    try {
      await (this.#discovery as Discovery).renew(o.service, lease.instance);
      if (lease.fenced || this.#state === 'stopped') return;
      lease.deadline = Math.max(lease.deadline, this.#deadlineAfter(sentAt));
      this.#armFence(lease);
    } catch (error) {
      if (lease.fenced) return;
      if (error instanceof LeaseExpiredError) {
        this.#fence(lease, 'the backend no longer knows this member');
        return;
      }
      this.#reportError(error);
      // Retry sooner than usual: every renewal before the deadline counts.
      this.#scheduleHeartbeat(Math.max(10, o.heartbeatIntervalMs / 3));
    }
  }

  #armFence(lease: Lease): void {
    const delay = Math.max(0, lease.deadline - this.#o.clock.now());
    this.#setTimer('fence', delay, () => {
      if (this.#o.clock.now() >= lease.deadline) this.#fence(lease, 'no successful renewal before the deadline');
      else this.#armFence(lease);
    });
  }

  /** The lease is lost: stop every shard at once, then re-register in the background. */
  #fence(lease: Lease, detail: string): void {
    if (!this.#retire(lease)) return;
    const now = this.#o.clock.now();
    if (now < lease.deadline) {
      // The backend forgot a lease that cannot have expired yet: it lost its
      // data (e.g. Redis restarted empty). Every other replica's lease from
      // before the loss ends within one TTL on its own clock, and until then
      // its owner may still act: claim nothing before that.
      this.#claimsBlockedUntil = Math.max(this.#claimsBlockedUntil, now + this.#o.leaseTtlMs);
    }
    const error = new LeaseLostError(lease.instance, detail);
    for (const run of this.#runs.values()) {
      if (run.instance !== lease.instance || run.revoked) continue;
      run.revoked = true;
      run.controller.abort(error);
      this.emit('shard:revoked', { shard: run.shard, token: run.token, reason: 'lease-lost' });
    }
    this.emit('lease:lost', { instance: lease.instance, error });
    if (this.#state === 'running')
      this.#recovering ??= this.#recover(lease).finally(() => (this.#recovering = undefined));
  }

  async #recover(old: Lease): Promise<void> {
    const o = this.#o;
    const discovery = this.#discovery as Discovery;
    // If the backend still holds the old lease, revoking it frees our shards for
    // peers now rather than at expiry. Handlers already see `owned === false`.
    void discovery.unregister(o.service, old.instance).catch(() => undefined);
    await Promise.all(
      [...this.#runs.values()]
        .filter((r) => r.instance === old.instance)
        .map(async (r) => {
          await this.#settle(r);
          this.#runs.delete(r.shard);
        }),
    );
    this.#emitWatch();
    const instance = newInstanceId();
    let delay = 100;
    while (this.#state === 'running') {
      try {
        await this.#register(instance);
        void this.#requestReconcile();
        return;
      } catch (error) {
        this.#reportError(error);
        await sleep(delay, this.#startAbort.signal).catch(() => undefined);
        delay = Math.min(delay * 2, this.#maxRetryDelay());
      }
    }
  }

  /** Cap of the register retry backoff: short leases mean users want fast recovery. */
  #maxRetryDelay(): number {
    return Math.max(100, Math.min(5000, this.#o.leaseTtlMs / 4));
  }

  /** Whether `instance` is the current, unexpired registration. Synchronous: reads the clock. */
  #holds(instance: string): boolean {
    const lease = this.#lease;
    return lease !== undefined && lease.instance === instance && !lease.fenced && this.#o.clock.now() < lease.deadline;
  }

  /** Whether the lease should be kept alive: also while stopping, so that draining handlers stay owners. */
  #active(): boolean {
    return this.#state === 'running' || this.#state === 'starting' || this.#state === 'stopping';
  }

  // ── resolver ─────────────────────────────────────────────────────────────

  /** Run the reconcile loop, coalescing requests that arrive while it runs. */
  #requestReconcile(): Promise<void> {
    if (this.#state !== 'running') return Promise.resolve();
    if (this.#reconciling !== undefined) {
      this.#dirty = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      do {
        this.#dirty = false;
        try {
          await this.#reconcile();
        } catch (error) {
          this.#reportError(error);
          this.#setTimer('retry', Math.min(1000, this.#o.resyncIntervalMs), () => void this.#requestReconcile());
        }
        this.#afterPass?.();
      } while (this.#dirty && this.#state === 'running');
    })().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  async #reconcile(): Promise<void> {
    const o = this.#o;
    const lease = this.#lease;
    if (lease === undefined || lease.fenced || this.#state !== 'running') return;
    const discovery = this.#discovery as Discovery;
    const snap = await discovery.snapshot(o.service);
    if (lease.fenced || this.#state !== 'running') return;
    this.#reportInvalid(snap);
    if (snap.shardCount === undefined) {
      // The backend lost its data (e.g. a Redis restart); our member is gone too.
      await discovery.ensureGroup(o.service, o.shardCount);
    } else if (snap.shardCount !== o.shardCount) {
      throw new ShardCountMismatchError(o.service, snap.shardCount, o.shardCount);
    }
    const view = [...snap.members].sort((a, b) => a.joinSeq - b.joinSeq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#updateView(view);
    if (!view.some((m) => m.id === lease.instance)) {
      this.#fence(lease, 'this member is missing from the backend');
      return;
    }
    const claims = new Map(snap.claims.map((c) => [c.shard, c]));
    const owners = new Map(snap.claims.map((c) => [c.shard, c.owner]));
    const assignment: Assignment = computeAssignment(o.strategy, {
      members: view.map((m) => ({ id: m.id, weight: m.weight })),
      shardCount: o.shardCount,
      owners,
    });
    const desired = new Set(assignment.get(lease.instance) ?? []);

    // Revoke before assign. A run whose claim is gone or belongs to someone
    // else lost it behind our back (the backend lost data): stop it at once.
    // Each revocation drains its handler and releases its claim in the
    // background and asks for another pass when done; a revoked run stays in
    // #runs until then, so its shard is not claimed again meanwhile.
    for (const run of this.#runs.values()) {
      if (run.revoked) continue;
      const claim = claims.get(run.shard);
      if (claim === undefined || claim.owner !== lease.instance || claim.token !== run.token) {
        this.#revokeInBackground(run.shard, 'claim-lost', false);
      } else if (!desired.has(run.shard)) {
        this.#revokeInBackground(run.shard, 'rebalance', true);
      }
    }
    if (!this.#holds(lease.instance) || this.#state !== 'running') return;

    if (snap.groupAgeMs !== undefined && snap.groupAgeMs < o.leaseTtlMs) {
      // A young group in a backend that can lose data may be a recreated one,
      // with owners from before the loss still inside their leases.
      this.#claimsBlockedUntil = Math.max(this.#claimsBlockedUntil, o.clock.now() + o.leaseTtlMs - snap.groupAgeMs);
    }
    const blockedFor = this.#claimsBlockedUntil - o.clock.now();
    if (blockedFor > 0) {
      this.#setTimer('retry', blockedFor + 1, () => void this.#requestReconcile());
      this.#emitWatch();
      return;
    }
    const toClaim: number[] = [];
    for (const shard of desired) {
      if (this.#runs.has(shard)) continue;
      const claim = claims.get(shard);
      if (claim === undefined) toClaim.push(shard);
      // A claim of ours with no run: a claim whose reply we never got. Adopt it.
      else if (claim.owner === lease.instance) this.#acquire(shard, claim.token, lease.instance);
      // Otherwise another live member still holds it: wait for its release event.
    }
    for (const claim of snap.claims) {
      // A claim of ours that we do not run and do not want (e.g. a claim whose reply was lost): give it back.
      if (claim.owner === lease.instance && !desired.has(claim.shard) && !this.#runs.has(claim.shard)) {
        await discovery.release(o.service, lease.instance, claim.shard, claim.token);
      }
    }
    await mapLimit(toClaim, CLAIM_CONCURRENCY, async (shard) => {
      if (!this.#holds(lease.instance) || this.#state !== 'running') return;
      const result = await discovery.claim(o.service, lease.instance, shard);
      // `ok: false` naming us: an earlier attempt of this call (retried by the
      // backend client after a timeout) did create the claim.
      const ours = result.ok || result.owner === lease.instance;
      if (ours && this.#holds(lease.instance) && this.#state === 'running') {
        this.#acquire(shard, result.token, lease.instance);
      } else if (ours) {
        await discovery.release(o.service, lease.instance, shard, result.token).catch(() => undefined);
      }
    });
    this.#emitWatch();
    this.#scheduleExpiryCheck(view, lease.instance);
  }

  #updateView(view: Member[]): void {
    const before = new Set(this.#view.map((m) => m.id));
    const after = new Set(view.map((m) => m.id));
    this.#view = view;
    for (const m of view) if (!before.has(m.id)) this.emit('member:joined', { member: m });
    for (const id of before) if (!after.has(id)) this.emit('member:left', { instance: id });
  }

  #reportInvalid(snap: Snapshot): void {
    const seen = new Set<string>();
    for (const bad of snap.invalid) {
      const key = `${bad.key}\u0000${bad.reason}`;
      seen.add(key);
      if (!this.#reportedInvalid.has(key))
        this.emit('record:invalid', { error: new InvalidRecordError(bad.key, bad.reason) });
    }
    this.#reportedInvalid = seen;
  }

  /** Re-list right after the earliest known lease expiry of a peer (backends that announce expiry make this moot). */
  #scheduleExpiryCheck(view: readonly Member[], self: string): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const m of view)
      if (m.id !== self && m.expiresInMs !== undefined) earliest = Math.min(earliest, m.expiresInMs);
    this.#clearTimer('expiry');
    if (earliest === Number.POSITIVE_INFINITY) return;
    this.#setTimer('expiry', earliest + 5, () => void this.#requestReconcile());
  }

  #scheduleResync(): void {
    this.#setTimer('resync', this.#o.resyncIntervalMs, () => {
      void this.#requestReconcile();
      if (this.#state === 'running') this.#scheduleResync();
    });
  }

  /** Runs of shards still owned (not being revoked), by shard. */
  #ownedRuns(): ShardRun[] {
    return [...this.#runs.values()].filter((r) => !r.revoked).sort((a, b) => a.shard - b.shard);
  }

  #emitWatch(): void {
    const lease = this.#lease;
    if (lease === undefined) return;
    const shards = this.#ownedRuns().map((r) => r.shard);
    const key = `${lease.instance}|${shards.join(',')}`;
    if (key === this.#lastWatch) return;
    this.#lastWatch = key;
    const params: Record<number, string> = {};
    for (const shard of shards) {
      const p = this.#o.params.get(shard);
      if (p !== undefined) params[shard] = p;
    }
    const info: WatchInfo = {
      instance: lease.instance,
      shards,
      shardCount: this.#o.shardCount,
      members: this.#view,
      params,
    };
    if (this.#o.handler.watch !== undefined) {
      try {
        this.#o.handler.watch(info);
      } catch (error) {
        this.#reportError(error);
      }
    }
    this.emit('assignment', info);
  }

  // ── shards ───────────────────────────────────────────────────────────────

  #acquire(shard: number, token: number, instance: string): void {
    const run: ShardRun = {
      shard,
      token,
      instance,
      controller: new AbortController(),
      revoked: false,
      released: false,
      current: undefined,
    };
    this.#runs.set(shard, run);
    this.emit('shard:acquired', { shard, token });
    if (this.#o.schedule === undefined) this.#startPipeline(run, undefined);
  }

  #revokeInBackground(shard: number, why: 'rebalance' | 'claim-lost', release: boolean): void {
    const done: Promise<void> = this.#revoke(shard, why, release).finally(() => {
      this.#revocations.delete(done);
      void this.#requestReconcile();
    });
    this.#revocations.add(done);
  }

  /** Abort a shard's handler, wait for it (bounded), then release the claim if asked. Never rejects. */
  async #revoke(shard: number, why: 'rebalance' | 'claim-lost' | 'stop', release: boolean): Promise<void> {
    const run = this.#runs.get(shard);
    if (run === undefined) return;
    if (!run.revoked) {
      run.revoked = true;
      // A claim lost behind our back is not ours even while the handler drains.
      if (why === 'claim-lost') run.released = true;
      run.controller.abort(new NotOwnerError(shard, run.token, why));
      this.emit('shard:revoked', { shard, token: run.token, reason: why });
    }
    await this.#settle(run);
    run.released = true;
    if (release) {
      await (this.#discovery as Discovery)
        .release(this.#o.service, run.instance, shard, run.token)
        .catch((e: unknown) => this.#reportError(e));
    }
    if (this.#runs.get(shard) === run) this.#runs.delete(shard);
  }

  /** Wait for a run's pipeline to finish, at most `revokeTimeoutMs`. */
  async #settle(run: ShardRun): Promise<void> {
    const current = run.current;
    if (current === undefined) return;
    const timeout = this.#o.revokeTimeoutMs;
    if (!(await settlesWithin(current, timeout))) this.#reportError(new RevokeTimeoutError(run.shard, timeout));
  }

  #onTick(scheduledAt: Date): void {
    if (this.#state !== 'running') return;
    for (const run of this.#runs.values()) {
      if (run.revoked) continue;
      if (run.current !== undefined) {
        this.emit('tick:skipped', { shard: run.shard, scheduledAt });
        continue;
      }
      this.#startPipeline(run, scheduledAt);
    }
  }

  #startPipeline(run: ShardRun, scheduledAt: Date | undefined): void {
    const done = this.#pipeline(run, scheduledAt)
      .catch((error: unknown) => this.#reportError(error))
      .finally(() => {
        if (run.current === done) run.current = undefined;
      });
    run.current = done;
  }

  async #pipeline(run: ShardRun, scheduledAt: Date | undefined): Promise<void> {
    const o = this.#o;
    const holds = (): boolean => !run.revoked && this.#holds(run.instance);
    const held = (): boolean => !run.released && this.#holds(run.instance);
    const ctx = {
      service: o.service,
      shard: run.shard,
      shardCount: o.shardCount,
      param: o.params.get(run.shard),
      token: run.token,
      signal: run.controller.signal,
      instance: run.instance,
      scheduledAt,
      attempt: 1,
      stage: 'before' as Stage,
      data: {} as Record<string, unknown>,
      get owned(): boolean {
        return holds();
      },
      get held(): boolean {
        return held();
      },
      assertOwned(): void {
        if (!holds()) throw new NotOwnerError(run.shard, run.token, 'revoked or lease deadline passed');
      },
    };
    const { before, after } = o.handler;
    const stages: [Stage, StageFunction | undefined][] = [
      ['before', before],
      ['do', o.handler.do],
      ['after', after],
    ];
    // Let the claim's caller finish its bookkeeping before user code runs.
    await Promise.resolve();
    for (const [stage, fn] of stages) {
      if (fn === undefined) continue;
      ctx.stage = stage;
      if (!(await this.#runStage(run, ctx, fn))) return;
    }
  }

  /** Run one stage with retries; `true` when it succeeded. */
  async #runStage(run: ShardRun, ctx: ShardContext & { attempt: number }, fn: StageFunction): Promise<boolean> {
    const signal = run.controller.signal;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return false;
      ctx.attempt = attempt;
      try {
        await fn.call(this.#o.handler, ctx);
        return true;
      } catch (error) {
        if (signal.aborted) return false;
        this.#handlerError(run, ctx, error);
        if (!isRetryableError(error)) return false;
        let delay: number | null;
        try {
          delay = this.#o.retry(attempt, error);
        } catch (policyError) {
          this.#reportError(policyError);
          delay = null;
        }
        if (delay === null || !Number.isFinite(delay) || delay < 0) {
          this.#handlerError(run, ctx, new AttemptsExhaustedError(ctx.stage, attempt, error));
          return false;
        }
        try {
          await sleep(delay, signal);
        } catch {
          return false;
        }
      }
    }
  }

  #handlerError(run: ShardRun, ctx: ShardContext, error: unknown): void {
    this.emit('handler:error', { shard: run.shard, stage: ctx.stage, attempt: ctx.attempt, error });
    const onError = this.#o.handler.onError;
    if (onError === undefined) {
      // Nobody would hear of it: say so once per failing run, and when it gives up.
      if (this.listenerCount('handler:error') === 0 && (ctx.attempt === 1 || error instanceof AttemptsExhaustedError)) {
        console.warn(`[shardwork ${this.#o.service}] shard ${run.shard} ${ctx.stage} failed: ${errorReason(error)}`);
      }
      return;
    }
    try {
      onError.call(this.#o.handler, error, ctx);
    } catch (thrown) {
      this.#reportError(thrown);
    }
  }

  // ── plumbing ─────────────────────────────────────────────────────────────

  #reportError(error: unknown): void {
    if (this.listenerCount('error') === 0) {
      console.warn(`[shardwork ${this.#o.service}] ${errorReason(error)}`);
      return;
    }
    this.emit('error', { error });
  }

  #setTimer(name: TimerName, delay: number, fn: () => void): void {
    this.#clearTimer(name);
    const timer = setTimeout(() => {
      if (this.#timers.get(name) === timer) this.#timers.delete(name);
      fn();
    }, delay);
    if (name !== 'heartbeat') timer.unref?.();
    this.#timers.set(name, timer);
  }

  #clearTimer(name: TimerName): void {
    clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
  }

  #installSignalHandlers(): void {
    const handler = (): void => {
      this.#removeSignalHandlers();
      void this.stop();
    };
    this.#signalHandler = handler;
    process.once('SIGTERM', handler);
    process.once('SIGINT', handler);
  }

  #removeSignalHandlers(): void {
    const handler = this.#signalHandler;
    if (handler === undefined) return;
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
    this.#signalHandler = undefined;
  }
}

/** A new member id: 12 URL-safe characters (nanoid). */
function newInstanceId(): string {
  return nanoid(12);
}

/** Run `fn` over `items` with at most `limit` in flight; rejects with the first error after all settle. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed) throw firstError;
}
