/**
 * Options of the Redis job adapter and {@link compileRedisJobOptions}, the one
 * place that validates them (connection options through the discovery
 * package's compiler, so URLs, ACL users, TLS and fail-fast settings behave the
 * same in both packages).
 *
 * @module
 */

import { type Discovery, InvalidOptionsError, parseDiscoveryUrl } from '@shardwork/core';
import {
  type CompiledRedisConnection,
  compileConnection,
  type RedisConnectionOptions,
} from '@shardwork/discovery-redis/kit';
import { checkQueueList } from '@shardwork/jobs/adapter';

/**
 * Options of the Redis job adapter (`createJobQueue('redis://…', { adapter: { … } })` or `new RedisJobAdapter(…)`):
 * where Redis is and how to reach it (the Redis kit's connection options, as
 * for `@shardwork/discovery-redis`), and the adapter's own.
 */
export interface RedisJobOptions extends Omit<RedisConnectionOptions, 'url'> {
  /**
   * `redis[s]://[[user][:password]@]host[:port][/db]`, `redis[s]+cluster://h1:p1,h2:p2`
   * or `redis[s]+sentinel://s1:p1,s2:p2/<primary name>[/db]` (as for
   * `@shardwork/discovery-redis`); the query may carry `prefix`, `partitions`,
   * `leaseTtlMs`, `commandTimeoutMs`, `connectTimeoutMs`, `syncReplicas`, with
   * TLS `ca`, `cert`, `key` (PEM file paths), with Sentinel
   * `sentinelUsername`, `sentinelPassword`. Explicit options win over the URL.
   * @defaultValue `redis://127.0.0.1:6379`
   */
  readonly url?: string;
  /**
   * Prefix of every key and channel.
   * @defaultValue `"swj:"`
   */
  readonly prefix?: string;
  /**
   * Partitions per queue: the unit of ownership, fencing and per-key order.
   * Fixed per queue (stored by its first user; a different value is refused).
   * More partitions than replicas lets the load spread; replicas beyond the
   * partition count stand by.
   * @defaultValue 16
   */
  readonly partitions?: number;
  /**
   * Queues this process consumes.
   * @defaultValue the queues of the registered handlers and periodic jobs
   */
  readonly queues?: readonly string[];
  /**
   * Where the partition owners coordinate: a discovery URL or instance.
   * @defaultValue this Redis, under `<prefix>coord:`
   */
  readonly discovery?: string | Discovery;
  /**
   * Lease TTL of a consumer replica: a crashed replica's in-flight jobs run
   * again elsewhere about this long after the crash. Same on every replica.
   * @defaultValue 10000
   */
  readonly leaseTtlMs?: number;
  /**
   * How long a partition handed to another replica (a rebalance) lets its
   * running jobs finish before they are aborted and put back.
   * @defaultValue 10000
   */
  readonly revokeTimeoutMs?: number;
  /**
   * How long `start()` waits for Redis and for its first partitions.
   * @defaultValue 30000
   */
  readonly startTimeoutMs?: number;
  /**
   * How long `perform` retries while Redis is unreachable before it rejects
   * with `QueueUnavailableError`.
   * @defaultValue 5000
   */
  readonly enqueueTimeoutMs?: number;
  /**
   * Most jobs one fetch takes (also bounded by free `concurrency` slots).
   * @defaultValue 100
   */
  readonly batchSize?: number;
  /**
   * Jobs fetched ahead of free `concurrency` slots, so that the next batch is
   * on its way while the last one runs. They count as running (a crash puts
   * them back like running ones). `0` fetches only for free slots.
   * @defaultValue the queue's `concurrency`
   */
  readonly prefetch?: number;
  /**
   * Safety net: an idle partition re-checks this often even without a
   * wake-up message (covers a subscriber that died silently). Not a poll in
   * normal operation: work is fetched on notification and at due times.
   * @defaultValue 30000
   */
  readonly idleCheckMs?: number;
}

