/**
 * The Redis discovery backend: one {@link RedisDiscovery} is a command
 * connection (plus a subscriber connection once somebody watches) to one Redis
 * server. Every operation is one Lua script from `./lua` that first reaps
 * expired members by the server's clock, so correctness never depends on
 * client clocks or on somebody running a cleanup job. The watch machinery
 * lives in `watch.ts`, the parsing of replies and messages in `records.ts`.
 *
 * @module
 */

import {
  type ClaimBatch,
  type ClaimRef,
  type ClaimResult,
  type Discovery,
  type DiscoveryListener,
  DiscoveryUnavailableError,
  type EnsureGroupOptions,
  type GroupSettings,
  InvalidOptionsError,
  type InvalidRecord,
  LeaseExpiredError,
  type MemberInfo,
  type Registration,
  type RenewResult,
  ServiceRunningError,
  type Snapshot,
  type StoredGroup,
} from '@shardwork/core';
import { encodeMemberRecord } from '@shardwork/core/backend';
import { type RedisServiceKeys, serviceKeys } from './keys.js';
import { RedisConnection } from './kit/connection.js';
import { type CompiledRedisOptions, compileOptions, type RedisDiscoveryOptions } from './options.js';
import {
  parseClaimBatch,
  parseForget,
  parsePositiveInteger,
  parseReap,
  parseReleaseBatch,
  parseRenew,
  parseSnapshot,
  parseStoredGroup,
  UnexpectedReplyError,
} from './records.js';
import { type ScriptName, script } from './scripts.js';
import { ServiceWatches } from './watch.js';

/**
 * Most shards one script call claims or releases; a larger batch is split, so
 * that one script never blocks Redis for long (each chunk is one revision and
 * one message).
 */
export const MAX_BATCH = 1000;

function checkPositive(option: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidOptionsError(option, value, what);
  }
  return value;
}

function checkShard(shard: unknown): string {
  if (typeof shard !== 'number' || !Number.isSafeInteger(shard) || shard < 0) {
    throw new InvalidOptionsError('shard', shard, 'an integer >= 0');
  }
  return String(shard);
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += MAX_BATCH) out.push(items.slice(i, i + MAX_BATCH));
  return out;
}

/**
 * A {@link Discovery} backed by Redis (standalone, or Sentinel through ioredis
 * options; the key layout is Cluster compatible, an ioredis `Cluster` client is not supported yet).
 *
 * ```ts
 * const discovery = new RedisDiscovery({ url: 'redis://127.0.0.1:6379/0?prefix=sw:' });
 * await discovery.ensureGroup('billing-sync', { shardCount: 8, leaseTtlMs: 10_000 });
 * ```
 */
export class RedisDiscovery implements Discovery {
  /** Backend kind for messages. */
  readonly kind = 'redis';
  readonly #options: CompiledRedisOptions;
  readonly #connection: RedisConnection;
  readonly #watches: ServiceWatches;
  /** Longest lease TTL registered here, per service: how long a heartbeat reply stands in for a poll. */
  readonly #leaseTtls = new Map<string, number>();
  #closed = false;

  constructor(options: RedisDiscoveryOptions = {}) {
    this.#options = compileOptions(options);
    this.#connection = new RedisConnection(this.#options, (detail, cause) => this.#unavailable(detail, cause));
    this.#watches = new ServiceWatches(
      {
        channel: (service) => this.keys(service).events,
        reap: async (service) => parseReap(await this.#run('reap', this.keys(service), [])),
        subscriber: () => this.#connection.subscriber(),
      },
      { pollIntervalMs: this.#options.pollIntervalMs },
    );
  }

  /** Key prefix in use. */
  get prefix(): string {
    return this.#options.prefix;
  }

  /** Names of the keys and the channel of `service` (for tooling and tests). */
  keys(service: string): RedisServiceKeys {
    return serviceKeys(this.#options.prefix, service);
  }

  #unavailable(detail: string, cause?: unknown): DiscoveryUnavailableError {
    return new DiscoveryUnavailableError('redis', `${this.#options.target}: ${detail}`, cause);
  }

  /** Run one script for `service`, bounded by `commandTimeoutMs`, with errors mapped to the contract. */
  #run(name: ScriptName, keys: RedisServiceKeys, args: readonly (string | number)[]): Promise<unknown> {
    const loaded = script(name); // a missing .lua file is a packaging bug, not an outage: let it through
    return this.#connection.run(loaded, keys.all, [keys.events, ...args]);
  }

  async ensureGroup(service: string, group: GroupSettings, options: EnsureGroupOptions = {}): Promise<StoredGroup> {
    const shardCount = checkPositive('shards', group?.shardCount, 'a positive integer');
    const leaseTtlMs = checkPositive('leaseTtlMs', group?.leaseTtlMs, 'a whole number of milliseconds >= 1');
    const keys = this.keys(service);
    const replace = options.replaceInvalid === true ? '1' : '0';
    const reply = await this.#run('ensure-group', keys, [String(shardCount), String(leaseTtlMs), replace]);
    return parseStoredGroup(keys, reply, { shardCount, leaseTtlMs });
  }

