/**
 * The etcd backend of the shardwork discovery contract, on the etcd3 client.
 *
 * - A member is the key `<prefix>/<svc>/members/<id>` bound to the member's own
 *   etcd lease (TTL rounded up to whole seconds); `joinSeq` is the key's create
 *   revision.
 * - A claim is `<prefix>/<svc>/claims/<shard>` created by a transaction that
 *   requires the key to be absent and the member key to be bound to the
 *   member's lease; it is put with that lease, so expiry or revocation removes
 *   member and claims in one step. Its token is its create revision, which etcd
 *   increases on every write: strictly increasing and linearizable.
 * - Renewal is a single LeaseKeepAlive with a deadline; no keepalive loop runs
 *   in the client, since the worker tracks renewals and fences itself.
 * - Lease ids are chosen here, below 2^48, instead of by etcd: etcd's own ids
 *   use all 63 bits, and wherever the protobuf runtime decodes int64 without
 *   long.js (e.g. when a test runner hands CommonJS the ESM build of `long`) they
 *   silently lose precision, after which every use of the lease fails.
 *
 * @module
 */

import { randomInt } from 'node:crypto';
import {
  type Claim,
  type ClaimResult,
  type Discovery,
  type DiscoveryListener,
  DiscoveryUnavailableError,
  InvalidOptionsError,
  InvalidRecordError,
  LeaseExpiredError,
  type MemberInfo,
  type Registration,
  ShardworkError,
  type Snapshot,
} from '@shardwork/core';
import {
  ClientClosedError,
  castGrpcError,
  Etcd3,
  EtcdLeaseInvalidError,
  GRPCUnavailableError,
  type IOptions,
} from 'etcd3';
import { type CompiledEtcdOptions, compileEtcdOptions, type EtcdDiscoveryOptions, parseEtcdUrl } from './options.js';
import { faultHandling } from './policies.js';
import { encodeMember, encodeMeta, parseMeta, parseService, type ServiceKeys, serviceKeys } from './records.js';
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
  #connected = false;
  #degraded = false;
  #closed = false;

  constructor(options: EtcdDiscoveryOptions = {}) {
    this.#options = compileEtcdOptions(options);
    const given = this.#options.client;
    this.#ownsClient = given === undefined;
    this.#client = given ?? new Etcd3(clientOptions(this.#options));
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

  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    let result: T;
    try {
      result = await run();
    } catch (error) {
      if (error instanceof ShardworkError) throw error;
      if (this.#closed || error instanceof ClientClosedError) throw closedError(error);
      this.#degraded = true;
      const detail = error instanceof Error ? error.message : String(error);
      throw new DiscoveryUnavailableError('etcd', `${what} failed: ${detail}`, error);
    }
    this.#connected = true;
    if (this.#degraded) {
      // Calls fail again: a watch stream on the connection that failed may be
      // silently dead, so start the watches over on fresh streams.
      this.#degraded = false;
      for (const watch of this.#watches) watch.refresh();
    }
    return result;
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

  ensureGroup(service: string, shardCount: number): Promise<number> {
    const keys = this.#keys(service);
    if (!Number.isInteger(shardCount) || shardCount < 1) {
      return Promise.reject(new InvalidOptionsError('shards', shardCount, 'a positive integer'));
    }
    return this.#call('ensureGroup', async () => {
      const c = this.#client;
      const res = await c
        .if(keys.meta, 'Create', '==', 0)
        .then(c.put(keys.meta).value(encodeMeta(shardCount)))
        .else(c.get(keys.meta))
        .options(this.#deadline())
        .commit();
      if (res.succeeded) return shardCount;
      const kv = res.responses[0]?.response_range?.kvs[0];
      // The key existed at the compare; it cannot have vanished inside the same transaction.
      if (kv === undefined) throw new InvalidRecordError(keys.meta, 'meta record missing');
      const parsed = parseMeta(kv.value.toString('utf8'));
      if (!parsed.ok) throw new InvalidRecordError(keys.meta, parsed.reason);
      return parsed.value;
    });
  }

  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    const keys = this.#keys(service);
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      return Promise.reject(new InvalidOptionsError('ttlMs', ttlMs, 'a positive number of milliseconds'));
    }
    if (typeof member?.id !== 'string' || member.id === '') {
      return Promise.reject(new InvalidOptionsError('member.id', member?.id, 'a non-empty string'));
    }
    return this.#call('register', async () => {
      const c = this.#client;
      const id = await this.#grant(leaseTtlSeconds(ttlMs));
      try {
        const key = keys.member(member.id);
        const value = encodeMember(member);
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
        this.#leases.set(member.id, { service, id });
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

  renew(service: string, memberId: string): Promise<void> {
    return this.#call('renew', async () => {
      const entry = this.#entry(service, memberId);
      const ttl = await this.#keepAliveOnce(entry.id);
      if (!(ttl > 0)) throw this.#leaseGone(memberId);
    });
  }

  unregister(service: string, memberId: string): Promise<void> {
    return this.#call('unregister', async () => {
      const entry = this.#leases.get(memberId);
      if (entry === undefined || entry.service !== service) return;
      // Revoking deletes the member key and every claim in one step; an
      // unknown lease counts as revoked, which makes this idempotent.
      await this.#revoke(entry.id);
      if (this.#leases.get(memberId) === entry) this.#leases.delete(memberId);
    });
  }

  snapshot(service: string): Promise<Snapshot> {
    const keys = this.#keys(service);
    return this.#call('snapshot', async () => {
      const res = await this.#client.getAll().prefix(keys.root).options(this.#deadline()).exec();
      const parsed = parseService(keys.root, res.kvs);
      const revision = Number(res.header.revision);
      if (revision > (this.#listedAt.get(service) ?? 0)) this.#listedAt.set(service, revision);
      return {
        revision: String(res.header.revision),
        shardCount: parsed.shardCount,
        members: parsed.members,
        claims: parsed.claims satisfies Claim[],
        invalid: parsed.invalid,
      };
    });
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    const keys = this.#keys(service);
    if (this.#closed) return () => undefined;
    // Deliver everything after the latest snapshot of this service (list, then
    // watch from revision + 1); without one, start now and announce a reset.
    const listedAt = this.#listedAt.get(service);
    const watch = new ServiceWatch(
      { client: this.#client, currentRevision: (root) => this.#currentRevision(root) },
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
    return this.#call('watch', async () => {
      const res = await this.#client.getAll().prefix(root).limit(1).options(this.#deadline()).exec();
      return Number(res.header.revision);
    });
  }

  claim(service: string, memberId: string, shard: number): Promise<ClaimResult> {
    const keys = this.#keys(service);
    if (!Number.isInteger(shard) || shard < 0) {
      return Promise.reject(new InvalidOptionsError('shard', shard, 'a non-negative integer'));
    }
    return this.#call('claim', async (): Promise<ClaimResult> => {
      const entry = this.#entry(service, memberId);
      const c = this.#client;
      const claimKey = keys.claim(shard);
      const memberKey = keys.member(memberId);
      let res: Awaited<ReturnType<ReturnType<Etcd3['if']>['commit']>>;
      try {
        res = await c
          .if(claimKey, 'Create', '==', 0)
          .and(memberKey, 'Lease', '==', entry.id)
          .then(c.put(claimKey).value(memberId).lease(entry.id))
          .else(c.get(claimKey), c.get(memberKey))
          .options(this.#deadline())
          .commit();
      } catch (error) {
        if (error instanceof EtcdLeaseInvalidError) throw this.#leaseGone(memberId);
        throw error;
      }
      if (res.succeeded) return { ok: true, token: Number(res.header.revision) };
      const existing = res.responses[0]?.response_range?.kvs[0];
      const self = res.responses[1]?.response_range?.kvs[0];
      // The member key lives exactly as long as the lease: gone means expired or revoked.
      if (self === undefined || String(self.lease) !== entry.id) throw this.#leaseGone(memberId);
      if (existing === undefined) throw new Error(`claim transaction for ${claimKey} failed with no claim present`);
      return { ok: false, owner: existing.value.toString('utf8'), token: Number(existing.create_revision) };
    });
  }

  release(service: string, memberId: string, shard: number, token: number): Promise<boolean> {
    const keys = this.#keys(service);
    if (!Number.isInteger(shard) || shard < 0) {
      return Promise.reject(new InvalidOptionsError('shard', shard, 'a non-negative integer'));
    }
    return this.#call('release', async () => {
      const c = this.#client;
      const claimKey = keys.claim(shard);
      const res = await c
        .if(claimKey, 'Value', '==', memberId)
        .and(claimKey, 'Create', '==', token)
        .then(c.delete().key(claimKey))
        .options(this.#deadline())
        .commit();
      return res.succeeded;
    });
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

