/**
 * Options of {@link RedisDiscovery} and their compiled form: one
 * {@link compileOptions} validates, fills defaults and builds the fail-fast
 * ioredis options; everything after it reads only {@link CompiledRedisOptions}.
 *
 * @module
 */

import type { ConnectionOptions } from 'node:tls';
import { InvalidOptionsError } from '@shardwork/core';
import type { Redis, RedisOptions } from 'ioredis';
import { reconnectDelay } from './connection.js';
import { parseRedisUrl, redactUrl } from './url.js';

/** Options of {@link RedisDiscovery}. Give at most one of `url`/`redis` (they combine) or `client`. */
export interface RedisDiscoveryOptions {
  /**
   * `redis://[[username][:password]@]host[:port][/db][?prefix=…]`, or `rediss://…`
   * for TLS. The query may also set `commandTimeoutMs`, `connectTimeoutMs` and
   * `pollIntervalMs`; explicit options win over the URL.
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
   * An existing ioredis connection to use for commands. It is not closed by
   * {@link RedisDiscovery.close}, and its own settings apply: for fail-fast
   * behaviour create it with `enableOfflineQueue: false` and
   * `maxRetriesPerRequest: 0`. Watching opens a `duplicate()` of it.
   * @defaultValue none: a connection is created from `url`/`redis`
   */
  readonly client?: Redis;
  /**
   * Prefix of every key and channel.
   * @defaultValue `"sw:"`
   */
  readonly prefix?: string;
  /**
   * TLS: `true` or Node TLS options (`ca`, `cert`, `key`, `servername`, …).
   * A `rediss://` URL turns it on as well.
   * @defaultValue `false` (`true` for `rediss://`)
   */
  readonly tls?: boolean | ConnectionOptions;
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
   * `DiscoveryUnavailableError` and a connection that stays silent that long is
   * replaced. Keep it below a third of the lease TTL so a slow heartbeat fails
   * while a retry can still succeed. (A heartbeat that reaches Redis after the
   * lease ran out still fails there: the scripts check expiry by server time.)
   * @defaultValue 1000
   */
  readonly commandTimeoutMs?: number;
  /**
   * Longest wait for a connection before a call rejects with
   * `DiscoveryUnavailableError`. A refused connection fails at once.
   * @defaultValue 2000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How often a watched service's revision is polled, to cover lost pub/sub
   * messages, by a connection that watches the service without heartbeating
   * one of its members. A connection that does heartbeat one sends no poll:
   * each heartbeat's reply carries the revision and the next lease expiry.
   * Expiry of a watched member is detected by a timer at its expiry
   * independently of this.
   * @defaultValue 2000
   */
  readonly pollIntervalMs?: number;
}

/** {@link RedisDiscoveryOptions} validated, defaults filled. */
export interface CompiledRedisOptions {
  /** Options for a connection this instance owns, or the caller's client. */
  readonly connection:
    | { readonly kind: 'owned'; readonly options: RedisOptions }
    | { readonly kind: 'external'; readonly client: Redis };
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly pollIntervalMs: number;
  /** Where we connect, without secrets, for messages. */
  readonly target: string;
}

const DEFAULTS = { prefix: 'sw:', commandTimeoutMs: 1000, connectTimeoutMs: 2000, pollIntervalMs: 2000 } as const;

function checkDuration(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionsError(option, value, `a whole number of milliseconds >= ${min}`);
  }
  return value;
}

/**
 * Validate options and fill defaults; every later step reads only the result.
 * @throws InvalidOptionsError on the first option that is wrong.
 */
export function compileOptions(options: RedisDiscoveryOptions): CompiledRedisOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('options', options, 'an object');
  }
  const { client } = options;
  if (client !== undefined) {
    const clash = (['url', 'redis', 'tls', 'username', 'password', 'db'] as const).find(
      (k) => options[k] !== undefined,
    );
    if (clash !== undefined) {
      throw new InvalidOptionsError(clash, options[clash], 'not to be combined with "client" (configure the client)');
    }
    if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
      throw new InvalidOptionsError('client', client, 'an ioredis Redis instance');
    }
    if (client.options?.keyPrefix) {
      throw new InvalidOptionsError('client.options.keyPrefix', client.options.keyPrefix, 'unset (use "prefix")');
    }
  }
  if (options.url !== undefined && typeof options.url !== 'string') {
    throw new InvalidOptionsError('url', options.url, 'a redis:// or rediss:// URL');
  }
  const fromUrl = options.url === undefined ? undefined : parseRedisUrl(options.url);
  if (options.redis !== undefined && (typeof options.redis !== 'object' || options.redis === null)) {
    throw new InvalidOptionsError('redis', options.redis, 'an object of ioredis options');
  }
  if (options.redis?.keyPrefix) {
    throw new InvalidOptionsError('redis.keyPrefix', options.redis.keyPrefix, 'unset (use "prefix")');
  }

  const prefix = options.prefix ?? fromUrl?.prefix ?? DEFAULTS.prefix;
  if (typeof prefix !== 'string') throw new InvalidOptionsError('prefix', prefix, 'a string');
  const commandTimeoutMs = checkDuration(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? fromUrl?.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
    1,
  );
  const connectTimeoutMs = checkDuration(
    'connectTimeoutMs',
    options.connectTimeoutMs ?? fromUrl?.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    1,
  );
  const pollIntervalMs = checkDuration(
    'pollIntervalMs',
    options.pollIntervalMs ?? fromUrl?.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    10,
  );

  if (client !== undefined) {
    const { host, port } = client.options ?? {};
    return {
      connection: { kind: 'external', client },
      prefix,
      commandTimeoutMs,
      connectTimeoutMs,
      pollIntervalMs,
      target: `${host ?? '?'}:${port ?? '?'} (caller's client)`,
    };
  }

  if (options.tls !== undefined && typeof options.tls !== 'boolean' && typeof options.tls !== 'object') {
    throw new InvalidOptionsError('tls', options.tls, 'a boolean or TLS connection options');
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
  if (options.tls === true) merged.tls = { ...merged.tls };
  else if (options.tls === false) delete merged.tls;
  else if (options.tls !== undefined) merged.tls = { ...merged.tls, ...options.tls };

  const connectionOptions: RedisOptions = {
    retryStrategy: reconnectDelay,
    ...merged,
    // Fail fast: a call either reaches Redis now or fails; nothing is queued
    // while disconnected or resent after a reconnect (a late claim or heartbeat
    // would act on state the caller has already given up on).
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    connectTimeout: merged.connectTimeout ?? connectTimeoutMs,
    // A socket that sends nothing back for this long is dead or stalled: drop it and reconnect.
    socketTimeout: merged.socketTimeout ?? commandTimeoutMs,
  };
  const target =
    options.url !== undefined
      ? redactUrl(options.url)
      : `${merged.tls ? 'rediss' : 'redis'}://${merged.host ?? '127.0.0.1'}:${merged.port ?? 6379}/${merged.db ?? 0}`;
  return {
    connection: { kind: 'owned', options: connectionOptions },
    prefix,
    commandTimeoutMs,
    connectTimeoutMs,
    pollIntervalMs,
    target,
  };
}
