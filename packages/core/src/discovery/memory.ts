/**
 * The embedded in-process backend. A {@link MemoryStore} plays the server (one
 * per process by default, shared by every `memory://` URL); each
 * {@link MemoryDiscovery} is one client connection to it, with fault injection
 * for tests (`setAvailable(false)` makes every call fail like a cut connection).
 *
 * Time comes from an injectable {@link Clock}; expiry is checked on every call
 * and by a timer at the earliest lease expiry, which notifies watchers like
 * etcd does.
 *
 * @module
 */

import { type Clock, systemClock } from '../clock.js';
import { DiscoveryUnavailableError, LeaseExpiredError } from '../errors.js';
import type {
  Claim,
  ClaimResult,
  Discovery,
  DiscoveryListener,
  Member,
  MemberInfo,
  Registration,
  Snapshot,
} from './contract.js';

interface MemberRecord {
  readonly info: MemberInfo;
  readonly joinSeq: number;
  ttlMs: number;
  expiresAt: number;
}

interface ServiceState {
  shardCount: number | undefined;
  /** Creation time of the group, kept only once the store has lost data (see {@link Snapshot.groupAgeMs}). */
  createdAt: number | undefined;
  readonly members: Map<string, MemberRecord>;
  readonly claims: Map<number, { owner: string; token: number }>;
  readonly listeners: Set<DiscoveryListener>;
  revision: number;
  joinSeq: number;
  token: number;
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Clock for lease expiry.
   * @defaultValue {@link systemClock}
   */
  readonly clock?: Clock;
}

/** The in-process "server" of the memory backend. */
export class MemoryStore {
  readonly #clock: Clock;
  readonly #services = new Map<string, ServiceState>();
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #expiryAt = Number.POSITIVE_INFINITY;
  #lostData = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** The store's clock. */
  get clock(): Clock {
    return this.#clock;
  }

  /** @internal */
  service(name: string): ServiceState {
    let state = this.#services.get(name);
    if (state === undefined) {
      state = {
        shardCount: undefined,
        createdAt: undefined,
        members: new Map(),
        claims: new Map(),
        listeners: new Set(),
        revision: 0,
        joinSeq: 0,
        token: 0,
      };
      this.#services.set(name, state);
    }
    this.#reap(state);
    return state;
  }

  /** @internal Bump the revision and notify watchers asynchronously. */
  changed(state: ServiceState): void {
    state.revision += 1;
    const listeners = [...state.listeners];
    queueMicrotask(() => {
      for (const listener of listeners) if (state.listeners.has(listener)) listener({ type: 'change' });
    });
    this.#scheduleExpiry();
  }

  /**
   * Whether groups must report their age: only after a {@link reset}. Every
   * user of a memory store lives in its process, so a group created in a store
   * that never lost data has no owners from before its creation.
   * @internal
   */
  get lostData(): boolean {
    return this.#lostData;
  }

  /** Remove every service (simulates a backend that lost all data). */
  reset(): void {
    this.#lostData = true;
    for (const state of this.#services.values()) {
      state.members.clear();
      state.claims.clear();
      state.shardCount = undefined;
      this.changed(state);
    }
  }

  #reap(state: ServiceState): void {
    const now = this.#clock.now();
    let reaped = false;
    for (const [id, member] of state.members) {
      if (member.expiresAt > now) continue;
      state.members.delete(id);
      reaped = true;
    }
    if (!reaped) return;
    for (const [shard, claim] of state.claims) {
      if (!state.members.has(claim.owner)) state.claims.delete(shard);
    }
    this.changed(state);
  }

  #scheduleExpiry(): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const state of this.#services.values()) {
      for (const member of state.members.values()) earliest = Math.min(earliest, member.expiresAt);
    }
    if (earliest === this.#expiryAt) return;
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    this.#expiryAt = earliest;
    if (earliest === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, earliest - this.#clock.now()) + 1;
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = undefined;
      this.#expiryAt = Number.POSITIVE_INFINITY;
      for (const state of this.#services.values()) this.#reap(state);
      this.#scheduleExpiry();
    }, delay);
    this.#expiryTimer.unref?.();
  }
}

let defaultStore: MemoryStore | undefined;
const namedStores = new Map<string, MemoryStore>();

/**
 * The process-wide store behind `memory://` (or `memory://name` for a separate
 * named one). Created on first use, never at import time.
 */
export function sharedMemoryStore(name = ''): MemoryStore {
  if (name === '') {
    defaultStore ??= new MemoryStore();
    return defaultStore;
  }
  let store = namedStores.get(name);
  if (store === undefined) {
    store = new MemoryStore();
    namedStores.set(name, store);
  }
  return store;
}

/** Options of {@link MemoryDiscovery}. */
export interface MemoryDiscoveryOptions {
  /**
   * The store to connect to.
   * @defaultValue the process-wide store of {@link sharedMemoryStore}
   */
  readonly store?: MemoryStore;
  /**
   * Simulated round-trip latency per call in ms.
   * @defaultValue 0
   */
  readonly latencyMs?: number;
}

/** A client connection to a {@link MemoryStore}. */
export class MemoryDiscovery implements Discovery {
  readonly kind = 'memory';
  readonly #store: MemoryStore;
  readonly #latencyMs: number;
  readonly #unwatch = new Set<() => void>();
  #available = true;
  #closed = false;

