/**
 * The discovery contract: the small interface every backend (memory, Redis,
 * etcd) implements. Backends hold no policy; the resolver in the worker decides
 * everything from {@link Discovery.snapshot} and the change notifications of
 * {@link Discovery.watch}.
 *
 * Semantics every backend must provide (checked by the conformance suite in
 * `@shardwork/core/testing`):
 * - A member lives while its lease lives. A lease dies `ttlMs` after the last
 *   successful {@link Discovery.register}/{@link Discovery.renew} *as measured by
 *   the backend* (never by comparing client clocks), or at once on
 *   {@link Discovery.unregister}.
 * - When a member dies, all its claims die with it, atomically.
 * - {@link Discovery.claim} succeeds only if the shard has no live claim and the
 *   member is alive; the token it returns is strictly greater than every token
 *   handed out before for this service.
 * - {@link Discovery.release} deletes a claim only if owner and token match.
 * - {@link Discovery.renew} of a dead member fails with `LeaseExpiredError` and
 *   never resurrects it.
 * - {@link Discovery.snapshot} never returns a dead member or its claims.
 *
 * @module
 */

/** What a replica tells the backend about itself. */
export interface MemberInfo {
  /** Unique per registration (a re-registration after a lost lease gets a new id). */
  readonly id: string;
  /** Host name of the replica. */
  readonly host: string;
  /** Process id of the replica. */
  readonly pid: number;
  /** Wall-clock start time of the replica in ms since the epoch (display only, never compared). */
  readonly startedAt: number;
  /** Relative capacity used by weighted strategies; positive, default 1. */
  readonly weight: number;
  /** Free-form labels. */
  readonly labels: Readonly<Record<string, string>>;
}

/** A live member as listed by the backend. */
export interface Member extends MemberInfo {
  /**
   * Join order assigned by the backend, strictly increasing per service
   * (memory: a counter, Redis: `INCR`, etcd: the member key's create revision).
   * The view is sorted by `(joinSeq, id)`.
   */
  readonly joinSeq: number;
  /**
   * Milliseconds until the backend expires this member if it is not renewed, as
   * seen by the backend when the snapshot was taken; `undefined` when the backend
   * notifies expiry itself (etcd). The resolver re-lists at the earliest expiry.
   */
  readonly expiresInMs?: number | undefined;
}

/** A live claim: shard `shard` is owned by member `owner` with fencing token `token`. */
export interface Claim {
  /** Shard index in `[0, shardCount)`. */
  readonly shard: number;
  /** Member id of the owner. */
  readonly owner: string;
  /** Fencing token: strictly increasing per service over all successful claims. */
  readonly token: number;
}

/** A backend record that could not be parsed and was left out of a snapshot. */
export interface InvalidRecord {
  /** Backend key (or hash field) of the record. */
  readonly key: string;
  /** What was wrong with it. */
  readonly reason: string;
}

/** A consistent view of one service at one backend revision. */
export interface Snapshot {
  /** Opaque revision; equal revisions mean equal contents. */
  readonly revision: string;
  /** Shard count stored for the service, `undefined` before {@link Discovery.ensureGroup}. */
  readonly shardCount: number | undefined;
  /** Live members, in no particular order. */
  readonly members: readonly Member[];
  /** Live claims of live members, in no particular order. */
  readonly claims: readonly Claim[];
  /** Records that could not be parsed (skipped, never fatal). */
  readonly invalid: readonly InvalidRecord[];
  /**
   * Milliseconds since the group metadata was created, by the backend's clock,
   * for backends that can lose all their data (Redis without persistence, a
   * memory store after `reset()`). A backend cannot tell a new service from one
   * whose data it lost while owners were still acting on their leases, so the
   * worker claims nothing while the group is younger than one lease TTL.
   * `undefined` for durable backends (etcd) and groups known to be original.
   */
  readonly groupAgeMs?: number | undefined;
}

/** Outcome of {@link Discovery.claim}. */
export type ClaimResult =
  | { readonly ok: true; readonly token: number }
  | { readonly ok: false; readonly owner: string; readonly token: number };

/** Result of {@link Discovery.register}. */
export interface Registration {
  /** Join order assigned by the backend (see {@link Member.joinSeq}). */
  readonly joinSeq: number;
}

/**
 * A change notification. Notifications are hints: the resolver re-reads a
 * {@link Snapshot} after any of them, so a backend may coalesce, and a lost one
 * is covered by the periodic re-list.
 * - `change`: members or claims of the service changed.
 * - `reset`: the backend connection was re-established (or the watch restarted);
 *   anything may have changed in between.
 */
export interface DiscoveryEvent {
  /** Kind of the notification. */
  readonly type: 'change' | 'reset';
}

/** Listener passed to {@link Discovery.watch}. */
export type DiscoveryListener = (event: DiscoveryEvent) => void;

/**
 * A discovery backend connection. One instance may serve several services and
 * several members; the instance that registered a member is the one that renews,
 * claims for and unregisters it.
 *
 * Methods reject with `DiscoveryUnavailableError` when the backend cannot be
 * reached (the worker retries those), with `LeaseExpiredError` when the member
 * is gone, and with other errors only for programming mistakes.
 */
export interface Discovery {
  /** Backend kind for messages, e.g. `memory`, `redis`, `etcd`. */
  readonly kind: string;
  /**
   * Store `shardCount` for the service if none is stored yet, atomically, and
   * return the stored count (which may differ: the caller decides what that means).
   */
  ensureGroup(service: string, shardCount: number): Promise<number>;
  /** Register a member bound to a new lease of `ttlMs`. */
  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration>;
  /** Extend the member's lease by its TTL; `LeaseExpiredError` if it is already gone. */
  renew(service: string, memberId: string): Promise<void>;
  /** Revoke the member's lease: member and claims vanish at once. Idempotent. */
  unregister(service: string, memberId: string): Promise<void>;
  /** Read members and claims of the service. */
  snapshot(service: string): Promise<Snapshot>;
  /**
   * Subscribe to change notifications of the service. Returns the unsubscribe
   * function. The listener must never be called after unsubscribe returns.
   */
  watch(service: string, listener: DiscoveryListener): () => void;
  /** Create the claim of `shard` for `memberId` if no live claim exists. */
  claim(service: string, memberId: string, shard: number): Promise<ClaimResult>;
  /** Delete the claim if owned by `memberId` with `token`; `false` if it was not. */
  release(service: string, memberId: string, shard: number, token: number): Promise<boolean>;
  /** Close connections and timers. Does not unregister members. Idempotent. */
  close(): Promise<void>;
}
