/**
 * The connection half of the options of every shardwork Redis package: where
 * Redis is (a URL, ioredis options, a client of the caller's, cluster seed
 * nodes), credentials, TLS from PEM files, `syncReplicas` and the two
 * timeouts, compiled once into fail-fast ioredis options. The discovery
 * backend and the job adapter each add their own options on top.
 *
 * @module
 */

import type { ConnectionOptions } from 'node:tls';
import { InvalidOptionsError } from '@shardwork/core';
import { readTlsFiles } from '@shardwork/core/backend';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { FAIL_FAST, reconnectDelay } from './fail-fast.js';
import { type ParsedRedisUrl, parseRedisUrl, type RedisNode, type RedisUrlParams, redactUrl } from './url.js';

/** An ioredis connection: one server (or Sentinel-managed), or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * TLS options: Node's (`ca`, `cert`, `key` as PEM contents, `servername`, …),
 * or the paths of PEM files in `caFile`, `certFile` and `keyFile`, which are
 * read and checked (exists, is PEM, not expired, key matches) when the
 * options are compiled.
 */
export interface RedisTlsOptions extends ConnectionOptions {
  /** Path of the CA certificate(s) that sign the server's certificate. */
  readonly caFile?: string;
  /** Path of the client certificate, for servers with `tls-auth-clients yes`. Needs `keyFile`. */
  readonly certFile?: string;
  /** Path of the client certificate's private key. */
  readonly keyFile?: string;
}

/** Where Redis is and how to reach it. Give at most one of `url`/`redis` (they combine) or `client`. */
export interface RedisConnectionOptions {
  /**
   * Where Redis is, with its credentials:
   * - `redis://[[username][:password]@]host[:port][/db]`, or `rediss://…` for TLS;
   * - `redis+cluster://[[username][:password]@]h1:p1,h2:p2` (or `rediss+cluster://`): Redis Cluster;
   * - `redis+sentinel://[[username][:password]@]s1:26379,s2:26379/<primary name>[/db]`
   *   (or `rediss+sentinel://`): the primary that the sentinels name.
   *
   * User and password are percent-decoded. The query may set `prefix`,
   * `commandTimeoutMs`, `connectTimeoutMs`, `pollIntervalMs`, `syncReplicas`,
   * with TLS `ca`, `cert` and `key` (PEM file paths), with Sentinel
   * `sentinelUsername` and `sentinelPassword`; explicit options win over the URL.
   * @defaultValue `redis://127.0.0.1:6379` when neither `redis` nor `client` is given
   */
  readonly url?: string;
  /**
   * ioredis options (host, port, tls, sentinels, …), applied over what `url`
   * says. The fail-fast settings (`enableOfflineQueue: false`,
   * `maxRetriesPerRequest: 0`, no resending after a reconnect) are always
   * enforced; `keyPrefix` is rejected (use `prefix`).
   * @defaultValue `{}`
   */
  readonly redis?: RedisOptions;
  /**
   * An existing ioredis connection to use for commands: a `Redis` (one server
   * or Sentinel) or a `Cluster`. It is not closed by
   * the package's `close()`, and its own settings apply: for fail-fast
   * behaviour create it with `enableOfflineQueue: false` and
   * `maxRetriesPerRequest: 0`. Watching opens a `duplicate()` of it.
   * @defaultValue none: a connection is created from `url`/`redis`
   */
  readonly client?: RedisClient;
  /**
   * Seed nodes of a Redis Cluster (the option form of `redis+cluster://`);
   * `redis`, `tls`, `username` and `password` then apply to every node.
   * @defaultValue none: one server (or Sentinel), unless the URL names a cluster
   */
  readonly clusterNodes?: readonly RedisNode[];
  /**
   * TLS: `true` or {@link RedisTlsOptions} (Node's TLS options, or
   * `caFile`/`certFile`/`keyFile` paths). A TLS URL scheme turns it on as well.
   * @defaultValue `false` (`true` for `rediss://`)
   */
  readonly tls?: boolean | RedisTlsOptions;
  /**
   * Replicas that must have each write before it counts (`WAIT` after every
   * write, within `commandTimeoutMs`). With 0, a write acknowledged by a
   * primary that fails before replicating it is lost in a failover; with 1 or
   * more, a renewal, claim or enqueue that no replica has is reported as
   * failed, so nobody relies on it. Use it with Sentinel or Cluster
   * (see the README's production notes).
   * @defaultValue 0
   */
  readonly syncReplicas?: number;
  /**
   * ACL user name (overrides the URL's).
   * @defaultValue the URL's, else none (the `default` user)
   */
  readonly username?: string;
  /**
   * Password (overrides the URL's).
   * @defaultValue the URL's, else none
   */
  readonly password?: string;
  /**
   * Database number (overrides the URL's path).
   * @defaultValue the URL's, else 0
   */
  readonly db?: number;
  /**
   * Longest wait for the reply of one call; then it rejects with
   * the caller's unavailable error (`DiscoveryUnavailableError`, `QueueUnavailableError`) and a connection that stays silent that long is
   * replaced. Keep it below a third of the lease TTL so a slow heartbeat fails
   * while a retry can still succeed. (A heartbeat that reaches Redis after the
   * lease ran out still fails there: the scripts check expiry by server time.)
   * @defaultValue per package: 1000 for discovery, 2000 for jobs
   */
  readonly commandTimeoutMs?: number;
  /**
   * Longest wait for a connection before a call rejects with
   * the caller's unavailable error (`DiscoveryUnavailableError`, `QueueUnavailableError`). A refused connection fails at once.
   * @defaultValue 2000
   */
  readonly connectTimeoutMs?: number;
}

