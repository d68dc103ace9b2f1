/**
 * The watches of one {@link PostgresDiscovery}: listeners per service on the
 * {@link Listener}'s connection, notifications turned into events, and the
 * expiry timer.
 *
 * Every change of a service sends one NOTIFY at commit with its revision, the
 * previous revision and the changes (see `changes.ts`); PostgreSQL delivers
 * them in commit order, and never loses one while the LISTEN connection
 * lives. They become `change` events with deltas, passed on as they are: a
 * listener whose view is behind `previous` re-lists (core's `ServiceView`).
 * When the connection was lost, `reset` tells every listener to re-list.
 *
 * Nobody else removes a member that stopped renewing, so each watched service
 * has a timer at the earliest lease expiry known here: from a snapshot, a
 * heartbeat reply (the other members' leases), a reap, or the TTL of a member
 * a notification announces. When it fires, a reap by the server's clock
 * removes and announces whatever expired, and re-arms the timer. A replica
 * that heartbeats re-arms it with every reply, and since live members renew
 * every TTL/3, at steady state it never fires: an idle service costs nothing
 * but heartbeats.
 *
 * @module
 */

import type { DiscoveryEvent, DiscoveryListener } from '@shardwork/core';
import type { ReapResult } from './changes.js';
import type { Listener } from './listener.js';
import { parseNotification } from './records.js';

/** Time past a lease's expiry before the timer reaps, so it never fires a hair early. */
export const EXPIRY_SLACK_MS = 10;

/** How long after a failed reap the timer tries again. */
export const RETRY_REAP_MS = 500;

/** What the watches need from their backend. */
export interface WatchHost {
  /** The NOTIFY channel of a service. */
  channel(service: string): string;
  /** Reap the service by the server's clock. */
  reap(service: string): Promise<ReapResult>;
}

interface WatchState {
  readonly service: string;
  readonly channel: string;
  readonly listeners: Set<{ readonly listener: DiscoveryListener }>;
  /** Highest revision of an event given to the listeners: events never go back. */
  emitted: bigint | undefined;
  expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** `performance.now()` the timer fires at. */
  expiryAt: number;
  checking: boolean;
}

/** See the module documentation. */
export class ServiceWatches {
  readonly #host: WatchHost;
  readonly #listener: Listener;
  readonly #states = new Map<string, WatchState>();
  #closed = false;

  constructor(host: WatchHost, listener: Listener) {
    this.#host = host;
    this.#listener = listener;
  }

  /** Subscribe `listener` to the changes of `service`; returns the unsubscribe function. */
  watch(service: string, listener: DiscoveryListener): () => void {
    if (this.#closed) return () => undefined;
    const channel = this.#host.channel(service);
    let state = this.#states.get(channel);
    if (state === undefined) {
      state = {
        service,
        channel,
        listeners: new Set(),
        emitted: undefined,
        expiryTimer: undefined,
        expiryAt: Number.POSITIVE_INFINITY,
        checking: false,
      };
      this.#states.set(channel, state);
      this.#listener.add(channel);
    }
    const entry = { listener };
    const watched = state;
    watched.listeners.add(entry);
    return () => {
      if (!watched.listeners.delete(entry) || watched.listeners.size > 0) return;
      if (this.#states.get(channel) === watched) this.#stop(watched);
    };
  }

  /** Resolves once the watch of `service` is live (at once when there is none), or after `timeoutMs`. */
  whenLive(service: string, timeoutMs: number): Promise<void> {
    const channel = this.#host.channel(service);
    if (!this.#states.has(channel)) return Promise.resolve();
    return this.#listener.whenLive(channel, timeoutMs);
  }

  /** A reply said when the next lease of `service` runs out (`undefined`: none): re-arm its timer. */
  observeExpiry(service: string, inMs: number | undefined): void {
    const state = this.#states.get(this.#host.channel(service));
    if (state !== undefined) this.#arm(state, inMs, true);
  }

  /** A notification arrived on `channel`. */
  notification(channel: string, payload: string): void {
    const state = this.#states.get(channel);
    if (state === undefined) return;
    const { event, ttls } = parseNotification(payload);
    for (const ttl of ttls) this.#arm(state, ttl, false);
    this.#emit(state, event);
  }

  /** `channel` is listened to; after a lost connection the listeners must re-list. */
  live(channel: string, reconnected: boolean): void {
    const state = this.#states.get(channel);
    if (state === undefined) return;
    if (reconnected) this.#emit(state, { type: 'reset' });
    // Learn the expiries of the members already there (and reap what expired meanwhile).
    void this.#check(state);
  }

  /** Stop every watch; no listener is called after this returns. */
  close(): void {
    this.#closed = true;
    for (const state of [...this.#states.values()]) this.#stop(state);
  }

  #stop(state: WatchState): void {
    this.#states.delete(state.channel);
    clearTimeout(state.expiryTimer);
    state.expiryTimer = undefined;
    this.#listener.remove(state.channel);
  }

  /** Reap and re-arm the timer from the reply. Never rejects. */
  async #check(state: WatchState): Promise<void> {
    if (state.checking || this.#closed) return;
    state.checking = true;
    let result: ReapResult | undefined;
    try {
      result = await this.#host.reap(state.service);
    } catch {
      result = undefined; // unreachable now: try again shortly
    } finally {
      state.checking = false;
    }
    if (this.#states.get(state.channel) !== state) return;
    if (result === undefined) this.#arm(state, RETRY_REAP_MS, true);
    else this.#arm(state, result.nextExpiryMs, true);
  }

  /**
   * Fire the timer `inMs` (+ slack) from now: `replace` with fresher data
   * from the server, else only if that is earlier than the timer armed.
   */
  #arm(state: WatchState, inMs: number | undefined, replace: boolean): void {
    if (this.#closed || this.#states.get(state.channel) !== state) return;
    const at = inMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + inMs + EXPIRY_SLACK_MS;
    if (!replace && at >= state.expiryAt) return;
    clearTimeout(state.expiryTimer);
    state.expiryTimer = undefined;
    state.expiryAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    state.expiryTimer = setTimeout(
      () => {
        state.expiryTimer = undefined;
        state.expiryAt = Number.POSITIVE_INFINITY;
        void this.#check(state);
      },
      Math.max(0, at - performance.now()),
    );
    state.expiryTimer.unref?.();
  }

  /** Give `event` to every listener, unless its revision is not past the last one given. */
  #emit(state: WatchState, event: DiscoveryEvent): void {
    if (event.revision !== undefined) {
      const revision = BigInt(event.revision);
      if (state.emitted !== undefined && revision <= state.emitted) return;
      state.emitted = revision;
    }
    for (const entry of [...state.listeners]) {
      // Checked per call: a listener may unsubscribe another one.
      if (!state.listeners.has(entry) || this.#closed) continue;
      try {
        entry.listener(event);
      } catch {
        // A throwing listener must not break the connection or the other listeners.
      }
    }
  }
}
