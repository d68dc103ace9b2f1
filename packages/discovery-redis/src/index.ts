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
 * Authors of shardwork's Redis packages find the shared plumbing (URL,
 * connection, TLS, Lua loader) in `@shardwork/discovery-redis/kit`.
 *
 * @module
 */

export type { RedisClient, RedisNode, RedisTlsOptions } from './kit/index.js';
export type { RedisDiscoveryOptions } from './options.js';
export { discoveryFromUrl, RedisDiscovery } from './redis-discovery.js';
