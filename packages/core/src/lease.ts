/**
 * This replica's membership: registration (one retry loop, used at start and
 * after a lost lease), heartbeats every TTL/3, and the self-fencing deadline
 * on the monotonic clock (send time of the last successful renewal + TTL −
 * margin). Past the deadline the lease counts as lost whatever the backend
 * says. A {@link Lease} is a cancellation scope, like etcd's
 * `concurrency.Session` with its `Done()`: its `signal` aborts when it is
 * lost, and the work that lives under it (every shard run) derives its own
 * cancellation from that signal. The worker is told once and re-registers.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { nanoid } from 'nanoid';
import type { ClaimRef, Discovery, InvalidRecord } from './discovery/contract.js';
import {
  DiscoveryUnavailableError,
  isRetryableError,
  LeaseExpiredError,
  LeaseLostError,
  StartTimeoutError,
} from './errors.js';
import { ensureGroup } from './group.js';
import type { CompiledWorkerOptions } from './options.js';
import { retrying } from './retrying.js';
import { StateMachine, type TransitionTable } from './states.js';

/** `held` until it is lost (self-fenced or forgotten by the backend) or released by `stop()`. */
export type LeaseState = 'held' | 'lost' | 'released';

const LEASE_TRANSITIONS: TransitionTable<LeaseState> = {
  held: ['lost', 'released'],
  lost: [],
  released: [],
};

/** One registration of this replica, and the cancellation scope of the work done under it. */
export class Lease {
  /** Member id of this registration. */
  readonly instance: string;
  /** Join order assigned by the backend. */
  readonly joinSeq: number;
  /** Monotonic time after which this replica must consider itself fenced. */
  deadline: number;
  readonly #state = new StateMachine<LeaseState>('lease', LEASE_TRANSITIONS, 'held');
  readonly #ended = new AbortController();

