/**
 * The etcd backend of the shardwork discovery contract, on the etcd3 client:
 * {@link EtcdDiscovery} implements `Discovery` by composing the pieces below,
 * each in a file of its own.
 *
 * - `calls.ts`: every call runs through one wrapper that gives it its
 *   deadline and maps what etcd3 throws to shardwork's errors.
 * - `leases.ts`: a member is bound to an etcd lease of its own (TTL rounded
 *   up to whole seconds, id chosen by the client, below 2^48: see there why),
 *   renewed by a single LeaseKeepAlive with a deadline; no keepalive loop runs
 *   in the client, since the worker tracks renewals and fences itself.
 * - Members (here): the key `<prefix>/<svc>/members/<id>`, put with the
 *   member's lease; `joinSeq` is the key's create revision. Its value is
 *   core's member record; `drain` rewrites it with `draining` set, under the
 *   same lease.
 * - `claims.ts`: claims are `<prefix>/<svc>/claims/<shard>`, created in batches
 *   by transactions that require each key to be absent and the member key to
 *   be bound to the member's lease; they are put with that lease, so expiry or
 *   revocation removes member and claims in one step. A claim's token is its
 *   create revision (which etcd increases on every write) × 1000 plus the
 *   shard's slot, unique within a transaction (see `tokens.ts`).
 * - `group.ts`: the meta record with the shard count and lease TTL, created,
 *   checked and repaired by `ensureGroup`.
 * - `watch.ts`, `records.ts`, `forget.ts`: the watch of a service, the
 *   parsing of its keys into a snapshot, and `forgetService`.
 *
 * @module
 */