/** Options after {@link compileRedisJobOptions}. */
export interface CompiledRedisJobOptions {
  readonly connection: CompiledRedisConnection;
  readonly prefix: string;
  readonly partitions: number;
  readonly queues: readonly string[] | undefined;
  readonly discovery: string | Discovery | undefined;
  readonly leaseTtlMs: number;
  readonly revokeTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly enqueueTimeoutMs: number;
  readonly batchSize: number;
  /** `undefined`: the queue's concurrency. */
  readonly prefetch: number | undefined;
  readonly idleCheckMs: number;
  /** Where we connect, without secrets. */
  readonly target: string;
}

const OWN_URL_PARAMS = ['prefix', 'partitions', 'leaseTtlMs'] as const;

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(option, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

/** Validate options and fill defaults. Throws `InvalidOptionsError` naming the option. */
export function compileRedisJobOptions(options: RedisJobOptions): CompiledRedisJobOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  // Our own query parameters are read here; the discovery package parses the rest of the same URL
  // (so that an error echoes the URL as given) and lists ours among the allowed ones.
  const url = options.url;
  const fromUrl: Partial<Record<(typeof OWN_URL_PARAMS)[number], string>> = {};
  if (url !== undefined) {
    if (typeof url !== 'string') throw new InvalidOptionsError('url', url, 'a redis:// or rediss:// URL');
    // The query is taken apart by hand: `new URL` cannot read a list of hosts (`redis+cluster://h1:p1,h2:p2`).
    const q = url.indexOf('?');
    if (q !== -1) {
      const hash = url.indexOf('#', q);
      const params = new URLSearchParams(url.slice(q + 1, hash === -1 ? undefined : hash));
      for (const name of OWN_URL_PARAMS) {
        const value = params.get(name);
        if (value !== null) fromUrl[name] = value;
      }
    }
  }
  const numberFromUrl = (name: 'partitions' | 'leaseTtlMs'): number | undefined => {
    const raw = fromUrl[name];
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw)) throw new InvalidOptionsError(name, raw, 'a whole number in the URL');
    return Number(raw);
  };
  const connection = compileConnection(
    options,
    { commandTimeoutMs: 2000, connectTimeoutMs: 2000 },
    // pollIntervalMs is the discovery backend's: jobs wait on wake-up messages and due times instead.
    { own: OWN_URL_PARAMS.filter((p) => p !== 'prefix'), without: ['pollIntervalMs'] },
  );
  const prefix = options.prefix ?? fromUrl.prefix ?? 'swj:';
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new InvalidOptionsError('prefix', prefix, 'a string without "{" or "}" (the queue name is the hash tag)');
  }
  const queues = checkQueueList(options.queues);
  const discovery = options.discovery;
  if (typeof discovery === 'string') parseDiscoveryUrl(discovery);
  else if (discovery !== undefined && typeof (discovery as Discovery)?.snapshot !== 'function') {
    throw new InvalidOptionsError('discovery', discovery, 'a discovery URL or a Discovery instance');
  }
  return {
    connection,
    prefix,
    partitions: integer('partitions', options.partitions ?? numberFromUrl('partitions') ?? 16, 1, 4096),
    queues,
    discovery,
    leaseTtlMs: integer('leaseTtlMs', options.leaseTtlMs ?? numberFromUrl('leaseTtlMs') ?? 10_000, 500, 3_600_000),
    revokeTimeoutMs: integer('revokeTimeoutMs', options.revokeTimeoutMs ?? 10_000, 0, 3_600_000),
    startTimeoutMs: integer('startTimeoutMs', options.startTimeoutMs ?? 30_000, 0, 3_600_000),
    enqueueTimeoutMs: integer('enqueueTimeoutMs', options.enqueueTimeoutMs ?? 5000, 0, 3_600_000),
    batchSize: integer('batchSize', options.batchSize ?? 100, 1, 1000),
    prefetch: options.prefetch === undefined ? undefined : integer('prefetch', options.prefetch, 0, 100_000),
    idleCheckMs: integer('idleCheckMs', options.idleCheckMs ?? 30_000, 10, 3_600_000),
    target: connection.target,
  };
}