  async register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    checkPositive('ttlMs', ttlMs, 'a whole number of milliseconds >= 1');
    if (typeof member?.id !== 'string' || member.id === '') {
      throw new InvalidOptionsError('member.id', member?.id, 'a non-empty string');
    }
    const keys = this.keys(service);
    // The script prepends ttlMs and joinSeq to the record.
    const reply = await this.#run('register', keys, [member.id, String(ttlMs), encodeMemberRecord(member)]);
    const joinSeq = parsePositiveInteger(reply);
    if (joinSeq === undefined) throw new UnexpectedReplyError('register', reply);
    this.#leaseTtls.set(service, Math.max(ttlMs, this.#leaseTtls.get(service) ?? 0));
    return { joinSeq };
  }

  /**
   * One script: renew the lease, and check that each claim of `held` still
   * reads `<member>|<token>` (one HGET each); those that do not are returned
   * as lost, and announced as a hint so that every watcher re-lists.
   */
  async renew(service: string, memberId: string, held: readonly ClaimRef[] = []): Promise<RenewResult> {
    const pairs = held.flatMap(({ shard, token }) => {
      if (!Number.isSafeInteger(token) || token < 1)
        throw new InvalidOptionsError('token', token, 'a positive integer');
      return [checkShard(shard), String(token)];
    });
    const { renewed, probe, lost } = parseRenew(await this.#run('renew', this.keys(service), [memberId, ...pairs]));
    if (!renewed) throw new LeaseExpiredError(memberId);
    // While heartbeats keep coming, their replies replace the watch's poll.
    const window = Math.max(this.#options.pollIntervalMs, this.#leaseTtls.get(service) ?? 0);
    this.#watches.observeRenew(service, probe, window);
    return { lost };
  }

  async unregister(service: string, memberId: string): Promise<void> {
    await this.#run('unregister', this.keys(service), [memberId]);
  }

  /** One script (`forget.lua`): refuse while a member lives, else delete the service's seven keys. */
  async forgetService(service: string): Promise<boolean> {
    const outcome = parseForget(await this.#run('forget', this.keys(service), []));
    if (outcome.live !== undefined) throw new ServiceRunningError(service, outcome.live);
    return outcome.forgotten;
  }

  async drain(service: string, memberId: string): Promise<void> {
    const reply = await this.#run('drain', this.keys(service), [memberId]);
    if (reply === 0) throw new LeaseExpiredError(memberId);
    if (reply !== 1) throw new UnexpectedReplyError('drain', reply);
  }

  async snapshot(service: string): Promise<Snapshot> {
    const keys = this.keys(service);
    // A listing taken before this connection's subscription is live would miss
    // the changes in between and need a second one: wait for it (bounded).
    await this.#watches.whenLive(service, this.#options.commandTimeoutMs);
    const { snapshot, nextExpiryMs } = parseSnapshot(keys, await this.#run('snapshot', keys, []));
    // Fresh expiry data for free: keep the expiry timer accurate.
    this.#watches.observeSnapshot(service, snapshot.revision, nextExpiryMs);
    return snapshot;
  }

  /**
   * Services under this prefix, from `SCAN` for their group records (a
   * cursor walk in batches, never a blocking `KEYS`), on every primary of a
   * cluster.
   */
  async services(): Promise<readonly string[]> {
    const prefix = this.#options.prefix;
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}:meta`;
    const names = new Set<string>();
    try {
      for (const redis of await this.#connection.primaries()) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          for (const key of keys) {
            const name = key.slice(prefix.length + 1, -'}:meta'.length);
            if (name !== '' && !name.includes('}')) names.add(name);
          }
        } while (cursor !== '0');
      }
    } catch (error) {
      throw this.#connection.mapError(error);
    }
    return [...names].sort();
  }

  async version(service: string): Promise<string> {
    return parseReap(await this.#run('reap', this.keys(service), [])).revision;
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    this.keys(service); // validates the name
    if (this.#closed) return () => undefined;
    return this.#watches.watch(service, listener);
  }

  async claimMany(service: string, memberId: string, shards: readonly number[]): Promise<ClaimBatch> {
    const args = shards.map(checkShard);
    const keys = this.keys(service);
    const results: ClaimResult[] = [];
    const repaired: InvalidRecord[] = [];
    for (const chunk of chunks(args)) {
      const batch = parseClaimBatch(await this.#run('claim', keys, [memberId, ...chunk]), chunk.length);
      if (batch === undefined) throw new LeaseExpiredError(memberId);
      results.push(...batch.results);
      repaired.push(...batch.repaired);
    }
    return { results, repaired };
  }

  async releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]): Promise<readonly boolean[]> {
    const args = claims.map(({ shard, token }) => {
      if (!Number.isSafeInteger(token)) throw new InvalidOptionsError('token', token, 'an integer');
      return [checkShard(shard), String(token)] as const;
    });
    const keys = this.keys(service);
    const results: boolean[] = [];
    for (const chunk of chunks(args)) {
      const reply = await this.#run('release', keys, [memberId, ...chunk.flat()]);
      results.push(...parseReleaseBatch(reply, chunk.length));
    }
    return results;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watches.close();
    await this.#connection.close();
  }

  /** `await using discovery = new RedisDiscovery(…)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Create a {@link RedisDiscovery} from a Redis URL (`redis://`, `rediss://`,
 * `redis+cluster://`, `redis+sentinel://` and their TLS forms); what
 * `createDiscovery()` of `@shardwork/core` calls for those protocols.
 *
 * @example `discoveryFromUrl('rediss://worker:s3cret@redis.internal:6380/2?prefix=billing:&ca=/etc/ssl/redis-ca.pem')`
 */
export function discoveryFromUrl(url: string): RedisDiscovery {
  return new RedisDiscovery({ url });
}