/** A package's defaults for the connection timeouts. */
export interface ConnectionDefaults {
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** {@link RedisConnectionOptions} validated, defaults filled. */
export interface CompiledRedisConnection {
  /** Options for a connection this instance owns, or the caller's client. */
  readonly connection:
    | { readonly kind: 'owned'; readonly options: RedisOptions }
    | { readonly kind: 'cluster'; readonly nodes: readonly RedisNode[]; readonly options: ClusterOptions }
    | { readonly kind: 'external'; readonly client: RedisClient };
  /** Replicas each write waits for (0: none). */
  readonly syncReplicas: number;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Where we connect, without secrets, for messages. */
  readonly target: string;
  /** What the URL said, for the package's own parameters (`prefix`, `pollIntervalMs`). */
  readonly fromUrl: ParsedRedisUrl | undefined;
}

function checkDuration(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionsError(option, value, `a whole number of milliseconds >= ${min}`);
  }
  return value;
}

/**
 * Validate the connection options and build the fail-fast ioredis options;
 * the URL's package-level parameters (`prefix`, `pollIntervalMs`) come back in
 * `fromUrl` for the caller to read.
 * @throws InvalidOptionsError on the first option that is wrong.
 */
export function compileConnection(
  options: RedisConnectionOptions,
  defaults: ConnectionDefaults,
  urlParams?: RedisUrlParams,
): CompiledRedisConnection {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('options', options, 'an object');
  }
  const { client } = options;
  if (client !== undefined) {
    const clash = (['url', 'redis', 'tls', 'username', 'password', 'db', 'clusterNodes'] as const).find(
      (k) => options[k] !== undefined,
    );
    if (clash !== undefined) {
      throw new InvalidOptionsError(clash, options[clash], 'not to be combined with "client" (configure the client)');
    }
    if (!(client instanceof Redis) && !(client instanceof Cluster)) {
      throw new InvalidOptionsError('client', client, 'an ioredis Redis or Cluster instance');
    }
    const keyPrefix = client instanceof Cluster ? client.options.keyPrefix : client.options.keyPrefix;
    if (keyPrefix) throw new InvalidOptionsError('client.options.keyPrefix', keyPrefix, 'unset (use "prefix")');
  }
  if (options.url !== undefined && typeof options.url !== 'string') {
    throw new InvalidOptionsError('url', options.url, 'a redis://, redis+cluster:// or redis+sentinel:// URL');
  }
  const fromUrl = options.url === undefined ? undefined : parseRedisUrl(options.url, urlParams);
  if (options.redis !== undefined && (typeof options.redis !== 'object' || options.redis === null)) {
    throw new InvalidOptionsError('redis', options.redis, 'an object of ioredis options');
  }
  if (options.redis?.keyPrefix) {
    throw new InvalidOptionsError('redis.keyPrefix', options.redis.keyPrefix, 'unset (use "prefix")');
  }

  const commandTimeoutMs = checkDuration(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? fromUrl?.commandTimeoutMs ?? defaults.commandTimeoutMs,
    1,
  );
  const connectTimeoutMs = checkDuration(
    'connectTimeoutMs',
    options.connectTimeoutMs ?? fromUrl?.connectTimeoutMs ?? defaults.connectTimeoutMs,
    1,
  );

  const syncReplicas = options.syncReplicas ?? fromUrl?.syncReplicas ?? 0;
  if (!Number.isSafeInteger(syncReplicas) || syncReplicas < 0 || syncReplicas > 16) {
    throw new InvalidOptionsError('syncReplicas', syncReplicas, 'a whole number of replicas from 0 to 16');
  }

  if (client !== undefined) {
    const first = client instanceof Cluster ? client.nodes()[0]?.options : client.options;
    const { host, port } = first ?? {};
    return {
      connection: { kind: 'external', client },
      syncReplicas,
      commandTimeoutMs,
      connectTimeoutMs,
      target: `${host ?? '?'}:${port ?? '?'} (caller's client)`,
      fromUrl,
    };
  }

  if (options.tls !== undefined && typeof options.tls !== 'boolean' && typeof options.tls !== 'object') {
    throw new InvalidOptionsError('tls', options.tls, 'a boolean or TLS connection options');
  }
  let tlsOption: boolean | ConnectionOptions | undefined = options.tls ?? undefined;
  if (typeof tlsOption === 'object' && tlsOption !== null) {
    const { caFile, certFile, keyFile, ...node } = tlsOption as RedisTlsOptions;
    const files = {
      ...(caFile === undefined ? {} : { ca: caFile }),
      ...(certFile === undefined ? {} : { cert: certFile }),
      ...(keyFile === undefined ? {} : { key: keyFile }),
    };
    tlsOption = {
      ...node,
      ...readTlsFiles('tls', files, { names: { ca: 'caFile', cert: 'certFile', key: 'keyFile' } }),
    };
  }
  for (const key of ['username', 'password'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'string') {
      throw new InvalidOptionsError(key, key === 'password' ? '***' : options[key], 'a string');
    }
  }
  if (options.db !== undefined && (!Number.isSafeInteger(options.db) || options.db < 0)) {
    throw new InvalidOptionsError('db', options.db, 'a non-negative integer');
  }

  const base: RedisOptions = fromUrl?.redis ?? (options.redis === undefined ? { host: '127.0.0.1', port: 6379 } : {});
  const merged: RedisOptions = { ...base, ...options.redis };
  if (options.username !== undefined) merged.username = options.username;
  if (options.password !== undefined) merged.password = options.password;
  if (options.db !== undefined) merged.db = options.db;
  if (tlsOption === true) merged.tls = { ...merged.tls };
  else if (tlsOption === false) delete merged.tls;
  else if (tlsOption !== undefined) {
    merged.tls = { ...merged.tls, ...tlsOption };
    if (merged.sentinels !== undefined && merged.sentinels !== null) {
      merged.enableTLSForSentinelMode = true;
      merged.sentinelTLS = { ...merged.sentinelTLS, ...tlsOption };
    }
  }
  const { clusterNodes } = options;
  if (clusterNodes !== undefined) {
    const valid =
      Array.isArray(clusterNodes) &&
      clusterNodes.length > 0 &&
      clusterNodes.every(
        (n: unknown) =>
          typeof (n as RedisNode)?.host === 'string' &&
          Number.isSafeInteger((n as RedisNode).port) &&
          (n as RedisNode).port > 0 &&
          (n as RedisNode).port < 65536,
      );
    if (!valid) throw new InvalidOptionsError('clusterNodes', clusterNodes, 'a non-empty array of { host, port }');
    if (fromUrl !== undefined && fromUrl.topology !== 'cluster') {
      throw new InvalidOptionsError('clusterNodes', clusterNodes, `not to be combined with a ${fromUrl.topology} URL`);
    }
    if (merged.sentinels)
      throw new InvalidOptionsError('clusterNodes', clusterNodes, 'not to be combined with sentinels');
  }
  const topology = clusterNodes !== undefined ? 'cluster' : (fromUrl?.topology ?? 'single');
  const nodes = clusterNodes ?? fromUrl?.nodes ?? [];
  if (topology === 'cluster' && (merged.db ?? 0) !== 0) {
    throw new InvalidOptionsError('db', merged.db, '0: a Redis Cluster has database 0 only');
  }

  const connectionOptions: RedisOptions = {
    retryStrategy: reconnectDelay,
    // A primary demoted to replica answers READONLY: reconnect (through Sentinel, to the new primary).
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
    // Sentinel: follow a failover the sentinels announce, also when the old primary stays up.
    ...(merged.sentinels ? { failoverDetector: true } : {}),
    ...merged,
    lazyConnect: true,
    ...FAIL_FAST,
    connectTimeout: merged.connectTimeout ?? connectTimeoutMs,
    // A socket that sends nothing back for this long is dead or stalled: drop it and reconnect.
    socketTimeout: merged.socketTimeout ?? commandTimeoutMs,
  };
  const target =
    options.url !== undefined
      ? redactUrl(options.url)
      : topology === 'cluster'
        ? `${merged.tls ? 'rediss' : 'redis'}+cluster://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
        : merged.sentinels
          ? `redis+sentinel://${merged.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${merged.name}`
          : `${merged.tls ? 'rediss' : 'redis'}://${merged.host ?? '127.0.0.1'}:${merged.port ?? 6379}/${merged.db ?? 0}`;
  const connection: CompiledRedisConnection['connection'] =
    topology === 'cluster'
      ? { kind: 'cluster', nodes, options: clusterOptions(connectionOptions, connectTimeoutMs) }
      : { kind: 'owned', options: connectionOptions };
  return { connection, syncReplicas, commandTimeoutMs, connectTimeoutMs, target, fromUrl };
}

/**
 * Cluster options that keep the fail-fast rules: the node connections get the
 * single-server options (credentials, TLS, timeouts, no queueing, no retries
 * per request); the cluster itself queues nothing while it is not ready and
 * follows redirections and failovers for at most the caller's command timeout.
 */
function clusterOptions(node: RedisOptions, connectTimeoutMs: number): ClusterOptions {
  const { host: _host, port: _port, db: _db, lazyConnect: _lazy, retryStrategy: _retry, ...redisOptions } = node;
  return {
    lazyConnect: true,
    enableOfflineQueue: FAIL_FAST.enableOfflineQueue,
    enableReadyCheck: true,
    clusterRetryStrategy: reconnectDelay,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    maxRedirections: 16,
    slotsRefreshTimeout: connectTimeoutMs,
    // Addresses that CLUSTER SLOTS announces are used as they are (no DNS).
    dnsLookup: (address, callback) => callback(null, address),
    redisOptions,
  };
}
