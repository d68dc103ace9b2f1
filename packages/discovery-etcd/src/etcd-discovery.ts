/**
 * The etcd backend of the shardwork discovery contract, on the etcd3 client.
 *
 * - A member is the key `<prefix>/<svc>/members/<id>` bound to the member's own
 *   etcd lease (TTL rounded up to whole seconds); `joinSeq` is the key's create
 *   revision. Its value is core's member record; `drain` rewrites it with
 *   `draining` set, under the same lease.
 * - Claims are `<prefix>/<svc>/claims/<shard>`, created in batches by
 *   transactions that require each key to be absent and the member key to be
 *   bound to the member's lease (see `claims.ts`); they are put with that
 *   lease, so expiry or revocation removes member and claims in one step. A
 *   claim's token is its create revision (which etcd increases on every
 *   write) × 1000 plus the shard's slot, unique within a transaction (see `tokens.ts`).
 * - Renewal is a single LeaseKeepAlive with a deadline; no keepalive loop runs
 *   in the client, since the worker tracks renewals and fences itself.
 * - Lease ids are chosen here, below 2^48, instead of by etcd: etcd's own ids
 *   use all 63 bits, and wherever the protobuf runtime decodes int64 without
 *   long.js (e.g. when a test runner hands CommonJS the ESM build of `long`) they
 *   silently lose precision, after which every use of the lease fails.
 *
 * @module
 */

import { randomInt, X509Certificate } from 'node:crypto';
import {
  type BackendRefusedError,
  type ClaimBatch,
  type ClaimRef,
  type ClaimResult,
  type Discovery,
  type DiscoveryListener,
  DiscoveryUnavailableError,
  type EnsureGroupOptions,
  encodeMemberRecord,
  type GroupSettings,
  InvalidOptionsError,
  type InvalidRecord,
  LeaseExpiredError,
  type MemberInfo,
  type Registration,
  type RenewResult,
  ServiceRunningError,
  ShardworkError,
  type Snapshot,
  type StoredGroup,
} from '@shardwork/core';
import {
  ClientClosedError,
  castGrpcError,
  Etcd3,
  EtcdPermissionDeniedError as Etcd3PermissionDeniedError,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdUserNotFoundError,
  GRPCUnavailableError,
  type ITxnResponse,
} from 'etcd3';
import { type ClaimContext, claimShards, heldClaimsLost, LEASE_GONE, releaseShards } from './claims.js';
import { clientOptions } from './connection.js';
import { EtcdAuthError, type EtcdKeyScope, EtcdPermissionError, EtcdTlsError } from './errors.js';
import { forgetKeys } from './forget.js';
import { parseServiceKey, type ServiceKeys, serviceKeys } from './keys.js';
import { type CompiledEtcdOptions, compileEtcdOptions, type EtcdDiscoveryOptions, parseEtcdUrl } from './options.js';
import {
  encodeMeta,
  META_FIELDS,
  type MetaRecord,
  metaFieldProblem,
  parseMeta,
  parseService,
  type RawKeyValue,
  versionOf,
} from './records.js';
import { diagnoseEndpoint, explainGrpcTls } from './tls-diagnosis.js';
import { absent, boundTo, countPrefix, get, lastModified, modifiedAt, put, type TxnRequest } from './txn.js';
import { ServiceWatch } from './watch.js';

/**
 * The etcd lease TTL, in whole seconds, used for a requested TTL in ms: rounded
 * up, at least 1. Rounding up is the safe direction: a worker fences itself
 * `ttlMs` after it sent its last successful renewal, so the backend must never
 * expire the lease earlier than that. (etcd may itself raise a TTL below its
 * minimum, 1.5 × election timeout, which is safe for the same reason.)
 */
export function leaseTtlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

interface LeaseEntry {
  readonly service: string;
  /** etcd lease id, decimal. */
  readonly id: string;
  /** What was registered, for {@link EtcdDiscovery.drain} to write again. */
  readonly info: MemberInfo;
}

