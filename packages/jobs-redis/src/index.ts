/**
 * The Redis job adapter for shardwork: gocraft/work's feature set on Redis,
 * with each queue split into partitions that the coordinator hands out. The
 * owner of a partition is its only consumer, fenced by its claim's token: a
 * crashed replica's jobs run again within about one lease TTL, and a zombie's
 * completion is refused. Every state change is one Lua script using the
 * server's clock.
 *
 * ```ts
 * import { createJobQueue } from '@shardwork/jobs';
 * const jobs = createJobQueue('redis://127.0.0.1:6379?partitions=16', { concurrency: 50 });
 * jobs.register('send_email', async (args, ctx) => { ctx.assertOwned(); … });
 * await jobs.start();
 * ```
 *
 * @module
 */

export { jobAdapterFromUrl, RedisJobAdapter } from './adapter.js';
export { partitionOf, queueBase } from './keys.js';
export type { CompiledRedisJobOptions, RedisJobOptions } from './options.js';
export { compileRedisJobOptions } from './options.js';
