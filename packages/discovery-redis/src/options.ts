/**
 * Options of {@link RedisDiscovery} and their compiled form: the connection
 * half is the kit's ({@link compileConnection}); the discovery adds its key
 * prefix and its revision poll. Everything after {@link compileOptions} reads
 * only {@link CompiledRedisOptions}.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import {
  type CompiledRedisConnection,
  compileConnection,
  type RedisConnectionOptions,
} from './kit/connection-options.js';
import type { RedisUrlParams } from './kit/url.js';

export type { RedisClient, RedisTlsOptions } from './kit/connection-options.js';

/** Options of {@link RedisDiscovery}. Give at most one of `url`/`redis` (they combine) or `client`. */
export interface RedisDiscoveryOptions extends RedisConnectionOptions {
  /**
   * Prefix of every key and channel.
   * @defaultValue `"sw:"`
   */
  readonly prefix?: string;
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
export interface CompiledRedisOptions extends CompiledRedisConnection {
  readonly prefix: string;
  readonly pollIntervalMs: number;
}

const DEFAULTS = { prefix: 'sw:', commandTimeoutMs: 1000, connectTimeoutMs: 2000, pollIntervalMs: 2000 } as const;

/** Every option of {@link RedisDiscoveryOptions}: any other is a typo, refused. */
const KNOWN = new Set([
  'url',
  'redis',
  'client',
  'clusterNodes',
  'tls',
  'syncReplicas',
  'username',
  'password',
  'db',
  'commandTimeoutMs',
  'connectTimeoutMs',
  'prefix',
  'pollIntervalMs',
]);

/**
 * Validate options and fill defaults; every later step reads only the result.
 * @throws InvalidOptionsError on the first option that is wrong.
 */
export function compileOptions(options: RedisDiscoveryOptions, urlParams?: RedisUrlParams): CompiledRedisOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      // Its value is not shown: a misspelt password option would be.
      throw new InvalidOptionsError(
        key,
        `(a ${typeof (options as Record<string, unknown>)[key]})`,
        `a known option (${[...KNOWN].join(', ')})`,
      );
    }
  }
  const connection = compileConnection(options, DEFAULTS, urlParams);
  const prefix = options.prefix ?? connection.fromUrl?.prefix ?? DEFAULTS.prefix;
  if (typeof prefix !== 'string') throw new InvalidOptionsError('prefix', prefix, 'a string');
  const pollIntervalMs = options.pollIntervalMs ?? connection.fromUrl?.pollIntervalMs ?? DEFAULTS.pollIntervalMs;
  if (typeof pollIntervalMs !== 'number' || !Number.isSafeInteger(pollIntervalMs) || pollIntervalMs < 10) {
    throw new InvalidOptionsError('pollIntervalMs', pollIntervalMs, 'a whole number of milliseconds >= 10');
  }
  return { ...connection, prefix, pollIntervalMs };
}
