/**
 * The private test kit of the shardwork workspace (never published): real
 * servers on free loopback ports — redis-server (with TLS, persistence,
 * restarts), a Redis Cluster and a Sentinel set-up, etcd (clusters, TLS,
 * auth), a private RabbitMQ broker, a private PostgreSQL server (crash,
 * immediate restart, pause) — TLS certificates made with openssl, a
 * TCP proxy that cuts or stalls the connections through it, a listener that
 * accepts and never answers, child processes that run workspace sources, and
 * waits. Used by the packages' tests, `test/` and `bench/`.
 *
 * ```ts
 * import { startRedisServer, TcpProxy, until } from '@shardwork/testkit';
 * const redis = await startRedisServer({ aof: true });
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: redis.port });
 * ```
 *
 * @module
 */

export type { CertPair, TestCerts } from './certs.js';
export { makeCerts } from './certs.js';
export { onLines, SOURCE_FLAGS, spawnSource } from './child.js';
export type { EtcdClient, EtcdCluster, EtcdServerTls, StartEtcdOptions } from './etcd-server.js';
export { startEtcd } from './etcd-server.js';
export { freePort } from './ports.js';
export type { PostgresServerOptions, PostgresTestServer } from './postgres-server.js';
export { postgresBinDir, startPostgres } from './postgres-server.js';
export type { RabbitTestServer } from './rabbitmq-server.js';
export { startRabbitServer } from './rabbitmq-server.js';
export type { RedisClusterFailover, RedisClusterNode, RedisClusterOptions, RedisTestCluster } from './redis-cluster.js';
export { startRedisCluster } from './redis-cluster.js';
export type { RedisClusterRole } from './redis-cluster-topology.js';
export type {
  RedisSentinelFailover,
  RedisSentinelNode,
  RedisSentinelOptions,
  RedisTestSentinel,
} from './redis-sentinel.js';
export { startRedisSentinel } from './redis-sentinel.js';
export type { RedisCommandOptions, RedisServerOptions, RedisServerTls, RedisTestServer } from './redis-server.js';
export { redisCommand, startRedisServer } from './redis-server.js';
export type { SilentServer } from './silent-server.js';
export { startSilentServer } from './silent-server.js';
export { TcpProxy } from './tcp-proxy.js';
export { eventually, sleep, until } from './wait.js';