  constructor(options: MemoryDiscoveryOptions = {}) {
    this.#store = options.store ?? sharedMemoryStore();
    this.#latencyMs = options.latencyMs ?? 0;
  }

  /** The store this connection talks to. */
  get store(): MemoryStore {
    return this.#store;
  }

  /**
   * Fault injection: while unavailable, every call rejects with
   * `DiscoveryUnavailableError` and no notification arrives, as if the
   * connection were cut. Making it available again sends a `reset` notification.
   */
  setAvailable(available: boolean): void {
    const wasDown = !this.#available;
    this.#available = available;
    if (available && wasDown) {
      for (const listener of this.#resetListeners) {
        queueMicrotask(() => {
          if (this.#resetListeners.has(listener)) listener({ type: 'reset' });
        });
      }
    }
  }

  readonly #resetListeners = new Set<DiscoveryListener>();

  async #call<T>(op: () => T): Promise<T> {
    if (this.#closed) throw new DiscoveryUnavailableError('memory', 'connection closed');
    if (this.#latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#latencyMs / 2));
    else await Promise.resolve();
    if (!this.#available) throw new DiscoveryUnavailableError('memory', 'connection unavailable (fault injected)');
    const result = op();
    if (this.#latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#latencyMs / 2));
    if (!this.#available) throw new DiscoveryUnavailableError('memory', 'connection lost before the reply');
    return result;
  }

  ensureGroup(service: string, shardCount: number): Promise<number> {
    return this.#call(() => {
      const state = this.#store.service(service);
      if (state.shardCount === undefined) {
        state.shardCount = shardCount;
        state.createdAt = this.#store.lostData ? this.#store.clock.now() : undefined;
        this.#store.changed(state);
      }
      return state.shardCount;
    });
  }

  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    return this.#call(() => {
      const state = this.#store.service(service);
      state.joinSeq += 1;
      state.members.set(member.id, {
        info: { ...member, labels: { ...member.labels } },
        joinSeq: state.joinSeq,
        ttlMs,
        expiresAt: this.#store.clock.now() + ttlMs,
      });
      this.#store.changed(state);
      return { joinSeq: state.joinSeq };
    });
  }

  renew(service: string, memberId: string): Promise<void> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const member = state.members.get(memberId);
      if (member === undefined) throw new LeaseExpiredError(memberId);
      member.expiresAt = this.#store.clock.now() + member.ttlMs;
      // Renewals change no visible state, so no notification (as in Redis/etcd).
    });
  }

  unregister(service: string, memberId: string): Promise<void> {
    return this.#call(() => {
      const state = this.#store.service(service);
      if (!state.members.delete(memberId)) return;
      for (const [shard, claim] of state.claims) if (claim.owner === memberId) state.claims.delete(shard);
      this.#store.changed(state);
    });
  }

  snapshot(service: string): Promise<Snapshot> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const now = this.#store.clock.now();
      const members: Member[] = [...state.members.values()].map((m) => ({
        ...m.info,
        joinSeq: m.joinSeq,
        expiresInMs: Math.max(0, m.expiresAt - now),
      }));
      const claims: Claim[] = [...state.claims].map(([shard, c]) => ({ shard, owner: c.owner, token: c.token }));
      const groupAgeMs = state.createdAt === undefined ? undefined : now - state.createdAt;
      return {
        revision: String(state.revision),
        shardCount: state.shardCount,
        members,
        claims,
        invalid: [],
        groupAgeMs,
      };
    });
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    const state = this.#store.service(service);
    // Notifications are dropped while the connection is "cut", as a real
    // subscriber would miss them; the `reset` on reconnect makes up for it.
    const guarded: DiscoveryListener = (event) => {
      if (this.#available && !this.#closed) listener(event);
    };
    // Its own wrapper per watch, so that one function watching two services is
    // told of a reconnect once per watch and unwatching one keeps the other.
    const onReset: DiscoveryListener = (event) => listener(event);
    state.listeners.add(guarded);
    this.#resetListeners.add(onReset);
    const unwatch = (): void => {
      state.listeners.delete(guarded);
      this.#resetListeners.delete(onReset);
      this.#unwatch.delete(unwatch);
    };
    this.#unwatch.add(unwatch);
    return unwatch;
  }

  claim(service: string, memberId: string, shard: number): Promise<ClaimResult> {
    return this.#call((): ClaimResult => {
      const state = this.#store.service(service);
      if (!state.members.has(memberId)) throw new LeaseExpiredError(memberId);
      const existing = state.claims.get(shard);
      if (existing !== undefined) return { ok: false, owner: existing.owner, token: existing.token };
      state.token += 1;
      state.claims.set(shard, { owner: memberId, token: state.token });
      this.#store.changed(state);
      return { ok: true, token: state.token };
    });
  }

  release(service: string, memberId: string, shard: number, token: number): Promise<boolean> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const existing = state.claims.get(shard);
      if (existing === undefined || existing.owner !== memberId || existing.token !== token) return false;
      state.claims.delete(shard);
      this.#store.changed(state);
      return true;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const unwatch of [...this.#unwatch]) unwatch();
  }
}
