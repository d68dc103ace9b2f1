/**
 * The worker: the lifecycle of one replica, wiring its lease
 * ({@link LeaseKeeper}), its resolver ({@link Resolver}) and the table of its
 * shard runs ({@link Runs}). Stopping marks the member draining, so that
 * peers plan without it and take each shard as soon as its own handler
 * settles and its claim is released.
 *
 * @module
 */

import type { Discovery, Member } from './discovery/contract.js';
import { createDiscovery } from './discovery/registry.js';
import { reason as errorReason, IllegalStateError, type InvalidRecordError, type LeaseLostError } from './errors.js';
import { type ErrorPayload, errorPayload, TypedEmitter } from './events.js';
import type { WatchInfo } from './handler.js';
import { type ClaimsHeldBack, HoldBack } from './hold-back.js';
import { InvalidRecordReports } from './invalid-records.js';
import { type Lease, LeaseKeeper } from './lease.js';
import type { LogFields } from './logger.js';
import { type CompiledWorkerOptions, compileOptions, type WorkerOptions } from './options.js';
import { ReleaseBatcher } from './release-batcher.js';
import { Resolver, type ResolverCounters } from './resolver.js';
import { type RunEventMap, Runs } from './runs.js';
import { startTicker, type Ticker } from './schedule.js';
import { stopOnSignals } from './signals.js';
import { StateMachine, type TransitionTable } from './states.js';

/** Lifecycle states; `start()` and `stop()` move between them. */
export type WorkerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Every event of a {@link Worker}, one payload object each (those of its shard runs in {@link RunEventMap}). */
export interface WorkerEventMap extends RunEventMap {
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
  readonly #runs: Runs;
  #releases: ReleaseBatcher | undefined;
  #view: readonly Member[] = [];
  #lastWatch = '';
  readonly #invalid = new InvalidRecordReports((report) => this.emit('record:invalid', report));
  #ticker: Ticker | undefined;
  /** Called after every reconcile pass; `start()` waits for the first one only. */
  #afterPass: (() => void) | undefined;
  readonly #settledWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #recovering: Promise<void> | undefined;
  readonly #startAbort = new AbortController();
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #removeSignalHandlers: () => void = () => undefined;

