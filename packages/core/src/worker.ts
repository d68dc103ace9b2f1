/**
 * The worker: the lifecycle of one replica, wiring its lease
 * ({@link LeaseKeeper}), its resolver ({@link Resolver}) and one
 * {@link ShardRun} per owned shard. Stopping marks the member draining, so
 * that peers plan without it and take each shard as soon as its own handler
 * settles and its claim is released.
 *
 * @module
 */

import type { ClaimRef, Discovery, InvalidRecord, Member } from './discovery/contract.js';
import { createDiscovery } from './discovery/registry.js';
import {
  AttemptsExhaustedError,
  DiscoveryUnavailableError,
  reason as errorReason,
  IllegalStateError,
  InvalidRecordError,
  type LeaseLostError,
  NotOwnerError,
  RevokeTimeoutError,
  StartTimeoutError,
} from './errors.js';
import { type ErrorPayload, errorPayload, TypedEmitter } from './events.js';
import type { ShardContext, Stage, WatchInfo } from './handler.js';
import { type ClaimsHeldBack, type HoldBackReason, holdBackMessage } from './hold-back.js';
import { type Lease, LeaseKeeper } from './lease.js';
import { type CompiledWorkerOptions, compileOptions, type WorkerOptions } from './options.js';
import { ReleaseBatcher } from './release-batcher.js';
import { type Acquisition, Resolver, type ResolverCounters } from './resolver.js';
import { startTicker, type Ticker } from './schedule.js';
import { type RunHost, ShardRun } from './shard-run.js';
import { StateMachine, type TransitionTable } from './states.js';

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
  /** A heartbeat renewed this replica's lease; `latencyMs` is the renewal's round trip. */
  'lease:renewed': { readonly instance: string; readonly latencyMs: number };
  /** This replica's lease is gone (self-fenced or reported by the backend); it re-registers. */
  'lease:lost': { readonly instance: string; readonly error: LeaseLostError };
  /** A member appeared in the view. */
  'member:joined': { readonly member: Member };
  /** A member left the view (stopped, crashed or lost its lease). */
  'member:left': { readonly instance: string };
  /**
   * This replica claimed a shard: `reason` says how the shard came to be free
   * and `vacantMs` how long it had been free as this replica saw it (see
   * {@link Acquisition}).
   */
  'shard:acquired': { readonly shard: number; readonly token: number } & Acquisition;
  /** This replica stopped owning a shard. */
  'shard:revoked': { readonly shard: number; readonly token: number; readonly reason: RevokeReason };
  /**
   * A revoked shard's handler settled (or `revokeTimeoutMs` ran out) and its
   * claim was given back (`released`), or dropped with the lease or lost
   * claim. `drainMs` is the time from the revocation to then.
   */
  'shard:released': {
    readonly shard: number;
    readonly token: number;
    readonly reason: RevokeReason;
    readonly released: boolean;
    readonly drainMs: number;
  };
  /** This replica's slice changed (same payload as `handler.watch`). */
  assignment: WatchInfo;
  /**
   * This replica claims nothing until `untilMs` (wall clock), and `message`
   * says why: the group record is younger than one lease TTL (a new service
   * on a backend that can lose its data, which cannot tell it from a lost
   * one), or the backend forgot this replica's lease early (it lost its
   * data). Printed with `console.warn` when nobody listens.
   */
  'claims:held-back': ClaimsHeldBack;
  /** A cron tick found the previous run of the shard still going and skipped it. */
  'tick:skipped': { readonly shard: number; readonly scheduledAt: Date };
  /** A handler stage threw (also given to `handler.onError`). */
  'handler:error': { readonly shard: number; readonly stage: Stage; readonly attempt: number; readonly error: unknown };
  /**
   * A backend record could not be parsed: skipped (`repaired: false`, reported
   * once per listing that still holds it) or replaced/deleted where that is
   * safe (`repaired: true`: a token counter re-seeded, a claim without a lease
   * deleted, a group record rewritten from the value the live members agree on).
   */
  'record:invalid': { readonly error: InvalidRecordError; readonly repaired: boolean };
  /**
   * An infrastructure error (backend unreachable, revoke timeout, …). The
   * worker carries on. The payload is `{ error }` and prints its error
   * (`String(payload)`, `payload.message`, `console.error(payload)`).
   */
  error: ErrorPayload;
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
  /** What the resolver has done since start: reconcile passes, full listings, changes applied, version checks. */
  readonly resolver: Readonly<ResolverCounters>;
}