  constructor(instance: string, joinSeq: number, deadline: number) {
    this.instance = instance;
    this.joinSeq = joinSeq;
    this.deadline = deadline;
    // Every shard run under this lease listens to its signal (one listener per shard owned):
    // many listeners are the design, not a leak, so Node's warning past 10 is turned off.
    setMaxListeners(0, this.#ended.signal);
  }

  /** The lease's state. */
  get state(): LeaseState {
    return this.#state.state;
  }

  /**
   * Aborts when the lease leaves `held`: when it is lost, with the
   * `LeaseLostError` as its reason; when `stop()` releases it, with an
   * `AbortError`. Abort listeners run in the order they were added, before
   * the worker hears of the loss.
   */
  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  /** Leave `held` and abort {@link Lease.signal} with `reason`; false when it already had. */
  retire(to: 'lost' | 'released', reason?: Error): boolean {
    if (this.#state.state !== 'held') return false;
    this.#state.to(to);
    this.#ended.abort(reason);
    return true;
  }
}

/** What the lease keeper needs from its worker. */
export interface LeaseHost {
  readonly options: CompiledWorkerOptions;
  readonly discovery: Discovery;
  /** Keep renewing: true while starting, running and stopping. */
  active(): boolean;
  registered(lease: Lease): void;
  /** A heartbeat renewed the lease; `latencyMs` is the renewal's round trip. */
  renewed(lease: Lease, latencyMs: number): void;
  /** The lease is lost; its signal has aborted already, so the work under it has stopped. */
  lost(lease: Lease, error: LeaseLostError): void;
  reportError(error: unknown): void;
  /** Garbage records the group check rewrote. */
  repaired(records: readonly InvalidRecord[]): void;
  /** The claims this lease's shard runs hold (owned or draining), checked by each renewal. */
  held(lease: Lease): readonly ClaimRef[];
  /** A renewal found claims of `held` that are no longer this member's. */
  claimsLost(lease: Lease, lost: readonly ClaimRef[]): void;
}

/** How {@link LeaseKeeper.register} retries an unreachable backend. */
export interface RegisterPolicy {
  /** Stop retrying (the worker is stopping). */
  readonly signal: AbortSignal;
  /**
   * Give up with `StartTimeoutError` after this long, even while a backend
   * call is still out; `0` for a single attempt, however long it takes;
   * unbounded when absent.
   */
  readonly timeoutMs?: number | undefined;
  /** Rethrow errors that retrying cannot fix (at start); otherwise report them and keep trying. */
  readonly failFast: boolean;
}

/** Registration, heartbeat and self-fencing of one replica. */
export class LeaseKeeper {
  readonly #host: LeaseHost;
  #current: Lease | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #fenceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why the last renewal failed, `undefined` after a success: the cause of a lease lost on its deadline. */
  #renewError: unknown;

  constructor(host: LeaseHost) {
    this.#host = host;
  }

  /** The latest registration, whatever its state. */
  get current(): Lease | undefined {
    return this.#current;
  }

  /** The current registration if it is held. */
  get held(): Lease | undefined {
    const lease = this.#current;
    return lease?.state === 'held' ? lease : undefined;
  }

  /** Whether `instance` is the current, unexpired registration. Synchronous: reads the clock. */
  holds(instance: string): boolean {
    const lease = this.#current;
    return (
      lease !== undefined &&
      lease.instance === instance &&
      lease.state === 'held' &&
      this.#host.options.clock.now() < lease.deadline
    );
  }

  /** Ms until the self-fencing deadline, `undefined` while nothing is held. */
  remainingMs(): number | undefined {
    const lease = this.held;
    return lease === undefined ? undefined : Math.max(0, lease.deadline - this.#host.options.clock.now());
  }

  /**
   * Check the group and register a new member, retrying retryable failures
   * with backoff. One id for every attempt: a registration whose reply was lost
   * is then overwritten by the retry instead of lingering as a ghost member.
   * Resolves `undefined` when `policy.signal` aborts first.
   *
   * `timeoutMs` bounds the whole of it, a backend call still out included:
   * the retries stop short of it, but one attempt against a server that
   * accepts connections and never answers lasts as long as the backend's own
   * deadline (etcd's `dialTimeoutMs`, 5 s by default), which overran a 3 s
   * limit to 5 s. On the bound, registration is aborted, and a registration
   * that still lands is let go again.
   */
  async register(policy: RegisterPolicy): Promise<Lease | undefined> {
    const { timeoutMs } = policy;
    if (timeoutMs === undefined || timeoutMs === 0) return this.#register(policy, policy.signal, () => undefined);
    const bound = new AbortController();
    const stop = (): void => bound.abort(policy.signal.reason);
    if (policy.signal.aborted) stop();
    else policy.signal.addEventListener('abort', stop, { once: true });
    let last: unknown;
    const registering = this.#register(policy, bound.signal, (error) => {
      last = error;
    });
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        bound.abort();
        const cause =
          last ??
          new DiscoveryUnavailableError(
            this.#host.discovery.kind,
            `no reply within ${timeoutMs} ms (the first call is still waiting: a server that accepts connections but does not answer?)`,
          );
        reject(new StartTimeoutError(timeoutMs, cause));
      }, timeoutMs);
    });
    void registering.then(
      (lease) => {
        if (timedOut && lease !== undefined) void this.release();
      },
      () => undefined,
    );
    try {
      return await Promise.race([registering, timeout]);
    } finally {
      clearTimeout(timer);
      policy.signal.removeEventListener('abort', stop);
    }
  }

  /** The retry loop of {@link LeaseKeeper.register}, stopped by `signal`; `failed` hears of each failure retried. */
  async #register(
    policy: RegisterPolicy,
    signal: AbortSignal,
    failed: (error: unknown) => void,
  ): Promise<Lease | undefined> {
    const o = this.#host.options;
    const instance = nanoid(12);
    const { timeoutMs } = policy;
    try {
      return await retrying(() => this.#registerOnce(instance), {
        retryable: (error) => !policy.failFast || isRetryableError(error),
        signal,
        deadlineMs: timeoutMs,
        backoff: { initialMs: 100, maxMs: Math.max(100, Math.min(5000, o.leaseTtlMs / 4)) },
        onRetry: (error) => {
          failed(error);
          this.#host.reportError(error);
        },
        giveUp: (error) => new StartTimeoutError(timeoutMs as number, error),
        clock: o.clock,
      });
    } catch (error) {
      if (signal.aborted && error === signal.reason) return undefined;
      throw error;
    }
  }

  async #registerOnce(instance: string): Promise<Lease> {
    const o = this.#host.options;
    const discovery = this.#host.discovery;
    await ensureGroup(discovery, o, (records) => this.#host.repaired(records));
    const sentAt = o.clock.now();
    const { joinSeq } = await discovery.register(
      o.service,
      {
        id: instance,
        host: o.host,
        pid: process.pid,
        startedAt: Date.now(),
        weight: o.weight,
        labels: o.labels,
        shardCount: o.shardCount,
        leaseTtlMs: o.leaseTtlMs,
      },
      o.leaseTtlMs,
    );
    const lease = new Lease(instance, joinSeq, this.#deadlineAfter(sentAt));
    if (o.clock.now() >= lease.deadline) {
      await discovery.unregister(o.service, instance).catch(() => undefined);
      throw new DiscoveryUnavailableError(
        discovery.kind,
        `registration took longer than the lease TTL (${o.leaseTtlMs} ms)`,
      );
    }
    this.#current = lease;
    this.#renewError = undefined;
    this.#armFence(lease);
    this.#scheduleHeartbeat(o.heartbeatIntervalMs);
    this.#host.registered(lease);
    return lease;
  }

  /** Revoke the held lease (best effort): peers see this member leave at once. */
  async release(): Promise<void> {
    const lease = this.#current;
    if (lease === undefined || !lease.retire('released')) return;
    this.#clearTimers();
    await this.#host.discovery
      .unregister(this.#host.options.service, lease.instance)
      .catch((e: unknown) => this.#host.reportError(e));
  }

  /** The backend says this member is gone, or it is missing from the view: the lease is lost. */
  fence(lease: Lease, detail: string): void {
    const error = new LeaseLostError(lease.instance, detail, this.#renewError);
    if (!lease.retire('lost', error)) return;
    this.#clearTimers();
    this.#host.lost(lease, error);
  }

  /** Stop every timer (teardown). */
  stop(): void {
    this.#clearTimers();
  }

  /**
   * The self-fencing deadline of a registration or renewal sent at `sentAt`.
   * The backend starts the TTL when it processes the request, after `sentAt`,
   * so this is always earlier than the backend's expiry.
   */
  #deadlineAfter(sentAt: number): number {
    return sentAt + this.#host.options.leaseTtlMs - this.#host.options.fenceMarginMs;
  }

  #clearTimers(): void {
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#fenceTimer);
    this.#heartbeatTimer = undefined;
    this.#fenceTimer = undefined;
  }

  /** The heartbeat timer is the one that keeps the process alive while a worker runs. */
  #scheduleHeartbeat(delay: number): void {
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = setTimeout(() => {
      this.#heartbeatTimer = undefined;
      void this.#heartbeat();
    }, delay);
  }

  async #heartbeat(): Promise<void> {
    const lease = this.held;
    if (lease === undefined || !this.#host.active()) return;
    const o = this.#host.options;
    const sentAt = o.clock.now();
    // Keep the cadence whatever the reply time: a renewal that hangs must not
    // delay the next one (renewals are idempotent).
    this.#scheduleHeartbeat(o.heartbeatIntervalMs);
    try {
      // The renewal also checks the claims we act on: one written over behind
      // our back changes no revision on some backends, so no event or version
      // check would tell us, and we would act on a shard another member may own.
      const result = await this.#host.discovery.renew(o.service, lease.instance, this.#host.held(lease));
      if (lease.state !== 'held') return;
      lease.deadline = Math.max(lease.deadline, this.#deadlineAfter(sentAt));
      this.#renewError = undefined;
      this.#armFence(lease);
      this.#host.renewed(lease, o.clock.now() - sentAt);
      if (result !== undefined && result.lost.length > 0) this.#host.claimsLost(lease, result.lost);
    } catch (error) {
      if (lease.state !== 'held') return;
      if (error instanceof LeaseExpiredError) {
        this.fence(lease, 'the backend no longer knows this member');
        return;
      }
      this.#renewError = error;
      this.#host.reportError(error);
      // Retry sooner than usual: every renewal before the deadline counts.
      this.#scheduleHeartbeat(Math.max(10, o.heartbeatIntervalMs / 3));
    }
  }

  #armFence(lease: Lease): void {
    clearTimeout(this.#fenceTimer);
    const delay = Math.max(0, lease.deadline - this.#host.options.clock.now());
    this.#fenceTimer = setTimeout(() => {
      this.#fenceTimer = undefined;
      if (this.#host.options.clock.now() >= lease.deadline)
        this.fence(lease, 'no successful renewal before the deadline');
      else this.#armFence(lease);
    }, delay);
    this.#fenceTimer.unref?.();
  }
}