/** How often {@link EtcdDiscovery.ensureGroup} re-reads after losing a compare-and-set race. */
const ENSURE_GROUP_ATTEMPTS = 5;

/** The group as read from a meta record, and the value to write back, if any. */
interface MetaPlan {
  readonly stored: StoredGroup;
  readonly write: string | undefined;
}

/**
 * What {@link EtcdDiscovery.ensureGroup} makes of a stored meta record: usable
 * fields stay; a missing `leaseTtlMs` (a record from before 0.2) is added;
 * unusable fields are replaced when `replaceInvalid`, else reported and kept.
 * Fields of other versions are kept as they are.
 */
export function planMeta(key: string, meta: MetaRecord, group: GroupSettings, replaceInvalid: boolean): MetaPlan {
  const values: Partial<Record<keyof GroupSettings, number>> = {};
  const updates: Record<string, number> = {};
  const invalid: InvalidRecord[] = [];
  const repaired: InvalidRecord[] = [];
  for (const name of META_FIELDS) {
    const field = meta[name];
    const problem = metaFieldProblem(name, field);
    if (field.state === 'ok') {
      values[name] = field.value;
    } else if (problem === undefined || replaceInvalid) {
      values[name] = group[name];
      updates[name] = group[name];
      if (problem !== undefined) repaired.push({ key, reason: problem });
    } else {
      invalid.push({ key, reason: problem });
    }
  }
  const stored = { shardCount: values.shardCount, leaseTtlMs: values.leaseTtlMs, invalid, repaired };
  if (Object.keys(updates).length === 0) return { stored, write: undefined };
  // A record that is not a JSON object has no field to keep, so both fields are unusable: with
  // replaceInvalid both are in `updates`, without it nothing is (a missing field needs an object).
  return { stored, write: JSON.stringify({ ...(meta.fields ?? {}), ...updates }) };
}

/** A random lease id in [1, 2^48): exact as a JS number, and collisions retried. */
function newLeaseId(): string {
  return String(randomInt(1, 2 ** 48));
}

/**
 * A connection to an etcd cluster implementing shardwork's `Discovery`.
 *
 * ```ts
 * const discovery = new EtcdDiscovery({ endpoints: ['10.0.0.1:2379', '10.0.0.2:2379'] });
 * const worker = new Worker({ service: 'billing-sync', shards: 8, discovery, handler });
 * ```
 *
 * Every call fails with `DiscoveryUnavailableError` within its deadline when
 * etcd cannot be reached, with `LeaseExpiredError` when the member's lease is
 * gone. The instance that registered a member renews, claims for and
 * unregisters it (it keeps the member's lease).
 */
export class EtcdDiscovery implements Discovery {
  /** Backend kind. */
  readonly kind = 'etcd';
  readonly #options: CompiledEtcdOptions;
  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #leases = new Map<string, LeaseEntry>();
  readonly #watches = new Set<ServiceWatch>();
  /** Revision of the latest snapshot per service, where a new watch starts. */
  readonly #listedAt = new Map<string, number>();
  /** The etcd user, for messages: the auth user, else the client certificate's common name. */
  readonly #user: string | undefined;
  #connected = false;
  #degraded = false;
  #diagnosing: Promise<readonly (string | undefined)[]> | undefined;
  /** When the last call failed (`performance.now()`). */
  #failedAt = 0;
  #closed = false;

  constructor(options: EtcdDiscoveryOptions = {}) {
    this.#options = compileEtcdOptions(options);
    const given = this.#options.client;
    this.#ownsClient = given === undefined;
    this.#client = given ?? new Etcd3(clientOptions(this.#options));
    this.#user = this.#options.auth?.username ?? certificateUser(this.#options);
  }

  /** The etcd3 client in use (shared with the caller when one was given). */
  get client(): Etcd3 {
    return this.#client;
  }

  /** The key prefix, without trailing slash. */
  get prefix(): string {
    return this.#options.prefix;
  }

  /** The compiled options (defaults filled in). */
  get options(): CompiledEtcdOptions {
    return this.#options;
  }