/** Most held claims one renewal checks (see `#heldClaims`). */
const MAX_CHECKED = 1000;

/** On stop, handlers that settle within this long are handed over by revoking the lease alone. */
const FAST_STOP_MS = 20;

const WORKER_TRANSITIONS: TransitionTable<WorkerState> = {
  idle: ['starting', 'stopped'],
  starting: ['running', 'stopping', 'stopped'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

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
  readonly #lifecycle = new StateMachine<WorkerState>('worker', WORKER_TRANSITIONS, 'idle');
  #discovery: Discovery | undefined;
  #ownsDiscovery = false;
  #lease: LeaseKeeper | undefined;
  #resolver: Resolver | undefined;
  readonly #runs = new Map<number, ShardRun>();
  /** Revocations in progress: they drain in the background so that one slow handler delays nothing else. */
  readonly #revocations = new Set<Promise<void>>();
  #releases: ReleaseBatcher | undefined;
  /** What every shard run gets from this worker (one object for all of them). */
  readonly #runHost: RunHost;
  #view: readonly Member[] = [];
  #lastWatch = '';
  #reportedInvalid = new Set<string>();
  /** The shard the next renewal's check of held claims starts from, when there are too many for one. */
  #checkFrom = 0;
  #ticker: Ticker | undefined;
  /** Called after every reconcile pass; `start()` waits for the first one only. */
  #afterPass: (() => void) | undefined;
  #recovering: Promise<void> | undefined;
  readonly #startAbort = new AbortController();
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #signalHandler: (() => void) | undefined;

  /** Validates options at once; throws `InvalidOptionsError`, `InvalidCronError` or `InvalidParamsError`. */
  constructor(options: WorkerOptions) {
    super();
    this.#o = compileOptions(options);
    this.#runHost = {
      options: this.#o,
      holds: (id) => this.#holds(id),
      handlerError: (r, ctx, error) => this.#handlerError(r, ctx, error),
      reportError: (e) => this.#reportError(e),
    };
  }

  /** Current lifecycle state. */
  get state(): WorkerState {
    return this.#lifecycle.state;
  }

  /** A consistent snapshot of what this replica owns and sees. */
  status(): WorkerStatus {
    const lease = this.#lease?.held;
    const state = this.#lifecycle.state;
    return {
      state,
      service: this.#o.service,
      shardCount: this.#o.shardCount,
      instance: lease?.instance,
      shards: this.#ownedRuns().map((r) => ({ shard: r.shard, token: r.token, running: r.running })),
      members: this.#view.map((m) => m.id),
      standby:
        lease !== undefined && state === 'running' && this.#runs.size === 0 && this.#view.length > this.#o.shardCount,
      leaseRemainingMs: this.#lease?.remainingMs(),
      resolver: { ...(this.#resolver?.counters ?? { passes: 0, snapshots: 0, deltas: 0, versionChecks: 0 }) },
    };
  }

  /**
   * Connect, check the group (shard count and lease TTL), register, and make
   * the first claims: resolves after the first reconcile pass, while later
   * passes (peers still joining) carry on in the background. Keeps retrying an
   * unreachable backend (emitting `error`) for `startTimeoutMs`.
   * Rejects at once with `ShardCountMismatchError` or `LeaseTtlMismatchError`
   * when the backend holds other settings.
   */
  start(): Promise<void> {
    if (this.state !== 'idle') return Promise.reject(new IllegalStateError('start', this.state));
    this.#setState('starting');
    this.#starting = this.#start().catch(async (error: unknown) => {
      await this.#lease?.release();
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
    const discovery = this.#discovery;
    this.#releases = new ReleaseBatcher(discovery, o.service, (e) => this.#reportError(e));
    let startError: unknown;
    this.#lease = new LeaseKeeper({
      options: o,
      discovery,
      active: () => this.state === 'running' || this.state === 'starting' || this.state === 'stopping',
      registered: (lease) => this.emit('lease:registered', { instance: lease.instance, joinSeq: lease.joinSeq }),
      renewed: (lease, latencyMs) => {
        if (this.listenerCount('lease:renewed') > 0)
          this.emit('lease:renewed', { instance: lease.instance, latencyMs });
      },
      lost: (lease, error, early) => this.#onLeaseLost(lease, error, early),
      held: (lease) => this.#heldClaims(lease.instance),
      claimsLost: (_lease, lost) => this.#onClaimsLost(lost),
      reportError: (e) => {
        if (this.state === 'starting') startError = e;
        this.#reportError(e);
      },
      repaired: (records) => this.#reportRepaired(records),
    });
    const lease = await this.#withinStartTimeout(
      this.#lease.register({ signal: this.#startAbort.signal, timeoutMs: o.startTimeoutMs, failFast: true }),
      discovery,
      () => startError,
    );
    if (lease === undefined || this.#startAbort.signal.aborted) throw new IllegalStateError('start', 'stopping');
    this.#resolver = this.#createResolver(discovery);
    this.#resolver.start();
    this.#setState('running');
    if (o.schedule !== undefined) this.#ticker = startTicker(o.schedule, (at) => this.#onTick(at));
    if (o.handleSignals) this.#installSignalHandlers();
    // Resolve after the first pass (first claims made), not when the loop goes
    // idle: under churn more passes keep coming and would hold start() up.
    await new Promise<void>((resolve) => {
      this.#afterPass = resolve;
      void this.#resolver?.request();
    });
    this.#afterPass = undefined;
  }

  /**
   * `registering`, bounded by `startTimeoutMs` even while a backend call is
   * out: the lease keeper checks its bound only between attempts, and one
   * attempt against a server that accepts connections and never answers
   * lasts as long as the backend's own deadline (etcd's `dialTimeoutMs`, 5 s
   * by default), which overran a 3 s limit to 5 s. On the bound, registration
   * is aborted, and a registration that still lands is let go again. A
   * `startTimeoutMs` of 0 means a single attempt, however long it takes.
   */
  async #withinStartTimeout(
    registering: Promise<Lease | undefined>,
    discovery: Discovery,
    lastError: () => unknown,
  ): Promise<Lease | undefined> {
    const timeoutMs = this.#o.startTimeoutMs;
    if (timeoutMs === 0) return registering;
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        this.#startAbort.abort();
        const cause =
          lastError() ??
          new DiscoveryUnavailableError(
            discovery.kind,
            `no reply within ${timeoutMs} ms (the first call is still waiting: a server that accepts connections but does not answer?)`,
          );
        reject(new StartTimeoutError(timeoutMs, cause));
      }, timeoutMs);
    });
    void registering.then(
      (lease) => {
        if (timedOut && lease !== undefined) void this.#lease?.release();
      },
      () => undefined,
    );
    try {
      return await Promise.race([registering, bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  #createResolver(discovery: Discovery): Resolver {
    return new Resolver({
      options: this.#o,
      discovery,
      lease: () => this.#lease?.held,
      running: () => this.state === 'running',
      holds: (instance) => this.#holds(instance),
      runs: () => this.#runs,
      fence: (lease, detail) => this.#lease?.fence(lease, detail),
      acquire: (shard, token, instance, how) => this.#acquire(shard, token, instance, how),
      revoke: (shard, reason) => this.#revokeInBackground(shard, reason),
      release: (instance, claims) => {
        for (const ref of claims) void this.#releases?.add(instance, ref);
      },
      viewUpdated: (view) => this.#updateView(view),
      passed: () => {
        this.#emitWatch();
        this.#afterPass?.();
      },
      reportError: (e) => this.#reportError(e),
      listedInvalid: (records) => this.#reportInvalid(records),
      repaired: (records) => this.#reportRepaired(records),
      heldBack: (reason, until, groupAgeMs) => this.#heldBack(discovery.kind, reason, until, groupAgeMs),
    });
  }

  /** Say why this replica claims nothing for a while: `claims:held-back`, else a warning. */
  #heldBack(backend: string, reason: HoldBackReason, until: number, groupAgeMs: number | undefined): void {
    const waitMs = Math.max(0, until - this.#o.clock.now());
    const untilMs = Date.now() + waitMs;
    const { kind, units } = this.#o.subject;
    const words = { backend, kind, units, leaseTtlMs: this.#o.leaseTtlMs };
    const message = holdBackMessage(words, reason, waitMs, untilMs, groupAgeMs);
    if (this.listenerCount('claims:held-back') === 0) console.warn(`${this.#o.subject.tag} ${message}`);
    else this.emit('claims:held-back', { reason, untilMs, waitMs, groupAgeMs, message });
  }

  /**
   * Stop taking work and hand every shard over: the member is marked
   * draining, so peers plan without it, and each shard is released as soon as
   * its own handler settles (each bounded by `revokeTimeoutMs`); then the lease
   * is revoked. Idempotent; safe in any state.
   */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.state === 'idle' || this.state === 'stopped') {
      if (this.state === 'idle') this.#setState('stopped');
      return Promise.resolve();
    }
    this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#startAbort.abort();
    if (this.state === 'starting') {
      await this.#starting?.catch(() => undefined);
      if ((this.state as WorkerState) === 'stopped') return;
    }
    this.#setState('stopping');
    this.#ticker?.stop();
    await this.#resolver?.stop();
    await this.#recovering?.catch(() => undefined);
    const lease = this.#lease?.held;
    const owned = [...this.#runs.values()].filter((r) => !r.revoked);
    for (const run of owned) {
      if (run.revoke(new NotOwnerError(run.shard, run.token, 'stop', this.#o.subject), false)) {
        this.emit('shard:revoked', { shard: run.shard, token: run.token, reason: 'stop' });
      }
    }
    // Handlers that settle at once: revoking the lease hands every shard over
    // in one step. Otherwise mark the member draining, so that peers plan
    // without it, and release each shard as soon as its own handler settles
    // (without the mark, peers would give released shards straight back to a
    // member still in their view).
    const settledFast = (await Promise.all(owned.map((run) => run.settle(FAST_STOP_MS)))).every(Boolean);
    let drained = false;
    if (lease !== undefined && owned.length > 0 && !settledFast) {
      drained = await (this.#discovery as Discovery).drain(this.#o.service, lease.instance).then(
        () => true,
        (e: unknown) => {
          this.#reportError(e);
          return false;
        },
      );
    }
    await Promise.all(owned.map((run) => this.#finishRevocation(run, drained, 'stop')));
    await Promise.all([...this.#revocations]);
    await this.#lease?.release();
    this.#emitWatch();
    await this.#teardown();
    this.#setState('stopped');
  }

  /** `await using worker = new Worker(…)` stops it at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #teardown(): Promise<void> {
    this.#lease?.stop();
    this.#ticker?.stop();
    await this.#resolver?.stop();
    this.#removeSignalHandlers();
    if (this.#ownsDiscovery) await this.#discovery?.close().catch(() => undefined);
  }

  #setState(to: WorkerState): void {
    const from = this.#lifecycle.to(to);
    this.emit('state', { from, to });
  }

  /** Whether `instance` is the current, unexpired registration. */
  #holds(instance: string): boolean {
    return this.#lease?.holds(instance) === true;
  }

  // ── lease lost ───────────────────────────────────────────────────────────

  /** Stop every shard of the lost lease at once, then re-register in the background. */
  #onLeaseLost(lease: Lease, error: LeaseLostError, early: boolean): void {
    if (early) {
      // The backend forgot a lease that cannot have expired yet: it lost its
      // data (e.g. Redis restarted empty). Every other replica's lease from
      // before the loss ends within one TTL on its own clock, and until then
      // its owner may still act: claim nothing before that.
      this.#resolver?.blockClaimsUntil(this.#o.clock.now() + this.#o.leaseTtlMs, 'data-loss');
    }
    for (const run of this.#runs.values()) {
      if (run.instance !== lease.instance || !run.revoke(error, false)) continue;
      this.emit('shard:revoked', { shard: run.shard, token: run.token, reason: 'lease-lost' });
    }
    this.emit('lease:lost', { instance: lease.instance, error });
    if (this.state === 'running') {
      this.#recovering ??= this.#recover(lease).finally(() => {
        this.#recovering = undefined;
      });
    }
  }

  async #recover(old: Lease): Promise<void> {
    const discovery = this.#discovery as Discovery;
    // If the backend still holds the old lease, revoking it frees our shards for
    // peers now rather than at expiry. Handlers already see `owned === false`.
    void discovery.unregister(this.#o.service, old.instance).catch(() => undefined);
    await Promise.all(
      [...this.#runs.values()]
        .filter((r) => r.instance === old.instance)
        // The lease is gone, and its claims with it: nothing to give back.
        .map((r) => this.#finishRevocation(r, false, 'lease-lost')),
    );
    this.#emitWatch();
    const lease = await this.#lease?.register({ signal: this.#startAbort.signal, failFast: false });
    if (lease === undefined) return;
    this.#resolver?.invalidate();
    void this.#resolver?.request();
  }

  // ── shards ───────────────────────────────────────────────────────────────

  /**
   * Claims of `instance` that a run still acts on or drains under, for the
   * next renewal to check: all of them, or the next {@link MAX_CHECKED} in
   * shard order after the last ones checked, so that a replica holding
   * thousands of shards spreads the check over several heartbeats.
   */
  #heldClaims(instance: string): ClaimRef[] {
    const held = [...this.#runs.values()]
      .filter((run) => run.instance === instance && run.state !== 'released')
      .sort((a, b) => a.shard - b.shard);
    let picked = held;
    if (held.length > MAX_CHECKED) {
      const from = Math.max(
        0,
        held.findIndex((run) => run.shard >= this.#checkFrom),
      );
      picked = Array.from({ length: MAX_CHECKED }, (_, i) => held[(from + i) % held.length] as ShardRun);
      this.#checkFrom = (picked.at(-1)?.shard ?? -1) + 1;
    }
    return picked.map((run) => ({ shard: run.shard, token: run.token }));
  }

  /**
   * A renewal found claims that are not ours any more (written over behind
   * our back): stop acting on them at once, then re-list to see what is there.
   */
  #onClaimsLost(lost: readonly ClaimRef[]): void {
    for (const { shard, token } of lost) {
      const run = this.#runs.get(shard);
      if (run === undefined || run.token !== token) continue;
      // A draining run is revoked already; its claim is gone all the same, so ctx.held turns false.
      if (run.revoked) run.revoke(new NotOwnerError(shard, token, 'claim-lost', this.#o.subject), true);
      else this.#revokeInBackground(shard, 'claim-lost');
    }
    this.#resolver?.invalidate();
    void this.#resolver?.request();
  }

  #acquire(shard: number, token: number, instance: string, how: Acquisition): void {
    const run = new ShardRun(this.#runHost, shard, token, instance);
    this.#runs.set(shard, run);
    this.emit('shard:acquired', { shard, token, reason: how.reason, vacantMs: how.vacantMs });
    if (this.#o.schedule === undefined) run.start(undefined);
  }

  #revokeInBackground(shard: number, why: 'rebalance' | 'claim-lost'): void {
    const run = this.#runs.get(shard);
    if (run === undefined || run.revoked) return;
    // A claim lost behind our back is not ours even while the handler drains.
    const lost = why === 'claim-lost';
    run.revoke(new NotOwnerError(shard, run.token, why, this.#o.subject), lost);
    this.emit('shard:revoked', { shard, token: run.token, reason: why });
    const done: Promise<void> = this.#finishRevocation(run, !lost, why).finally(() => {
      this.#revocations.delete(done);
      void this.#resolver?.request();
    });
    this.#revocations.add(done);
  }

  /** Wait for a revoked run's handler (bounded), then give its claim back if asked. Never rejects. */
  async #finishRevocation(run: ShardRun, release: boolean, reason: RevokeReason): Promise<void> {
    await this.#settle(run, reason);
    run.markReleased();
    const releasing = release && this.#holds(run.instance);
    if (releasing) await this.#releases?.add(run.instance, { shard: run.shard, token: run.token });
    this.#emitReleased(run, reason, releasing);
    if (this.#runs.get(run.shard) === run) this.#runs.delete(run.shard);
  }

  #emitReleased(run: ShardRun, reason: RevokeReason, released: boolean): void {
    if (this.listenerCount('shard:released') === 0) return;
    const drainMs = run.revokedAt === undefined ? 0 : this.#o.clock.now() - run.revokedAt;
    this.emit('shard:released', { shard: run.shard, token: run.token, reason, released, drainMs });
  }

  /** Wait for a run's pipeline to finish, at most `revokeTimeoutMs`. */
  async #settle(run: ShardRun, reason: RevokeReason): Promise<void> {
    const timeout = this.#o.revokeTimeoutMs;
    if (await run.settle(timeout)) return;
    const context = { reason, cause: run.revokedBy, subject: this.#o.subject };
    this.#reportError(new RevokeTimeoutError(run.shard, timeout, context));
  }

  #onTick(scheduledAt: Date): void {
    if (this.state !== 'running') return;
    for (const run of this.#runs.values()) {
      if (run.revoked) continue;
      if (!run.start(scheduledAt)) this.emit('tick:skipped', { shard: run.shard, scheduledAt });
    }
  }

  /** Runs of shards still owned (not being revoked), by shard. */
  #ownedRuns(): ShardRun[] {
    return [...this.#runs.values()].filter((r) => !r.revoked).sort((a, b) => a.shard - b.shard);
  }

  #handlerError(run: ShardRun, ctx: ShardContext, error: unknown): void {
    this.emit('handler:error', { shard: run.shard, stage: ctx.stage, attempt: ctx.attempt, error });
    const onError = this.#o.handler.onError;
    if (onError === undefined) {
      // Nobody would hear of it: say so once per failing run, and when it gives up.
      if (this.listenerCount('handler:error') === 0 && (ctx.attempt === 1 || error instanceof AttemptsExhaustedError)) {
        const { tag, unit } = this.#o.subject;
        console.warn(`${tag} ${unit} ${run.shard} ${ctx.stage} failed: ${errorReason(error)}`);
      }
      return;
    }
    try {
      onError.call(this.#o.handler, error, ctx);
    } catch (thrown) {
      this.#reportError(thrown);
    }
  }

  // ── view ─────────────────────────────────────────────────────────────────

  #updateView(view: readonly Member[]): void {
    if (view === this.#view) return;
    const before = new Set(this.#view.map((m) => m.id));
    const after = new Set(view.map((m) => m.id));
    this.#view = view;
    for (const m of view) if (!before.has(m.id)) this.emit('member:joined', { member: m });
    for (const id of before) if (!after.has(id)) this.emit('member:left', { instance: id });
  }

  #reportInvalid(records: readonly InvalidRecord[]): void {
    const seen = new Set<string>();
    for (const bad of records) {
      const key = `${bad.key}\u0000${bad.reason}`;
      seen.add(key);
      if (!this.#reportedInvalid.has(key)) {
        this.emit('record:invalid', { error: new InvalidRecordError(bad.key, bad.reason), repaired: false });
      }
    }
    this.#reportedInvalid = seen;
  }

  #reportRepaired(records: readonly InvalidRecord[]): void {
    for (const bad of records) {
      this.emit('record:invalid', {
        error: new InvalidRecordError(bad.key, `${bad.reason} (repaired)`),
        repaired: true,
      });
    }
  }

  #emitWatch(): void {
    const lease = this.#lease?.current;
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

  // ── plumbing ─────────────────────────────────────────────────────────────

  #reportError(error: unknown): void {
    if (this.listenerCount('error') === 0) {
      console.warn(`${this.#o.subject.tag} ${errorReason(error)}`);
      return;
    }
    this.emit('error', errorPayload(error));
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
