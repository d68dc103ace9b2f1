/**
 * The watch machinery of one {@link RedisDiscovery}: a subscriber connection
 * on the `:events` channels of the watched services, the check for lost
 * messages, and the expiry timer that reaps a crashed member just after its
 * lease runs out.
 *
 * Every state change publishes one message with its revision, the previous
 * revision and the changes (see `common.lua`); they become `change` events
 * with deltas. Pub/sub may lose messages (a subscriber reconnect, an output
 * buffer limit), so every reply that carries the current revision (a renew, a
 * reap, a snapshot) is compared with the messages seen: when a reply is ahead
 * and no message catches up within {@link CATCH_UP_MS}, listeners get a hint
 * (`change` without `changes`) and re-list. A connection that heartbeats a
 * member of the service gets that revision with every heartbeat and sends no
 * poll; one that only watches polls the revision every `pollIntervalMs`.
 *
 * Nobody else removes a crashed member, so each watching connection keeps one
 * timer at the earliest lease expiry it knows of (from a heartbeat reply: of
 * the *other* members). A heartbeat reply re-arms it, and since live members
 * renew every TTL/3 their leases never come closer than about 2/3 TTL: at
 * steady state the timer is always re-armed before it fires and costs nothing.
 * A member that stops renewing is reaped and announced within
 * {@link EXPIRY_SLACK_MS} of its expiry, by every watching connection's timer
 * (one request per connection per crash; the first one reaps).
 *
 * @module
 */

import type { DiscoveryEvent, DiscoveryListener } from '@shardwork/core';
import type { RedisClient } from './kit/connection-options.js';
import { parseMessage, type RevisionProbe } from './records.js';

/** Time past a member's expiry before the expiry timer reaps, so it never fires a hair early. */
export const EXPIRY_SLACK_MS = 5;

/**
 * How long a message may lag behind a reply that reports its revision before
 * the watch assumes it lost and hints a re-list. Messages and replies travel
 * on different connections, so a reply may well arrive first.
 */
export const CATCH_UP_MS = 300;

/** What the watches need from their {@link RedisDiscovery}. */
export interface WatchHost {
  /** The channel of a service. */
  channel(service: string): string;
  /** Run `reap.lua` for the service. */
  reap(service: string): Promise<RevisionProbe>;
  /** A new subscriber connection (closed by the host). */
  subscriber(): RedisClient;
}

/** Options of {@link ServiceWatches}. */
export interface WatchOptions {
  /** Revision poll of services watched without heartbeating a member of them. */
  readonly pollIntervalMs: number;
}

interface Listening {
  readonly listener: DiscoveryListener;
}

/** Watch bookkeeping for one service. */
interface WatchState {
  readonly service: string;
  readonly channel: string;
  readonly listeners: Set<Listening>;
  /** Whether the subscription is live (subscribed after the latest connect). */
  live: boolean;
  /** Called once the subscription is live (see {@link ServiceWatches.whenLive}). */
  readonly waiting: Set<() => void>;
  /** Highest revision known to be announced to the listeners, or listed by them. */
  seen: bigint | undefined;
  /** Highest revision a reply reported that no message has caught up with yet. */
  expected: bigint | undefined;
  /** Highest revision of an event given to the listeners: events never go back. */
  emitted: bigint | undefined;
  /** `performance.now()` of the latest heartbeat reply for the service, and how long it counts. */
  renewedAt: number | undefined;
  renewWindowMs: number;
  pollTimer: ReturnType<typeof setInterval> | undefined;
  expiryTimer: ReturnType<typeof setTimeout> | undefined;
  catchUpTimer: ReturnType<typeof setTimeout> | undefined;
  checking: boolean;
}

const max = (a: bigint | undefined, b: bigint): bigint => (a === undefined || b > a ? b : a);

/** See the module documentation. */
export class ServiceWatches {
  readonly #host: WatchHost;
  readonly #options: WatchOptions;
  readonly #states = new Map<string, WatchState>();
  /** Revision of the latest snapshot per service: a new watch knows what its listener has listed. */
  readonly #listedAt = new Map<string, bigint>();
  #subscriber: RedisClient | undefined;
  #readies = 0;
  #closed = false;

