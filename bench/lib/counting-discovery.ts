/**
 * A {@link Discovery} that forwards every call to another one and counts it
 * per contract method, optionally reporting each successful lease renewal (the
 * worker emits no event for those, and the crash-failover lag is measured from
 * the last one).
 *
 * @module
 */

import type {
  ClaimBatch,
  ClaimRef,
  Discovery,
  DiscoveryListener,
  EnsureGroupOptions,
  GroupSettings,
  MemberInfo,
  Registration,
  Snapshot,
  StoredGroup,
} from '@shardwork/core';

/** Counts of calls per method, shared by all wrappers of one process. */
export type CallCounts = Record<string, number>;

/** Forwards to `inner`, counting calls into `counts`. */
export class CountingDiscovery implements Discovery {
  readonly kind: string;
  readonly #inner: Discovery;
  readonly #counts: CallCounts;
  readonly #onRenew: ((sentAt: number) => void) | undefined;
  readonly #now: () => number;

  constructor(inner: Discovery, counts: CallCounts, now: () => number, onRenew?: (sentAt: number) => void) {
    this.kind = inner.kind;
    this.#inner = inner;
    this.#counts = counts;
    this.#now = now;
    this.#onRenew = onRenew;
  }

  /** The wrapped connection. */
  get inner(): Discovery {
    return this.#inner;
  }

  #count(method: string): void {
    this.#counts[method] = (this.#counts[method] ?? 0) + 1;
  }

  ensureGroup(service: string, group: GroupSettings, options?: EnsureGroupOptions): Promise<StoredGroup> {
    this.#count('ensureGroup');
    return this.#inner.ensureGroup(service, group, options);
  }

  drain(service: string, memberId: string): Promise<void> {
    this.#count('drain');
    return this.#inner.drain(service, memberId);
  }

  version(service: string): Promise<string> {
    this.#count('version');
    return this.#inner.version(service);
  }

  claimMany(service: string, memberId: string, shards: readonly number[]): Promise<ClaimBatch> {
    this.#count('claimMany');
    return this.#inner.claimMany(service, memberId, shards);
  }

  releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]> {
    this.#count('releaseMany');
    return this.#inner.releaseMany(service, memberId, claims);
  }

  register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    this.#count('register');
    return this.#inner.register(service, member, ttlMs);
  }

  async renew(service: string, memberId: string): Promise<void> {
    this.#count('renew');
    const sentAt = this.#now();
    await this.#inner.renew(service, memberId);
    this.#onRenew?.(sentAt);
  }

  unregister(service: string, memberId: string): Promise<void> {
    this.#count('unregister');
    return this.#inner.unregister(service, memberId);
  }

  snapshot(service: string): Promise<Snapshot> {
    this.#count('snapshot');
    return this.#inner.snapshot(service);
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    this.#count('watch');
    return this.#inner.watch(service, listener);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