import {
  type ClaimBatch,
  type ClaimRef,
  type Discovery,
  type DiscoveryListener,
  type EnsureGroupOptions,
  type GroupSettings,
  InvalidOptionsError,
  type MemberInfo,
  type Registration,
  type RenewResult,
  ServiceRunningError,
  type Snapshot,
  type StoredGroup,
} from '@shardwork/core';
import { encodeMemberRecord } from '@shardwork/core/backend';
import { Etcd3, EtcdLeaseInvalidError } from 'etcd3';
import { EtcdCalls, keyScope, prefixScope } from './calls.js';
import {
  type ClaimContext,
  checkClaimRefs,
  checkShards,
  claimShards,
  heldClaimsLost,
  LEASE_GONE,
  releaseShards,
} from './claims.js';
import { clientOptions } from './connection.js';
import { forgetKeys } from './forget.js';
import { checkGroup, ensureMeta, servicesOf } from './group.js';
import { type ServiceKeys, serviceKeys } from './keys.js';
import { leaseScope, leaseTtlSeconds, MemberLeases } from './leases.js';
import { type CompiledEtcdOptions, compileEtcdOptions, type EtcdDiscoveryOptions } from './options.js';
import { parseService, versionOf } from './records.js';
import { boundTo, countPrefix, lastModified, put } from './txn.js';
import { parseEtcdUrl } from './url.js';
import { ServiceWatch } from './watch.js';

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
  readonly #calls: EtcdCalls;
  readonly #leases: MemberLeases;
  readonly #watches = new Set<ServiceWatch>();
  /** Revision of the latest snapshot per service, where a new watch starts. */
  readonly #listedAt = new Map<string, number>();

  constructor(options: EtcdDiscoveryOptions = {}) {
    this.#options = compileEtcdOptions(options);
    const given = this.#options.client;
    this.#ownsClient = given === undefined;
    this.#client = given ?? new Etcd3(clientOptions(this.#options));
    // Calls succeed again after a failure: start silent or broken watches over (see EtcdCalls.run).
    const calls = new EtcdCalls(this.#options, this.#client, (failedAt) => {
      for (const watch of this.#watches) watch.refresh(failedAt);
    });
    this.#calls = calls;
    this.#leases = new MemberLeases({
      client: this.#client,
      deadline: () => calls.deadline(),
      attempts: Math.max(1, this.#options.endpoints.length),
    });
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

  ensureGroup(service: string, group: GroupSettings, options: EnsureGroupOptions = {}): Promise<StoredGroup> {
    const keys = this.#keys(service);
    const settings = checkGroup(group);
    if (settings instanceof InvalidOptionsError) return Promise.reject(settings);
    return this.#calls.run('ensureGroup', keyScope(keys, keys.meta), () =>
      ensureMeta((r) => this.#calls.txn(r), keys.meta, settings, options.replaceInvalid === true),
    );
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
    return this.#calls.run('register', keyScope(keys, keys.member(member.id)), async () => {
      const c = this.#client;
      const id = await this.#leases.grant(leaseTtlSeconds(ttlMs));
      try {
        const key = keys.member(member.id);
        // Normally the key is new. If a previous attempt with this id was applied
        // but its reply lost, take the key over with the new lease and keep its
        // create revision as join order.
        const res = await c
          .if(key, 'Create', '==', 0)
          .then(c.put(key).value(value).lease(id))
          .else(c.put(key).value(value).lease(id), c.get(key))
          .options(this.#calls.deadline())
          .commit();
        const created = res.succeeded ? res.header.revision : res.responses[1]?.response_range?.kvs[0]?.create_revision;
        // (create_revision of an existing key is never the zero default, see RawKeyValue in records.ts.)
        if (created === undefined) throw new Error('member key missing right after it was written');
        this.#leases.bind(member.id, { service, id, info: member });
        return { joinSeq: Number(created) };
      } catch (error) {
        // Best effort: the lease holds nothing we reported, let it go now rather than at expiry.
        this.#leases.revoke(id).catch(() => undefined);
        throw error;
      }
    });
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
    return this.#calls.run('renew', leaseScope(this.#options.prefix, service), async () => {
      const entry = this.#leases.entry(service, memberId);
      const ctx = this.#claimContext(this.#keys(service), memberId, entry.id);
      const checking = held.length === 0 ? Promise.resolve([]) : heldClaimsLost(ctx, held).catch(() => []);
      const [ttl, lost] = await Promise.all([this.#leases.keepAliveOnce(entry.id), checking]);
      if (!(ttl > 0)) throw this.#leases.gone(memberId);
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
    return this.#calls.run('forgetService', prefixScope(keys.root, 'readwrite'), async () => {
      const outcome = await forgetKeys((r) => this.#calls.txn(r), keys);
      if (typeof outcome !== 'boolean') throw new ServiceRunningError(service, outcome);
      return outcome;
    });
  }

  unregister(service: string, memberId: string): Promise<void> {
    return this.#calls.run('unregister', leaseScope(this.#options.prefix, service), () =>
      this.#leases.revokeMember(service, memberId),
    );
  }

  drain(service: string, memberId: string): Promise<void> {
    const keys = this.#keys(service);
    return this.#calls.run('drain', keyScope(keys, keys.member(memberId)), async () => {
      const entry = this.#leases.entry(service, memberId);
      const key = keys.member(memberId);
      // Bound to the member's lease, or the member is gone: never write a member back.
      const res = await this.#calls
        .txn({
          compare: [boundTo(key, entry.id)],
          success: [put(key, encodeMemberRecord(entry.info, true), entry.id)],
          failure: [],
        })
        .catch((error: unknown) => {
          throw error instanceof EtcdLeaseInvalidError ? this.#leases.gone(memberId) : error;
        });
      if (!res.succeeded) throw this.#leases.gone(memberId);
    });
  }

  snapshot(service: string): Promise<Snapshot> {
    const keys = this.#keys(service);
    return this.#calls.run('snapshot', prefixScope(keys.root, 'read'), async () => {
      const res = await this.#client.getAll().prefix(keys.root).options(this.#calls.deadline()).exec();
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
    return this.#calls.run('leaseTimes', prefixScope(`${keys.root}members/`, 'read', keys.root), () =>
      this.#leases.times(keys),
    );
  }

  /**
   * Services under this prefix: the keys (not values) under it, of which the
   * group records `<prefix>/<service>/meta` name the services.
   */
  services(): Promise<readonly string[]> {
    const root = `${this.#options.prefix}/`;
    return this.#calls.run('services', prefixScope(root, 'read'), async () => {
      const keys = await this.#client.getAll().prefix(root).options(this.#calls.deadline()).keys();
      return servicesOf(root, keys);
    });
  }

  /**
   * `"<keys>:<highest mod revision>"` of the service prefix, from one
   * transaction of a count-only and a keys-only range (limit 1): no values
   * are read. Equal to the last snapshot's `version` while nothing changed.
   */
  version(service: string): Promise<string> {
    const keys = this.#keys(service);
    return this.#calls.run('version', prefixScope(keys.root, 'read'), async () => {
      const res = await this.#calls.txn({
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
    if (this.#calls.closed) return () => undefined;
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
    return this.#calls.run('watch', prefixScope(root, 'read'), async () => {
      const res = await this.#client.kv.range({ key: Buffer.from(root), count_only: true }, this.#calls.deadline());
      return Number(res.header.revision);
    });
  }

  #claimContext(keys: ServiceKeys, memberId: string, lease: string): ClaimContext {
    return { txn: (r) => this.#calls.txn(r), keys, memberId, lease, batchSize: this.#batchSize };
  }

  /** Shards per batch transaction: the compares and operations of one stay within `maxTxnOps`. */
  get #batchSize(): number {
    return this.#options.maxTxnOps - 2;
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
    return this.#calls.run('claimMany', prefixScope(`${keys.root}claims/`, 'readwrite', keys.root), async () => {
      const ctx = this.#claimContext(keys, memberId, this.#leases.entry(service, memberId).id);
      let batch: ClaimBatch | typeof LEASE_GONE;
      try {
        batch = await claimShards(ctx, shards);
      } catch (error) {
        if (error instanceof EtcdLeaseInvalidError) throw this.#leases.gone(memberId);
        throw error;
      }
      if (batch === LEASE_GONE) throw this.#leases.gone(memberId);
      return batch;
    });
  }

  releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]> {
    const keys = this.#keys(service);
    const bad = checkClaimRefs(claims);
    if (bad !== undefined) return Promise.reject(bad);
    return this.#calls.run('releaseMany', prefixScope(`${keys.root}claims/`, 'readwrite', keys.root), () =>
      releaseShards({ txn: (r) => this.#calls.txn(r), keys, memberId, batchSize: this.#batchSize }, claims),
    );
  }

  async close(): Promise<void> {
    if (this.#calls.closed) return;
    this.#calls.close();
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
