/**
 * Redis discovery backend for shardwork: members with server-timed leases,
 * atomic claims with fencing tokens, and change notifications, each operation
 * one Lua script. Keys of a service share one hash tag (one slot per service).
 *
 * ```ts
 * import { Worker } from '@shardwork/core';
 * import { RedisDiscovery } from '@shardwork/discovery-redis';
 *
 * const worker = new Worker({
 *   service: 'billing-sync',
 *   shards: 8,
 *   discovery: new RedisDiscovery({ url: 'redis://127.0.0.1:6379/0?prefix=sw:' }),
 *   handler: { async do(ctx) { … } },
 * });
 * // or by URL, loaded on first use: discovery: 'redis://127.0.0.1:6379'
 * ```
 *
 * @module
 */

export type { UnavailableFactory } from './connection.js';
export { RedisConnection, reconnectDelay, redisRefusal, TRANSIENT_REPLY } from './connection.js';
export type { RedisServiceKeys } from './keys.js';
export { serviceKeys } from './keys.js';
export type { CompiledRedisOptions, RedisClient, RedisDiscoveryOptions, RedisTlsOptions } from './options.js';
export { compileOptions as compileRedisOptions } from './options.js';
export { discoveryFromUrl, MAX_BATCH, RedisDiscovery } from './redis-discovery.js';
export type { LoadedScript, LuaScriptsOptions } from './scripts.js';
export { LuaScripts, runScript } from './scripts.js';
export type { ParsedRedisUrl, RedisNode, RedisTopology, RedisUrlParams } from './url.js';
export { parseRedisUrl, REDIS_SCHEMES, redactUrl } from './url.js';
export type { WatchHost, WatchOptions } from './watch.js';
export { CATCH_UP_MS, EXPIRY_SLACK_MS, ServiceWatches } from './watch.js';
