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
 * - {@link Discovery.claimMany} claims each shard only if it has no live claim
 *   and the member is alive; every token it returns is strictly greater than
 *   every token handed out before for this service, and no two are equal.
 * - {@link Discovery.releaseMany} deletes each claim only if owner and token match.
 * - {@link Discovery.renew} of a dead member fails with `LeaseExpiredError` and
 *   never resurrects it; given the claims the member holds, it reports those
 *   that are not the member's any more (written over behind its back).
 * - {@link Discovery.snapshot} never returns a dead member or its claims.
 * - Revisions are decimal integers that only increase per service; a watch
 *   announces each change with the revision it produced and, when it knows
 *   them, the changes themselves (see {@link DiscoveryEvent}), so that a
 *   replica keeps its view up to date in O(change) instead of re-listing.
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
  /**
   * The shard count this replica runs with. Lets a replica that finds the
   * group record unreadable rewrite it from the value the live members agree
   * on. Absent in records written by versions before 0.2.
   */
  readonly shardCount?: number | undefined;
  /** The lease TTL this replica runs with, ms (same purpose; absent before 0.2). */
  readonly leaseTtlMs?: number | undefined;
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
   * seen by the backend when the snapshot was taken, for display; may be
   * `undefined`. The resolver does not time expiries: every backend must
   * announce an expired member itself (`member:removed`) soon after its lease
   * runs out, whoever is watching.
   */
  readonly expiresInMs?: number | undefined;
  /**
   * The member is stopping ({@link Discovery.drain}): peers plan without it and
   * take each of its shards as soon as it releases that shard.
   */
  readonly draining?: boolean | undefined;
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
  /**
   * Revision of this view: a decimal integer; revisions of one service only
   * increase, and equal revisions mean equal contents. Change events are
   * ordered against it (see {@link DiscoveryEvent}).
   */
  readonly revision: string;
  /**
   * What {@link Discovery.version} answers while nothing has changed since
   * this snapshot; when absent, `revision` is that value.
   */
  readonly version?: string | undefined;
  /**
   * Shard count stored for the service; `undefined` before
   * {@link Discovery.ensureGroup}, after a data loss, or when the stored value
   * cannot be parsed (then `invalid` names the key).
   */
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

/** Outcome of claiming one shard: one entry of {@link ClaimBatch.results}. */
export type ClaimResult =
  | { readonly ok: true; readonly token: number }
  | { readonly ok: false; readonly owner: string; readonly token: number };

/** Outcome of {@link Discovery.claimMany}. */
export interface ClaimBatch {
  /** One result per requested shard, in the order requested. */
  readonly results: readonly ClaimResult[];
  /**
   * Garbage records the backend found in the way and replaced or deleted
   * while claiming (e.g. a token counter that was not a number, a claim key
   * without a lease); the worker reports each once.
   */
  readonly repaired: readonly InvalidRecord[];
}

/** A claim to give back with {@link Discovery.releaseMany}. */
export interface ClaimRef {
  readonly shard: number;
  readonly token: number;
}

/** Outcome of {@link Discovery.renew}. */
export interface RenewResult {
  /**
   * Of the claims passed as `held`, those that are no longer the member's
   * with that token: deleted or overwritten behind its back (nothing
   * shardwork does takes a live member's claim away, so a hand edit, another
   * tool or garbage). The member must stop acting on them at once.
   */
  readonly lost: readonly ClaimRef[];
}

/** What every replica of a service must agree on, stored once per service. */
export interface GroupSettings {
  /** Number of shards. */
  readonly shardCount: number;
  /** Lease TTL of every member, ms. */
  readonly leaseTtlMs: number;
}

/** Options of {@link Discovery.ensureGroup}. */
export interface EnsureGroupOptions {
  /**
   * Overwrite stored fields that cannot be parsed with the given values (a
   * compare-and-set on the garbage read). The worker asks for it only when the
   * live members agree with its settings.
   * @defaultValue false
   */
  readonly replaceInvalid?: boolean;
}

/** The group settings as stored, after {@link Discovery.ensureGroup}. */
export interface StoredGroup {
  /** Stored shard count; `undefined` when the stored value cannot be parsed (see `invalid`). */
  readonly shardCount: number | undefined;
  /** Stored lease TTL; `undefined` when the stored value cannot be parsed (see `invalid`). */
  readonly leaseTtlMs: number | undefined;
  /** Fields that could not be parsed and were left as they are. */
  readonly invalid: readonly InvalidRecord[];
  /** Fields that could not be parsed and were replaced (`replaceInvalid`). */
  readonly repaired: readonly InvalidRecord[];
}

/** Result of {@link Discovery.register}. */
export interface Registration {
  /** Join order assigned by the backend (see {@link Member.joinSeq}). */
  readonly joinSeq: number;
}

/**
 * One change of a service, as a watch announces it.
 * - `member:put`: a member was added, or its record replaced (re-registered,
 *   or marked draining);
 * - `member:removed`: a member is gone (unregistered or expired), **and every
 *   claim it held with it**;
 * - `claim:put`: a claim was created;
 * - `claim:removed`: a claim was released: the one with `token`, or, for
 *   backends whose tokens derive from revisions (etcd), whichever claim of
 *   the shard has a token below `tokenBelow` (a bound every claim created
 *   before the deletion is under, and every later one at or above), which
 *   spares the backend reading the deleted value for every watcher.
 */
export type DiscoveryChange =
  | { readonly type: 'member:put'; readonly member: Member }
  | { readonly type: 'member:removed'; readonly id: string }
  | { readonly type: 'claim:put'; readonly claim: Claim }
  | { readonly type: 'claim:removed'; readonly shard: number; readonly token: number }
  | { readonly type: 'claim:removed'; readonly shard: number; readonly tokenBelow: number };

