/**
 * The Redis kit: the plumbing that `@shardwork/discovery-redis` and
 * `@shardwork/jobs-redis` share, for authors of shardwork's Redis packages,
 * not for applications (they use `RedisDiscovery`, or the job adapter by URL):
 * URL parsing, the connection half of the options with TLS from PEM files, one
 * fail-fast connection with error mapping and a subscriber, and the Lua
 * script loader. Internal: its API may change with any release.
 *
 * @module
 */

export type { UnavailableFactory } from './connection.js';
export { RedisConnection, redisRefusal } from './connection.js';
export type {
  CompiledRedisConnection,
  ConnectionDefaults,
  RedisClient,
  RedisConnectionOptions,
  RedisTlsOptions,
} from './connection-options.js';
export { compileConnection } from './connection-options.js';
export { FAIL_FAST, reconnectDelay, TRANSIENT_REPLY } from './fail-fast.js';
export type { LoadedScript, LuaScriptsOptions } from './lua.js';
export { LuaScripts, runScript } from './lua.js';
export type { ParsedRedisUrl, RedisNode, RedisTopology, RedisUrlParams } from './url.js';
export { parseRedisUrl, REDIS_SCHEMES, redactUrl } from './url.js';