function closedError(cause?: unknown): DiscoveryUnavailableError {
  return new DiscoveryUnavailableError('etcd', 'connection closed', cause);
}

function clientOptions(options: CompiledEtcdOptions): IOptions {
  const result: IOptions = {
    hosts: [...options.endpoints],
    grpcOptions: {
      // Notice a silently dead connection under an open stream (the watch).
      'grpc.keepalive_time_ms': options.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 0,
      // Reconnect quickly after a server restart (gRPC's default backoff grows to 120 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // One connection per etcd3 service client: when etcd3 rebuilds a client
      // after a failed call, it then really gets a new connection instead of
      // the shared, possibly frozen one.
      'grpc.use_local_subchannel_pool': 1,
    },
    faultHandling: faultHandling(options.endpoints.length),
  };
  const tls = options.tls;
  if (tls !== false && (tls.rootCertificate !== undefined || tls.privateKey !== undefined)) {
    // grpc's createSsl takes null for "system roots".
    const credentials: NonNullable<IOptions['credentials']> = {
      rootCertificate: tls.rootCertificate ?? (null as unknown as Buffer),
    };
    if (tls.privateKey !== undefined) credentials.privateKey = tls.privateKey;
    if (tls.certChain !== undefined) credentials.certChain = tls.certChain;
    result.credentials = credentials;
  }
  if (options.auth !== undefined) {
    const dialTimeoutMs = options.dialTimeoutMs;
    result.auth = {
      username: options.auth.username,
      password: options.auth.password,
      callOptions: () => ({ deadline: Date.now() + dialTimeoutMs }),
    };
  }
  return result;
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
