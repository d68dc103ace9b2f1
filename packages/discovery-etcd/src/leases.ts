/**
 * Member leases: each registered member is bound to an etcd lease of its own,
 * which this module grants, renews (one keepalive at a time), revokes and
 * reads the time to live of, and remembers per member id for the instance
 * that registered it.
 *
 * - TTLs are whole seconds, rounded up ({@link leaseTtlSeconds}).
 * - Renewal is a single LeaseKeepAlive with the call deadline; no keepalive
 *   loop runs in the client (etcd3's reports a lost lease only after 2 × TTL),
 *   since the worker tracks renewals and fences itself.
 * - Lease ids are chosen here, below 2^48, instead of by etcd: etcd's own ids
 *   use all 63 bits, and wherever the protobuf runtime decodes int64 without
 *   long.js (e.g. when a test runner hands CommonJS the ESM build of `long`) they
 *   silently lose precision, after which every use of the lease fails.
 *
 * @module
 */

import { randomInt } from 'node:crypto';
import { LeaseExpiredError, type MemberInfo } from '@shardwork/core';
import { castGrpcError, type Etcd3, EtcdLeaseInvalidError, GRPCUnavailableError } from 'etcd3';
import { type CallOptions, prefixScope } from './calls.js';
import type { EtcdKeyScope } from './errors.js';
import { parseServiceKey, type ServiceKeys, serviceKeys } from './keys.js';

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

/** The lease of one member registered by this instance. */
export interface LeaseEntry {
  readonly service: string;
  /** etcd lease id, decimal. */
  readonly id: string;
  /** What was registered, for `drain` to write again. */
  readonly info: MemberInfo;
}

/** What {@link MemberLeases} needs from its connection. */
export interface LeaseHost {
  readonly client: Etcd3;
  /** gRPC call options with the deadline for the next call. */
  deadline(): CallOptions;
  /** How many endpoints a keepalive may try in turn (the cluster's endpoints, at least 1). */
  readonly attempts: number;
}

/**
 * The scope of a lease call of `service`. Lease calls name no key, but etcd
 * lets a lease be revoked only by a user who may write every key bound to
 * it: the service's keys. (Not validated here: {@link MemberLeases.entry}
 * rejects a bad service.)
 */
export function leaseScope(prefix: string, service: string): EtcdKeyScope {
  return prefixScope(serviceKeys(prefix, String(service)).root, 'readwrite');
}

/** A random lease id in [1, 2^48): exact as a JS number, and collisions retried. */
function newLeaseId(): string {
  return String(randomInt(1, 2 ** 48));
}

/** The leases of the members this instance registered, by member id, and the lease calls. */
export class MemberLeases {
  readonly #host: LeaseHost;
  readonly #entries = new Map<string, LeaseEntry>();

  constructor(host: LeaseHost) {
    this.#host = host;
  }

  /** The lease of `memberId` of `service`; `LeaseExpiredError` if this instance holds none. */
  entry(service: string, memberId: string): LeaseEntry {
    const entry = this.#entries.get(memberId);
    if (entry === undefined || entry.service !== service) throw new LeaseExpiredError(memberId);
    return entry;
  }

  /** Forget the lease of `memberId`, which etcd no longer has: the error to throw. */
  gone(memberId: string): LeaseExpiredError {
    this.#entries.delete(memberId);
    return new LeaseExpiredError(memberId);
  }

  /** Remember `entry` as the lease of `memberId`; a previous one is revoked (best effort). */
  bind(memberId: string, entry: LeaseEntry): void {
    const previous = this.#entries.get(memberId);
    this.#entries.set(memberId, entry);
    if (previous !== undefined) this.revoke(previous.id).catch(() => undefined);
  }

  /**
   * Revoke the lease of `memberId` of `service`, if this instance holds it.
   * Revoking deletes the member key and every claim in one step; an unknown
   * lease counts as revoked, which makes this idempotent.
   */
  async revokeMember(service: string, memberId: string): Promise<void> {
    const entry = this.#entries.get(memberId);
    if (entry === undefined || entry.service !== service) return;
    await this.revoke(entry.id);
    if (this.#entries.get(memberId) === entry) this.#entries.delete(memberId);
  }

  /** Forget every lease, without revoking any (they expire after their TTL). */
  clear(): void {
    this.#entries.clear();
  }

  /** Grant a lease of `ttlSeconds` with an id of our choosing; returns the id. */
  async grant(ttlSeconds: number): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const id = newLeaseId();
      try {
        await this.#host.client.leaseClient.leaseGrant({ ID: id, TTL: ttlSeconds }, this.#host.deadline());
        return id;
      } catch (error) {
        // "lease already exists": a random collision, try another id.
        if (attempt >= 3 || !(error instanceof Error) || !/lease already exists/.test(error.message)) throw error;
      }
    }
  }

  /** Revoke a lease; an unknown lease counts as revoked. */
  async revoke(id: string): Promise<void> {
    try {
      await this.#host.client.leaseClient.leaseRevoke({ ID: id }, this.#host.deadline());
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
  async keepAliveOnce(id: string): Promise<number> {
    const options = this.#host.deadline();
    const attempts = this.#host.attempts;
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

  async #keepAliveStream(id: string, options: CallOptions): Promise<number> {
    const stream = await this.#host.client.leaseClient.leaseKeepAlive(options);
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
   * Time each member's lease has left, by etcd's clock, in whole seconds (etcd's
   * lease granularity) as ms: one range read of the member keys, then one
   * `LeaseTimeToLive` per member.
   */
  async times(keys: ServiceKeys): Promise<Map<string, number>> {
    const { client } = this.#host;
    const res = await client.getAll().prefix(`${keys.root}members/`).options(this.#host.deadline()).exec();
    const times = new Map<string, number>();
    await Promise.all(
      res.kvs.map(async (kv) => {
        const key = parseServiceKey(keys.root, kv.key.toString());
        if (key.kind !== 'member' || kv.lease === '0') return;
        const lease = await client.leaseClient.leaseTimeToLive({ ID: kv.lease }, this.#host.deadline());
        const seconds = Number(lease.TTL);
        if (Number.isFinite(seconds) && seconds >= 0) times.set(key.id, seconds * 1000);
      }),
    );
    return times;
  }
}