  #keys(service: string): ServiceKeys {
    if (typeof service !== 'string' || service === '') {
      throw new InvalidOptionsError('service', service, 'a non-empty string');
    }
    return serviceKeys(this.#options.prefix, service);
  }

  /** gRPC call options with the deadline for the next call. */
  #deadline(): { deadline: number } {
    return { deadline: Date.now() + (this.#connected ? this.#options.callTimeoutMs : this.#options.dialTimeoutMs) };
  }

  /**
   * Run one backend call: map what etcd3 throws to shardwork's errors (see
   * {@link EtcdDiscovery.#failure}) and track whether calls succeed.
   * `scope` names the keys the call touches, for permission errors.
   */
  async #call<T>(what: string, scope: EtcdKeyScope, run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    let result: T;
    try {
      result = await run();
    } catch (error) {
      if (error instanceof ShardworkError) throw error;
      if (this.#closed || error instanceof ClientClosedError) throw closedError(error);
      this.#degraded = true;
      this.#failedAt = performance.now();
      throw await this.#failure(what, scope, error);
    }
    this.#connected = true;
    if (this.#degraded) {
      // Calls succeed again: a watch stream that has been silent since the
      // failure may be dead without knowing it, and a broken one may be waiting
      // to retry; start those over on a fresh stream now, so that listeners
      // re-list at once.
      this.#degraded = false;
      for (const watch of this.#watches) watch.refresh(this.#failedAt);
    }
    return result;
  }

  /**
   * The error for a failed call. Refusals that retrying cannot fix are
   * `BackendRefusedError`s (not retryable, see `errors.ts`): permission denied, a wrong
   * password or no user while etcd has authentication on, and, before the
   * first call succeeded, a TLS set-up that fails at every endpoint (found by
   * probing them, see `tls-diagnosis.ts`). Everything else is a retryable
   * `DiscoveryUnavailableError`, which names the endpoints until a call has
   * succeeded, and carries a TLS explanation when gRPC's message holds one.
   */
  async #failure(
    what: string,
    scope: EtcdKeyScope,
    error: unknown,
  ): Promise<DiscoveryUnavailableError | BackendRefusedError> {
    const user = this.#user;
    if (error instanceof Etcd3PermissionDeniedError) return new EtcdPermissionError(what, user, scope, error);
    if (error instanceof EtcdAuthenticationFailedError) {
      return new EtcdAuthError(what, user, 'wrong user name or password (etcd: authentication failed)', error);
    }
    const message = error instanceof Error ? error.message : String(error);
    if (/user name is empty/.test(message)) {
      return new EtcdAuthError(
        what,
        undefined,
        'etcd has authentication on and this connection names no user: give user:password@ in the URL (or the auth option),' +
          ' or under --client-cert-auth a client certificate whose common name is an etcd user',
        error,
      );
    }
    if (/authentication is not enabled/.test(message)) {
      const detail = 'etcd has authentication off: leave out the user and password, or enable authentication in etcd';
      return new EtcdAuthError(what, user, detail, error);
    }
    if (error instanceof EtcdUserNotFoundError) return new EtcdAuthError(what, user, 'no such etcd user', error);
    const endpoints = this.#options.endpoints;
    const at = this.#connected || endpoints.length === 0 ? '' : ` at ${endpoints.join(', ')}`;
    let explanation = explainGrpcTls(error);
    if (!this.#connected && error instanceof GRPCUnavailableError && endpoints.length > 0) {
      const found = await this.#diagnose();
      const explained = found.filter((e): e is string => e !== undefined);
      const each = endpoints
        .map((endpoint, i) => (found[i] === undefined ? undefined : `${endpoint}: ${found[i]}`))
        .filter((e) => e !== undefined)
        .join('; ');
      if (explained.length === endpoints.length) {
        // Every endpoint refuses for a TLS reason: retrying cannot help.
        const [first] = explained;
        const same = first !== undefined && explained.every((e) => e === first);
        return new EtcdTlsError(what, endpoints, same ? first : each, error);
      }
      // Some endpoints may merely be down: retryable, with what the others said.
      if (explained.length > 0) explanation = each;
    }
    const detail = `${what} failed${at}: ${message}${explanation === undefined ? '' : ` (${explanation})`}`;
    return new DiscoveryUnavailableError('etcd', detail, error);
  }

  /** Probe every endpoint for a TLS problem (one probe at a time per instance). */
  #diagnose(): Promise<readonly (string | undefined)[]> {
    if (this.#diagnosing === undefined) {
      const timeoutMs = Math.min(1000, this.#options.dialTimeoutMs);
      const tls = this.#options.tls;
      this.#diagnosing = Promise.all(
        this.#options.endpoints.map((endpoint) => diagnoseEndpoint(endpoint, tls, timeoutMs).catch(() => undefined)),
      ).finally(() => {
        this.#diagnosing = undefined;
      });
    }
    return this.#diagnosing;
  }