  constructor(host: WatchHost, options: WatchOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** Subscribe `listener` to the changes of `service`; returns the unsubscribe function. */
  watch(service: string, listener: DiscoveryListener): () => void {
    if (this.#closed) return () => undefined;
    const channel = this.#host.channel(service);
    const state = this.#states.get(channel) ?? this.#start(service, channel);
    const entry: Listening = { listener };
    state.listeners.add(entry);
    return () => {
      if (!state.listeners.delete(entry) || state.listeners.size > 0) return;
      if (this.#states.get(channel) === state) this.#stop(state);
    };
  }

  /**
   * A heartbeat of a member of `service` succeeded on this connection: use
   * its reply instead of a poll for the next `windowMs`.
   */
  observeRenew(service: string, probe: RevisionProbe, windowMs: number): void {
    const state = this.#states.get(this.#host.channel(service));
    if (state === undefined) return;
    state.renewedAt = performance.now();
    state.renewWindowMs = windowMs;
    this.#observe(state, probe);
  }

  /** A snapshot of `service` was taken at `revision`: its taker has everything up to there. */
  observeSnapshot(service: string, revision: string, nextExpiryMs: number | undefined): void {
    const listed = BigInt(revision);
    this.#listedAt.set(service, max(this.#listedAt.get(service), listed));
    const state = this.#states.get(this.#host.channel(service));
    if (state === undefined) return;
    state.seen = max(state.seen, listed);
    this.#armExpiry(state, nextExpiryMs);
  }

  /**
   * Resolves once the watch of `service` on this connection is live (at once
   * when there is none or it is live), or after `timeoutMs`. A listing taken
   * after this misses no later change, so it needs no catch-up re-list.
   */
  whenLive(service: string, timeoutMs: number): Promise<void> {
    const state = this.#states.get(this.#host.channel(service));
    if (state === undefined || state.live || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        state.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref?.();
      state.waiting.add(done);
    });
  }

  /** Stop every watch; no listener is called after this returns. */
  close(): void {
    this.#closed = true;
    for (const state of [...this.#states.values()]) this.#stop(state);
  }

  #start(service: string, channel: string): WatchState {
    const state: WatchState = {
      service,
      channel,
      listeners: new Set(),
      live: false,
      waiting: new Set(),
      seen: this.#listedAt.get(service),
      expected: undefined,
      emitted: undefined,
      renewedAt: undefined,
      renewWindowMs: 0,
      pollTimer: undefined,
      expiryTimer: undefined,
      catchUpTimer: undefined,
      checking: false,
    };
    this.#states.set(channel, state);
    state.pollTimer = setInterval(() => this.#poll(state), this.#options.pollIntervalMs);
    state.pollTimer.unref?.();
    this.#subscribe(state);
    return state;
  }

  #stop(state: WatchState): void {
    this.#states.delete(state.channel);
    for (const done of [...state.waiting]) done();
    clearInterval(state.pollTimer);
    clearTimeout(state.expiryTimer);
    clearTimeout(state.catchUpTimer);
    state.pollTimer = undefined;
    state.expiryTimer = undefined;
    state.catchUpTimer = undefined;
    const sub = this.#subscriber;
    if (sub?.status === 'ready' && !this.#closed) sub.unsubscribe(state.channel).catch(() => undefined);
  }

  #ensureSubscriber(): RedisClient {
    if (this.#subscriber !== undefined) return this.#subscriber;
    // It resubscribes by itself on every ready so it knows when the subscription is live.
    const sub = this.#host.subscriber();
    sub.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    sub.on('ready', () => void this.#onSubscriberReady(sub));
    sub.on('close', () => {
      for (const state of this.#states.values()) state.live = false;
    });
    this.#subscriber = sub;
    return sub;
  }

  #subscribe(state: WatchState): void {
    const sub = this.#ensureSubscriber();
    if (sub.status === 'ready') {
      sub.subscribe(state.channel).then(
        () => this.#established(state, false),
        () => undefined, // lost again: the next ready subscribes it
      );
    } else if (sub.status === 'wait') sub.connect().catch(() => undefined);
    // Otherwise it is connecting: #onSubscriberReady subscribes every watched channel.
  }

  async #onSubscriberReady(sub: RedisClient): Promise<void> {
    const reconnected = this.#readies > 0;
    this.#readies += 1;
    const states = [...this.#states.values()];
    if (states.length === 0) return;
    try {
      await sub.subscribe(...states.map((s) => s.channel));
    } catch {
      return; // lost again already; the next ready retries
    }
    for (const state of states) this.#established(state, reconnected);
  }

  /** The subscription of `state` is live: from now on no message is missed unless pub/sub drops it. */
  #established(state: WatchState, reconnected: boolean): void {
    if (this.#states.get(state.channel) !== state || state.live) return;
    state.live = true;
    for (const done of [...state.waiting]) done();
    if (reconnected) {
      // Messages may have been missed while no subscription was live: re-list.
      state.seen = undefined;
      this.#emit(state, { type: 'reset' });
    }
    // The baseline revision, or, when a snapshot of this instance says up to
    // where the listener has listed, a check that nothing happened between
    // that snapshot and now (else the catch-up hint makes it re-list); and the
    // expiry timer. A listener that lists only after this point needs neither.
    void this.#check(state);
  }

  #onMessage(channel: string, message: string): void {
    // Not gated on `live`: a message may be parsed before the SUBSCRIBE reply's continuation runs.
    const state = this.#states.get(channel);
    if (state === undefined) return;
    const event = parseMessage(message);
    if (event.revision !== undefined) state.seen = max(state.seen, BigInt(event.revision));
    this.#emit(state, event);
  }

  #poll(state: WatchState): void {
    const renewing = state.renewedAt !== undefined && performance.now() - state.renewedAt < state.renewWindowMs;
    if (!renewing) void this.#check(state);
  }

  /** Reap, compare the revision with the messages seen, and re-arm the expiry timer. Never rejects. */
  async #check(state: WatchState): Promise<void> {
    if (state.checking || this.#closed) return;
    state.checking = true;
    let probe: RevisionProbe;
    try {
      probe = await this.#host.reap(state.service);
    } catch {
      return; // unreachable now: the next poll, heartbeat or reconnect tries again
    } finally {
      state.checking = false;
    }
    if (this.#states.get(state.channel) === state) this.#observe(state, probe);
  }

  /** A reply reported the current revision and the next expiry. */
  #observe(state: WatchState, probe: RevisionProbe): void {
    this.#armExpiry(state, probe.nextExpiryMs);
    if (!state.live) return; // the check after the subscription is established compares
    const revision = BigInt(probe.revision);
    if (state.seen === undefined) {
      state.seen = revision;
      return;
    }
    if (revision === 0n && state.seen > 0n) {
      // No revision at all any more: the data was wiped (FLUSHALL, a restart
      // without persistence) and nothing has changed since to publish a message.
      state.seen = 0n;
      this.#emit(state, { type: 'reset' });
      return;
    }
    if (revision <= state.seen) return;
    state.expected = max(state.expected, revision);
    if (state.catchUpTimer === undefined) this.#awaitCatchUp(state, revision);
  }

  /** Give the messages up to `revision` {@link CATCH_UP_MS} to arrive, else hint a re-list. */
  #awaitCatchUp(state: WatchState, revision: bigint): void {
    state.catchUpTimer = setTimeout(() => {
      state.catchUpTimer = undefined;
      if (this.#states.get(state.channel) !== state) return;
      const expected = state.expected ?? revision;
      if (state.seen !== undefined && state.seen >= revision) {
        // Caught up with this one; a later report may still be pending.
        if (expected > state.seen) this.#awaitCatchUp(state, expected);
        else state.expected = undefined;
        return;
      }
      // A message was lost: whatever the listener holds, a re-list brings it to at least `expected`.
      state.expected = undefined;
      state.seen = max(state.seen, expected);
      this.#emit(state, { type: 'change', revision: String(expected) });
    }, CATCH_UP_MS);
    state.catchUpTimer.unref?.();
  }

  /**
   * Run a reap just after the earliest known lease runs out, so an expired
   * member is removed and announced even if nobody else writes. Every reply
   * with fresher expiry data replaces the timer.
   */
  #armExpiry(state: WatchState, inMs: number | undefined): void {
    clearTimeout(state.expiryTimer);
    state.expiryTimer = undefined;
    if (inMs === undefined || this.#closed || this.#states.get(state.channel) !== state) return;
    state.expiryTimer = setTimeout(() => {
      state.expiryTimer = undefined;
      void this.#check(state);
    }, inMs + EXPIRY_SLACK_MS);
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
        // A throwing listener must not break the subscriber or the other listeners.
      }
    }
  }
}
