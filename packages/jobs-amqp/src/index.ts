/**
 * The RabbitMQ job adapter for shardwork: durable quorum queues, publisher
 * confirms, manual acknowledgements, delays and retry backoff through TTL tier
 * queues (no plugin), a dead queue per job queue, reconnect and resubscribe,
 * periodic jobs enqueued once per tick by a single active consumer, and an
 * optional partitioned mode in which a core `Worker` hands partition queues to
 * the replicas for per-key order.
 *
 * ```ts
 * import { createJobQueue } from '@shardwork/jobs';
 * const jobs = createJobQueue('amqp://user:secret@127.0.0.1:5672/jobs', { concurrency: 20 });
 * jobs.register('send_email', async (args, ctx) => { … });
 * await jobs.start();
 * ```
 *
 * @module
 */

export type { BrokerQueueCount } from './adapter.js';
export { AmqpJobAdapter, jobAdapterFromUrl } from './adapter.js';
export { AmqpRefusedError } from './errors.js';
export type { AmqpJobOptions, CompiledAmqpJobOptions } from './options.js';
export { compileAmqpJobOptions, redactAmqpUrl } from './options.js';
export { Topology, tierFor } from './topology.js';