  /** One transaction with the call deadline. */
  #txn(request: TxnRequest): Promise<ITxnResponse> {
    return this.#client.kv.txn(request, this.#deadline());
  }

  #entry(service: string, memberId: string): LeaseEntry {
    const entry = this.#leases.get(memberId);
    if (entry === undefined || entry.service !== service) throw new LeaseExpiredError(memberId);
    return entry;
  }

  #leaseGone(memberId: string): LeaseExpiredError {
    this.#leases.delete(memberId);
    return new LeaseExpiredError(memberId);
  }

  ensureGroup(service: string, group: GroupSettings, options: EnsureGroupOptions = {}): Promise<StoredGroup> {
    const keys = this.#keys(service);
    const shardCount = group?.shardCount;
    if (!Number.isSafeInteger(shardCount) || shardCount < 1) {
      return Promise.reject(new InvalidOptionsError('shards', shardCount, 'a positive integer'));
    }
    const leaseTtlMs = group.leaseTtlMs;
    if (!Number.isSafeInteger(leaseTtlMs) || leaseTtlMs < 1) {
      return Promise.reject(new InvalidOptionsError('leaseTtlMs', leaseTtlMs, 'a positive integer number of ms'));
    }
    const settings = { shardCount, leaseTtlMs };
    return this.#call('ensureGroup', keyScope(keys, keys.meta), async () => {
      for (let attempt = 1; attempt <= ENSURE_GROUP_ATTEMPTS; attempt++) {
        const kv = await this.#createMeta(keys.meta, settings);
        if (kv === undefined) return { ...settings, invalid: [], repaired: [] };
        const plan = planMeta(
          keys.meta,
          parseMeta(kv.value.toString('utf8')),
          settings,
          options.replaceInvalid === true,
        );
        if (plan.write === undefined) return plan.stored;
        // Compare on the mod revision read: whatever another replica wrote meanwhile wins, and is read again.
        const res = await this.#txn({
          compare: [modifiedAt(keys.meta, String(kv.mod_revision))],
          success: [put(keys.meta, plan.write)],
          failure: [],
        });
        if (res.succeeded) return plan.stored;
      }
      throw new DiscoveryUnavailableError('etcd', `ensureGroup lost ${ENSURE_GROUP_ATTEMPTS} races for ${keys.meta}`);
    });
  }

  /** Create the meta record if it is absent; the stored one (`undefined`: this call created it). */
  async #createMeta(key: string, group: GroupSettings): Promise<RawKeyValue | undefined> {
    for (;;) {
      const res = await this.#txn({
        compare: [absent(key)],
        success: [put(key, encodeMeta(group))],
        failure: [get(key)],
      });
      if (res.succeeded) return undefined;
      // The key existed at the compare; a transaction reads one revision, so it is there.
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (kv !== undefined) return kv;
    }
  }

  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    const keys = this.#keys(service);
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      return Promise.reject(new InvalidOptionsError('ttlMs', ttlMs, 'a positive number of milliseconds'));
    }
    if (typeof member?.id !== 'string' || member.id === '') {
      return Promise.reject(new InvalidOptionsError('member.id', member?.id, 'a non-empty string'));
    }
    const value = encodeMemberRecord(member);
    return this.#call('register', keyScope(keys, keys.member(member.id)), async () => {
      const c = this.#client;
      const id = await this.#grant(leaseTtlSeconds(ttlMs));
      try {
        const key = keys.member(member.id);
        // Normally the key is new. If a previous attempt with this id was applied
        // but its reply lost, take the key over with the new lease and keep its
        // create revision as join order.
        const res = await c
          .if(key, 'Create', '==', 0)
          .then(c.put(key).value(value).lease(id))
          .else(c.put(key).value(value).lease(id), c.get(key))
          .options(this.#deadline())
          .commit();
        const created = res.succeeded ? res.header.revision : res.responses[1]?.response_range?.kvs[0]?.create_revision;
        // (create_revision of an existing key is never the zero default, see RawKeyValue.)
        if (created === undefined) throw new Error('member key missing right after it was written');
        const previous = this.#leases.get(member.id);
        this.#leases.set(member.id, { service, id, info: member });
        if (previous !== undefined) this.#revoke(previous.id).catch(() => undefined);
        return { joinSeq: Number(created) };
      } catch (error) {
        // Best effort: the lease holds nothing we reported, let it go now rather than at expiry.
        this.#revoke(id).catch(() => undefined);
        throw error;
      }
    });
  }

  /** Grant a lease of `ttlSeconds` with an id of our choosing; returns the id. */
  async #grant(ttlSeconds: number): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const id = newLeaseId();
      try {
        await this.#client.leaseClient.leaseGrant({ ID: id, TTL: ttlSeconds }, this.#deadline());
        return id;
      } catch (error) {
        // "lease already exists": a random collision, try another id.
        if (attempt >= 3 || !(error instanceof Error) || !/lease already exists/.test(error.message)) throw error;
      }
    }
  }

  /** Revoke a lease; an unknown lease counts as revoked. */
  async #revoke(id: string): Promise<void> {
    try {
      await this.#client.leaseClient.leaseRevoke({ ID: id }, this.#deadline());
    } catch (error) {
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
    }
  }

  /**
   * One LeaseKeepAlive round trip, bounded by the call deadline. Returns the
   * remaining TTL in seconds; etcd answers 0 for a lease it does not know, and a
   * keepalive never creates a lease. Streams bypass etcd3's global retry, so an
   * unreachable host is retried here on the next one (which etcd3 picks, the
   * failed host being skipped for a moment).
   */
  async #keepAliveOnce(id: string): Promise<number> {
    const options = this.#deadline();
    const attempts = Math.max(1, this.#options.endpoints.length);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#keepAliveStream(id, options);
      } catch (error) {
        if (attempt >= attempts || !(error instanceof GRPCUnavailableError) || Date.now() >= options.deadline) {
          throw error;
        }
      }
    }
  }

  async #keepAliveStream(id: string, options: { deadline: number }): Promise<number> {
    const stream = await this.#client.leaseClient.leaseKeepAlive(options);
    return new Promise<number>((resolve, reject) => {
      stream.on('data', (res) => {
        resolve(Number(res.TTL));
        // Half-close; cancelling instead would report an error that makes etcd3 drop the connection.
        stream.end();
      });
      stream.on('error', (error: Error) => reject(castGrpcError(error)));
      stream.write({ ID: id });
    });
  }

  /**
   * The scope of a lease call of `service`. Lease calls name no key, but etcd
   * lets a lease be revoked only by a user who may write every key bound to
   * it: the service's keys. (Not validated here: `#entry` rejects a bad service.)
   */
  #leaseScope(service: string): EtcdKeyScope {
    return prefixScope(serviceKeys(this.#options.prefix, String(service)).root, 'readwrite');
  }

  /**
   * One LeaseKeepAlive, and alongside it (in parallel, so the renewal takes
   * no longer) a check of the `held` claims: compares only, in transactions
   * of up to `maxTxnOps / 3` claims (see `heldClaimsLost`). A check that fails
   * to reach etcd does not fail the renewal: it reports nothing this time.
   */
  renew(service: string, memberId: string, held: readonly ClaimRef[] = []): Promise<RenewResult> {
    const bad = checkClaimRefs(held);
    if (bad !== undefined) return Promise.reject(bad);
    return this.#call('renew', this.#leaseScope(service), async () => {
      const entry = this.#entry(service, memberId);
      const ctx = this.#claimContext(this.#keys(service), memberId, entry.id);
      const checking = held.length === 0 ? Promise.resolve([]) : heldClaimsLost(ctx, held).catch(() => []);
      const [ttl, lost] = await Promise.all([this.#keepAliveOnce(entry.id), checking]);
      if (!(ttl > 0)) throw this.#leaseGone(memberId);
      return { lost };
    });
  }

  /**
   * One transaction: if no key exists under `members/` (a range compare:
   * every key in the range must have create revision 0, which an empty range
   * satisfies), delete every key under the service root. Claims are bound to
   * member leases, so none can be live without a member; tokens are etcd
   * revisions, which keep increasing for a service started again.
   */
  forgetService(service: string): Promise<boolean> {
    const keys = this.#keys(service);
    return this.#call('forgetService', prefixScope(keys.root, 'readwrite'), async () => {
      const outcome = await forgetKeys((r) => this.#txn(r), keys);
      if (typeof outcome !== 'boolean') throw new ServiceRunningError(service, outcome);
      return outcome;
    });
  }

  unregister(service: string, memberId: string): Promise<void> {
    return this.#call('unregister', this.#leaseScope(service), async () => {
      const entry = this.#leases.get(memberId);
      if (entry === undefined || entry.service !== service) return;
      // Revoking deletes the member key and every claim in one step; an
      // unknown lease counts as revoked, which makes this idempotent.
      await this.#revoke(entry.id);
      if (this.#leases.get(memberId) === entry) this.#leases.delete(memberId);
    });
  }

  drain(service: string, memberId: string): Promise<void> {
    const keys = this.#keys(service);
    return this.#call('drain', keyScope(keys, keys.member(memberId)), async () => {
      const entry = this.#entry(service, memberId);
      const key = keys.member(memberId);
      // Bound to the member's lease, or the member is gone: never write a member back.
      const res = await this.#txn({
        compare: [boundTo(key, entry.id)],
        success: [put(key, encodeMemberRecord(entry.info, true), entry.id)],
        failure: [],
      }).catch((error: unknown) => {
        throw error instanceof EtcdLeaseInvalidError ? this.#leaseGone(memberId) : error;
      });
      if (!res.succeeded) throw this.#leaseGone(memberId);
    });
  }

  snapshot(service: string): Promise<Snapshot> {
    const keys = this.#keys(service);
    return this.#call('snapshot', prefixScope(keys.root, 'read'), async () => {
      const res = await this.#client.getAll().prefix(keys.root).options(this.#deadline()).exec();
      const revision = Number(res.header.revision);
      if (revision > (this.#listedAt.get(service) ?? 0)) this.#listedAt.set(service, revision);
      return { revision: String(res.header.revision), ...parseService(keys.root, res.kvs) };
    });
  }

  /**
   * Time each member's lease has left, by etcd's clock, in whole seconds (etcd's
   * lease granularity) as ms: one `LeaseTimeToLive` per member, so for
   * operating tools, never for the resolver's listings.
   */
  leaseTimes(service: string): Promise<ReadonlyMap<string, number>> {
    const keys = this.#keys(service);
    return this.#call('leaseTimes', prefixScope(`${keys.root}members/`, 'read', keys.root), async () => {
      const res = await this.#client.getAll().prefix(`${keys.root}members/`).options(this.#deadline()).exec();
      const times = new Map<string, number>();
      await Promise.all(
        res.kvs.map(async (kv) => {
          const key = parseServiceKey(keys.root, kv.key.toString());
          if (key.kind !== 'member' || kv.lease === '0') return;
          const lease = await this.#client.leaseClient.leaseTimeToLive({ ID: kv.lease }, this.#deadline());
          const seconds = Number(lease.TTL);
          if (Number.isFinite(seconds) && seconds >= 0) times.set(key.id, seconds * 1000);
        }),
      );
      return times;
    });
  }

  /**
   * Services under this prefix: the keys (not values) under it, of which the
   * group records `<prefix>/<service>/meta` name the services.
   */
  services(): Promise<readonly string[]> {
    const root = `${this.#options.prefix}/`;
    return this.#call('services', prefixScope(root, 'read'), async () => {
      const keys = await this.#client.getAll().prefix(root).options(this.#deadline()).keys();
      const names = new Set<string>();
      for (const key of keys) {
        const rest = key.slice(root.length);
        const slash = rest.indexOf('/');
        if (slash > 0 && rest.slice(slash + 1) === 'meta') {
          try {
            names.add(decodeURIComponent(rest.slice(0, slash)));
          } catch {
            // Not a key of ours (a malformed escape): not a service.
          }
        }
      }
      return [...names].sort();
    });
  }

  /**
   * `"<keys>:<highest mod revision>"` of the service prefix, from one
   * transaction of a count-only and a keys-only range (limit 1): no values
   * are read. Equal to the last snapshot's `version` while nothing changed.
   */
  version(service: string): Promise<string> {
    const keys = this.#keys(service);
    return this.#call('version', prefixScope(keys.root, 'read'), async () => {
      const res = await this.#txn({
        compare: [],
        success: [countPrefix(keys.root), lastModified(keys.root)],
        failure: [],
      });
      const count = res.responses[0]?.response_range?.count ?? '0';
      const last = res.responses[1]?.response_range?.kvs[0];
      return versionOf(Number(count), Number(last?.mod_revision ?? 0));
    });
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    const keys = this.#keys(service);
    if (this.#closed) return () => undefined;
    // Deliver everything after the latest snapshot of this service (list, then
    // watch from revision + 1); without one, start now (see ServiceWatch).
    const listedAt = this.#listedAt.get(service);
    const watch = new ServiceWatch(
      {
        client: this.#client,
        currentRevision: (root) => this.#currentRevision(root),
        listedAt: () => this.#listedAt.get(service),
      },
      keys.root,
      listener,
      listedAt === undefined ? undefined : listedAt + 1,
    );
    this.#watches.add(watch);
    return () => {
      watch.stop();
      this.#watches.delete(watch);
    };
  }

  async #currentRevision(root: string): Promise<number> {
    return this.#call('watch', prefixScope(root, 'read'), async () => {
      const res = await this.#client.kv.range({ key: Buffer.from(root), count_only: true }, this.#deadline());
      return Number(res.header.revision);
    });
  }

  #claimContext(keys: ServiceKeys, memberId: string, lease: string): ClaimContext {
    return { txn: (r) => this.#txn(r), keys, memberId, lease, batchSize: this.#batchSize };
  }

  /** Shards per batch transaction: the compares and operations of one stay within `maxTxnOps`. */
  get #batchSize(): number {
    return this.#options.maxTxnOps - 2;
  }

  claim(service: string, memberId: string, shard: number): Promise<ClaimResult> {
    return this.claimMany(service, memberId, [shard]).then((batch) => {
      const result = batch.results[0];
      if (result === undefined) throw new Error('claim batch of one shard returned no result');
      return result;
    });
  }

  /**
   * Claim `shards` in transactions of up to `maxTxnOps - 2` shards each, at
   * most 1000 (see `claims.ts`). Every claim gets a token of its own, made of
   * its transaction's revision and its shard's slot, above every token handed
   * out before (see `tokens.ts`).
   */
  claimMany(service: string, memberId: string, shards: readonly number[]): Promise<ClaimBatch> {
    const keys = this.#keys(service);
    const bad = checkShards(shards);
    if (bad !== undefined) return Promise.reject(bad);
    return this.#call('claimMany', prefixScope(`${keys.root}claims/`, 'readwrite', keys.root), async () => {
      const ctx = this.#claimContext(keys, memberId, this.#entry(service, memberId).id);
      let batch: ClaimBatch | typeof LEASE_GONE;
      try {
        batch = await claimShards(ctx, shards);
      } catch (error) {
        if (error instanceof EtcdLeaseInvalidError) throw this.#leaseGone(memberId);
        throw error;
      }
      if (batch === LEASE_GONE) throw this.#leaseGone(memberId);
      return batch;
    });
  }

  release(service: string, memberId: string, shard: number, token: number): Promise<boolean> {
    return this.releaseMany(service, memberId, [{ shard, token }]).then((results) => results[0] === true);
  }

  releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]> {
    const keys = this.#keys(service);
    const bad = checkClaimRefs(claims);
    if (bad !== undefined) return Promise.reject(bad);
    return this.#call('releaseMany', prefixScope(`${keys.root}claims/`, 'readwrite', keys.root), () =>
      releaseShards({ txn: (r) => this.#txn(r), keys, memberId, batchSize: this.#batchSize }, claims),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const watch of this.#watches) watch.stop();
    this.#watches.clear();
    // Leases stay: close() does not unregister (peers see expiry after the TTL).
    this.#leases.clear();
    if (this.#ownsClient) this.#client.close();
  }

  /** Same as {@link EtcdDiscovery.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The error for the first entry of `shards` that is not a shard index. */
function checkShards(shards: unknown): InvalidOptionsError | undefined {
  if (!Array.isArray(shards)) return new InvalidOptionsError('shards', shards, 'an array of shard indices');
  for (const shard of shards) {
    if (!Number.isSafeInteger(shard) || shard < 0)
      return new InvalidOptionsError('shard', shard, 'a non-negative integer');
  }
  return undefined;
}

/** The error for the first entry of `claims` that is not a claim reference. */
function checkClaimRefs(claims: unknown): InvalidOptionsError | undefined {
  if (!Array.isArray(claims)) return new InvalidOptionsError('claims', claims, 'an array of { shard, token }');
  const bad = checkShards(claims.map((c: Partial<ClaimRef> | null | undefined) => c?.shard));
  if (bad !== undefined) return bad;
  for (const claim of claims as ClaimRef[]) {
    if (!Number.isSafeInteger(claim.token) || claim.token < 1) {
      return new InvalidOptionsError('token', claim.token, 'a positive integer');
    }
  }
  return undefined;
}

/** The scope of a call on one key of a service: readwrite on the service prefix covers it. */
function keyScope(keys: ServiceKeys, key: string): EtcdKeyScope {
  return { key, prefix: false, permission: 'readwrite', grant: keys.root };
}

/** The scope of a call on a range of keys under `grant`. */
function prefixScope(key: string, permission: 'read' | 'readwrite', grant = key): EtcdKeyScope {
  return { key, prefix: true, permission, grant };
}

/** The common name of the client certificate: the etcd user under `--client-cert-auth` when no password is given. */
function certificateUser(options: CompiledEtcdOptions): string | undefined {
  const chain = options.tls === false ? undefined : options.tls.certChain;
  if (chain === undefined) return undefined;
  try {
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(chain).subject)?.[1];
    return cn;
  } catch {
    return undefined;
  }
}

function closedError(cause?: unknown): DiscoveryUnavailableError {
  return new DiscoveryUnavailableError('etcd', 'connection closed', cause);
}

/**
 * Create an {@link EtcdDiscovery} from an `etcd://` or `etcds://` URL; what
 * `createDiscovery()` of `@shardwork/core` calls for these protocols.
 *
 * ```ts
 * discoveryFromUrl('etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379?prefix=prod/sw');
 * discoveryFromUrl('etcds://app:s3cret@etcd.internal:2379');
 * ```
 */
export function discoveryFromUrl(url: string): EtcdDiscovery {
  return new EtcdDiscovery(parseEtcdUrl(url));
}