/**
 * A change notification.
 * - `change`: members or claims of the service changed. With `revision`,
 *   `previous` and `changes`, it says exactly what: every change of the
 *   service after revision `previous` up to and including `revision`. A
 *   listener holding the service as of revision `r` applies them when
 *   `previous <= r < revision`, ignores them when `revision <= r` (already
 *   seen), and re-lists when `previous > r` (it missed something). Without
 *   `changes` the event is only a hint to re-list.
 * - `reset`: the backend connection was re-established (or the watch
 *   restarted); anything may have changed in between: re-list.
 *
 * A lost notification is covered by the periodic {@link Discovery.version} check.
 */
export interface DiscoveryEvent {
  /** Kind of the notification. */
  readonly type: 'change' | 'reset';
  /** Revision after the change (decimal integer). */
  readonly revision?: string | undefined;
  /** Revision the changes apply to (decimal integer). */
  readonly previous?: string | undefined;
  /** The changes, in order. */
  readonly changes?: readonly DiscoveryChange[] | undefined;
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
   * Store the group settings of the service, each field only if none is
   * stored yet, atomically, and return what is stored (which may differ: the
   * caller decides what that means).
   */
  ensureGroup(service: string, group: GroupSettings, options?: EnsureGroupOptions): Promise<StoredGroup>;
  /** Register a member bound to a new lease of `ttlMs`. */
  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration>;
  /**
   * Extend the member's lease by its TTL; `LeaseExpiredError` if it is already gone.
   *
   * `held`: the claims the member acts on. The backend checks, in the same
   * request where it can (or one more, cheap, per renewal), that each is
   * still the member's with that token, and reports the others in
   * {@link RenewResult.lost}: a record written over by hand or by another
   * tool changes no revision on some backends (Redis), and would otherwise go
   * unnoticed until the next full listing. Watchers of the service must
   * re-list when that happens, since the claim may now name a member that
   * does not know it holds it: a backend whose notifications miss such writes
   * announces an event without changes when a renewal finds one (Redis,
   * memory); etcd's watch announces every overwrite of a claim key so anyway.
   * A backend that cannot check resolves without a result.
   */
  // A `void` branch keeps backends written before `held` existed (resolving nothing) conforming.
  // biome-ignore lint/suspicious/noConfusingVoidType: see above
  renew(service: string, memberId: string, held?: readonly ClaimRef[]): Promise<RenewResult | void>;
  /** Revoke the member's lease: member and claims vanish at once. Idempotent. */
  unregister(service: string, memberId: string): Promise<void>;
  /**
   * Mark a live member as draining (it is stopping and hands its shards over
   * one by one); announced as a `member:put` change. `LeaseExpiredError` if it is gone.
   */
  drain(service: string, memberId: string): Promise<void>;
  /** Read members and claims of the service. */
  snapshot(service: string): Promise<Snapshot>;
  /**
   * Names of the services this backend holds a group record for, sorted (for
   * operating tools: the CLI and the dashboard). Optional: a backend that
   * cannot enumerate them leaves it out, and tools then need service names.
   */
  services?(): Promise<readonly string[]>;
  /**
   * Remove every record of a service that has no live member: its group
   * record (shard count and lease TTL), counters and leftovers (garbage
   * included), so that it is no longer listed by {@link Discovery.services}
   * and a later start creates it afresh, with any settings. For operating
   * tools (`shardwork services forget NAME`): a stopped service otherwise
   * keeps its records for ever.
   *
   * The check for live members and the removal are one atomic step: a member
   * registering at the same moment either makes this fail or registers after
   * it (its worker then recreates the group record, and on a backend that can
   * lose data waits one TTL before claiming, as for any new group). Fencing
   * tokens of the service keep increasing across it.
   *
   * Resolves `true` when records were removed, `false` when the backend held
   * none for the service. Rejects with `ServiceRunningError` (naming the live
   * members, draining ones included) while any member lives, with
   * `DiscoveryUnavailableError` when the backend cannot be reached, and with
   * `BackendRefusedError` when the credentials may not delete the service's keys.
   * Optional: a backend that cannot do it leaves it out.
   */
  forgetService?(service: string): Promise<boolean>;
  /**
   * Time each live member's lease has left, ms, for backends whose
   * {@link Discovery.snapshot} cannot say it cheaply (etcd: one request per
   * member). Optional; operating tools read it through `inspectSnapshot`.
   */
  leaseTimes?(service: string): Promise<ReadonlyMap<string, number>>;
  /**
   * A cheap check for the periodic resync: equals the last snapshot's
   * `version ?? revision` as long as the service has not changed since. Reads
   * no members or claims.
   */
  version(service: string): Promise<string>;
  /**
   * Subscribe to change notifications of the service. Returns the unsubscribe
   * function. The listener must never be called after unsubscribe returns.
   */
  watch(service: string, listener: DiscoveryListener): () => void;
  /**
   * Claim shards for `memberId` in one request (one script, one transaction,
   * or several when a backend limits the size of one): each is created only
   * if it has no live claim. `LeaseExpiredError` when the member is gone.
   * (There is no single-shard form: a batch of one is one request too.)
   */
  claimMany(service: string, memberId: string, shards: readonly number[]): Promise<ClaimBatch>;
  /**
   * Give claims back in one request: each is deleted only if owned by
   * `memberId` with its `token`. One result per claim, in order: `false` for
   * one that was not (any more) owned so.
   */
  releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]>;
  /** Close connections and timers. Does not unregister members. Idempotent. */
  close(): Promise<void>;
}