  /** Validates options at once; throws `InvalidOptionsError`, `InvalidCronError` or `InvalidParamsError`. */
  constructor(options: WorkerOptions) {
    super();
    this.#o = compileOptions(options);
    this.logger = this.#o.logger;
    this.#runs = new Runs({
      options: this.#o,
      events: {
        // (WorkerEventMap extends RunEventMap: the same payload, which TypeScript cannot see through the generic.)
        emit: (event, payload) => this.emit(event, payload as WorkerEventMap[typeof event]),
        listenerCount: (event) => this.listenerCount(event),
      },
      holds: (id) => this.#holds(id),
      giveBack: (instance, ref) => this.#releases?.add(instance, ref) ?? Promise.resolve(),
      revoked: () => void this.#resolver?.request(),
      reportError: (e) => this.#reportError(e),
    });
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
      shards: this.#runs.owned().map((r) => ({ shard: r.shard, token: r.token, running: r.running })),
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
    const { kind, units } = o.subject;
    const holdBack = new HoldBack({
      clock: o.clock,
      leaseTtlMs: o.leaseTtlMs,
      words: { backend: discovery.kind, kind, units, leaseTtlMs: o.leaseTtlMs },
      // Say why this replica claims nothing for a while: `claims:held-back`, else a warning.
      told: (event) => {
        if (this.listenerCount('claims:held-back') === 0) {
          o.logger.warn({ ...this.#fields(), untilMs: event.untilMs, reason: event.reason }, event.message);
        } else this.emit('claims:held-back', event);
      },
    });
    this.#lease = new LeaseKeeper({
      options: o,
      discovery,
      active: () => this.state === 'running' || this.state === 'starting' || this.state === 'stopping',
      registered: (lease) => {
        holdBack.follow(lease);
        this.emit('lease:registered', { instance: lease.instance, joinSeq: lease.joinSeq });
      },
      renewed: (lease, latencyMs) => {
        if (this.listenerCount('lease:renewed') > 0)
          this.emit('lease:renewed', { instance: lease.instance, latencyMs });
      },
      lost: (lease, error) => this.#onLeaseLost(lease, error),
      held: (lease) => this.#runs.heldClaims(lease.instance),
      claimsLost: (_lease, lost) => {
        this.#runs.claimsLost(lost);
        // Then re-list to see what is there.
        this.#resolver?.invalidate();
        void this.#resolver?.request();
      },
      reportError: (e) => this.#reportError(e),
      repaired: (records) => this.#invalid.repaired(records),
    });
    const lease = await this.#lease.register({
      signal: this.#startAbort.signal,
      timeoutMs: o.startTimeoutMs,
      failFast: true,
    });
    if (lease === undefined || this.#startAbort.signal.aborted) throw new IllegalStateError('start', 'stopping');
    this.#resolver = this.#createResolver(discovery, this.#lease, holdBack);
    this.#resolver.start();
    this.#setState('running');
    if (o.schedule !== undefined) this.#ticker = startTicker(o.schedule, (at) => this.#onTick(at));
    if (o.handleSignals) this.#removeSignalHandlers = stopOnSignals(() => void this.stop());
    // Resolve after the first pass (first claims made), not when the loop goes
    // idle: under churn more passes keep coming and would hold start() up.
    await new Promise<void>((resolve) => {
      this.#afterPass = resolve;
      void this.#resolver?.request();
    });
    this.#afterPass = undefined;
  }

  #createResolver(discovery: Discovery, lease: LeaseKeeper, holdBack: HoldBack): Resolver {
    return new Resolver({
      options: this.#o,
      discovery,
      lease,
      runs: this.#runs,
      reports: {
        error: (e) => this.#reportError(e),
        invalid: (records) => this.#invalid.listed(records),
        repaired: (records) => this.#invalid.repaired(records),
      },
      running: () => this.state === 'running',
      viewUpdated: (view) => this.#updateView(view),
      passed: () => {
        this.#emitWatch();
        this.#afterPass?.();
        this.#checkSettled();
      },
      holdBack,
    });
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
    // Revoking the lease afterwards hands over what was not given back one by one.
    await this.#runs.stop(async () => {
      if (lease === undefined) return false;
      return (this.#discovery as Discovery).drain(this.#o.service, lease.instance).then(
        () => true,
        (e: unknown) => {
          this.#reportError(e);
          return false;
        },
      );
    });
    await this.#lease?.release();
    this.#emitWatch();
    await this.#teardown();
    this.#setState('stopped');
  }

  /**
   * Resolves once this replica does its share: it runs and owns at least one
   * shard, or stands by (more replicas than shards). What a library that runs
   * a worker for its users waits for before it says it consumes (the job
   * adapters' `start()`), instead of polling `status()`. Rejects with
   * `IllegalStateError` if the worker stops first.
   */
  settled(): Promise<void> {
    if (this.#isSettled()) return Promise.resolve();
    if (this.state === 'stopping' || this.state === 'stopped') {
      return Promise.reject(new IllegalStateError('settle', this.state));
    }
    return new Promise((resolve, reject) => this.#settledWaiters.push({ resolve, reject }));
  }

  #isSettled(): boolean {
    const s = this.status();
    return s.state === 'running' && (s.shards.length > 0 || s.standby);
  }

  #checkSettled(): void {
    if (this.#settledWaiters.length === 0) return;
    const stopped = this.state === 'stopping' || this.state === 'stopped';
    if (!stopped && !this.#isSettled()) return;
    for (const waiter of this.#settledWaiters.splice(0)) {
      if (stopped) waiter.reject(new IllegalStateError('settle', this.state));
      else waiter.resolve();
    }
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
    this.#checkSettled();
  }

  /** Whether `instance` is the current, unexpired registration. */
  #holds(instance: string): boolean {
    return this.#lease?.holds(instance) === true;
  }

  // ── lease lost ───────────────────────────────────────────────────────────

  /**
   * The lease is lost: its shard runs stopped with its signal (and the
   * hold-back heard of it first); re-register in the background.
   */
  #onLeaseLost(lease: Lease, error: LeaseLostError): void {
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
    // The lease is gone, and its claims with it: nothing to give back.
    await this.#runs.finishLeaseLost(old.instance);
    this.#emitWatch();
    const lease = await this.#lease?.register({ signal: this.#startAbort.signal, failFast: false });
    if (lease === undefined) return;
    this.#resolver?.invalidate();
    void this.#resolver?.request();
  }

  #onTick(scheduledAt: Date): void {
    if (this.state === 'running') this.#runs.tick(scheduledAt);
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

  #emitWatch(): void {
    const lease = this.#lease?.current;
    if (lease === undefined) return;
    const shards = this.#runs.owned().map((r) => r.shard);
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

  /** The fields of every line this worker logs: its scope (the console's prefix), service and member. */
  #fields(): LogFields {
    const { subject, service } = this.#o;
    return { scope: subject.tag.slice('[shardwork '.length, -1), service, member: this.#lease?.held?.instance };
  }

  #reportError(error: unknown): void {
    if (this.listenerCount('error') === 0) {
      this.#o.logger.warn({ ...this.#fields(), error }, errorReason(error));
      return;
    }
    this.emit('error', errorPayload(error));
  }
}
