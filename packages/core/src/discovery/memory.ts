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
import { DiscoveryUnavailableError, LeaseExpiredError, ServiceRunningError } from '../errors.js';
import type {
  Claim,
  ClaimBatch,
  ClaimRef,
  ClaimResult,
  Discovery,
  DiscoveryChange,
  DiscoveryListener,
  EnsureGroupOptions,
  GroupSettings,
  Member,
  MemberInfo,
  Registration,
  RenewResult,
  Snapshot,
  StoredGroup,
} from './contract.js';

interface MemberRecord {
  readonly info: MemberInfo;
  readonly joinSeq: number;
  ttlMs: number;
  expiresAt: number;
  draining: boolean;
}

interface ServiceState {
  shardCount: number | undefined;
  leaseTtlMs: number | undefined;
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

  /** Names of the services with a group record, sorted. */
  serviceNames(): string[] {
    const names: string[] = [];
    for (const [name, state] of this.#services)
      if (state.shardCount !== undefined || state.members.size > 0) names.push(name);
    return names.sort();
  }

  /** @internal */
  service(name: string): ServiceState {
    let state = this.#services.get(name);
    if (state === undefined) {
      state = {
        shardCount: undefined,
        leaseTtlMs: undefined,
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

  /**
   * @internal Bump the revision and notify watchers asynchronously of
   * `changes`; without them (a data loss) the event only says "re-list".
   */
  changed(state: ServiceState, changes?: readonly DiscoveryChange[]): void {
    const previous = String(state.revision);
    state.revision += 1;
    const event = { type: 'change', revision: String(state.revision), previous, changes } as const;
    const listeners = [...state.listeners];
    queueMicrotask(() => {
      for (const listener of listeners) if (state.listeners.has(listener)) listener(event);
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

  /**
   * Fault injection: replace the claim of `shard` (or delete it, with
   * `undefined`) behind every client's back, with no revision change and no
   * notification, as a hand edit of a Redis hash would. Renewals that pass
   * the claim as held report it lost.
   */
  overwriteClaim(service: string, shard: number, claim: { owner: string; token: number } | undefined): void {
    const state = this.service(service);
    if (claim === undefined) state.claims.delete(shard);
    else state.claims.set(shard, { ...claim });
  }

  /** Remove every service (simulates a backend that lost all data). */
  reset(): void {
    this.#lostData = true;
    for (const state of this.#services.values()) {
      state.members.clear();
      state.claims.clear();
      state.shardCount = undefined;
      state.leaseTtlMs = undefined;
      this.changed(state);
    }
  }

  #reap(state: ServiceState): void {
    const now = this.#clock.now();
    const changes: DiscoveryChange[] = [];
    for (const [id, member] of state.members) {
      if (member.expiresAt > now) continue;
      state.members.delete(id);
      changes.push({ type: 'member:removed', id });
    }
    if (changes.length === 0) return;
    for (const [shard, claim] of state.claims) {
      if (!state.members.has(claim.owner)) state.claims.delete(shard);
    }
    this.changed(state, changes);
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

  ensureGroup(service: string, group: GroupSettings, _options?: EnsureGroupOptions): Promise<StoredGroup> {
    return this.#call((): StoredGroup => {
      const state = this.#store.service(service);
      // An in-process store holds no garbage, so `replaceInvalid` has nothing to do.
      if (state.shardCount === undefined) {
        state.shardCount = group.shardCount;
        state.createdAt = this.#store.lostData ? this.#store.clock.now() : undefined;
        this.#store.changed(state, []);
      }
      state.leaseTtlMs ??= group.leaseTtlMs;
      return { shardCount: state.shardCount, leaseTtlMs: state.leaseTtlMs, invalid: [], repaired: [] };
    });
  }

  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    return this.#call(() => {
      const state = this.#store.service(service);
      state.joinSeq += 1;
      const record: MemberRecord = {
        info: { ...member, labels: { ...member.labels } },
        joinSeq: state.joinSeq,
        ttlMs,
        expiresAt: this.#store.clock.now() + ttlMs,
        draining: false,
      };
      state.members.set(member.id, record);
      this.#store.changed(state, [{ type: 'member:put', member: toMember(record) }]);
      return { joinSeq: state.joinSeq };
    });
  }

  renew(service: string, memberId: string, held: readonly ClaimRef[] = []): Promise<RenewResult> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const member = state.members.get(memberId);
      if (member === undefined) throw new LeaseExpiredError(memberId);
      member.expiresAt = this.#store.clock.now() + member.ttlMs;
      // Renewals change no visible state, so no notification (as in Redis/etcd)…
      const lost = held.filter(({ shard, token }) => {
        const claim = state.claims.get(shard);
        return claim?.owner !== memberId || claim.token !== token;
      });
      // …unless a claim was written over behind our back: everybody re-lists.
      if (lost.length > 0) this.#store.changed(state);
      return { lost: lost.map(({ shard, token }) => ({ shard, token })) };
    });
  }

  drain(service: string, memberId: string): Promise<void> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const member = state.members.get(memberId);
      if (member === undefined) throw new LeaseExpiredError(memberId);
      if (member.draining) return;
      member.draining = true;
      this.#store.changed(state, [{ type: 'member:put', member: toMember(member) }]);
    });
  }

  unregister(service: string, memberId: string): Promise<void> {
    return this.#call(() => {
      const state = this.#store.service(service);
      if (!state.members.delete(memberId)) return;
      for (const [shard, claim] of state.claims) if (claim.owner === memberId) state.claims.delete(shard);
      this.#store.changed(state, [{ type: 'member:removed', id: memberId }]);
    });
  }

  forgetService(service: string): Promise<boolean> {
    return this.#call(() => {
      const state = this.#store.service(service);
      if (state.members.size > 0) throw new ServiceRunningError(service, [...state.members.keys()]);
      const held = state.shardCount !== undefined || state.leaseTtlMs !== undefined || state.claims.size > 0;
      // The state object stays (watchers hang on it), and so do the counters:
      // tokens keep increasing if the service is started again.
      state.shardCount = undefined;
      state.leaseTtlMs = undefined;
      state.createdAt = undefined;
      state.claims.clear();
      if (held) this.#store.changed(state);
      return held;
    });
  }

  services(): Promise<readonly string[]> {
    return this.#call(() => this.#store.serviceNames());
  }

  snapshot(service: string): Promise<Snapshot> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const now = this.#store.clock.now();
      const members: Member[] = [...state.members.values()].map((m) => ({
        ...toMember(m),
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

  version(service: string): Promise<string> {
    return this.#call(() => String(this.#store.service(service).revision));
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

  claimMany(service: string, memberId: string, shards: readonly number[]): Promise<ClaimBatch> {
    return this.#call((): ClaimBatch => {
      const state = this.#store.service(service);
      if (!state.members.has(memberId)) throw new LeaseExpiredError(memberId);
      const changes: DiscoveryChange[] = [];
      const results = shards.map((shard): ClaimResult => {
        const existing = state.claims.get(shard);
        if (existing !== undefined) return { ok: false, owner: existing.owner, token: existing.token };
        state.token += 1;
        state.claims.set(shard, { owner: memberId, token: state.token });
        changes.push({ type: 'claim:put', claim: { shard, owner: memberId, token: state.token } });
        return { ok: true, token: state.token };
      });
      if (changes.length > 0) this.#store.changed(state, changes);
      return { results, repaired: [] };
    });
  }

  releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]> {
    return this.#call(() => {
      const state = this.#store.service(service);
      const changes: DiscoveryChange[] = [];
      const results = claims.map(({ shard, token }) => {
        const existing = state.claims.get(shard);
        if (existing === undefined || existing.owner !== memberId || existing.token !== token) return false;
        state.claims.delete(shard);
        changes.push({ type: 'claim:removed', shard, token });
        return true;
      });
      if (changes.length > 0) this.#store.changed(state, changes);
      return results;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const unwatch of [...this.#unwatch]) unwatch();
  }
}

function toMember(record: MemberRecord): Member {
  return { ...record.info, joinSeq: record.joinSeq, ...(record.draining ? { draining: true } : {}) };
}
