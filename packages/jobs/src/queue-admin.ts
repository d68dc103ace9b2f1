/**
 * The admin API of a job queue (stats, lists, the dead set, pauses, partitions
 * and throughput), apart from the hot path as BullMQ keeps its queue's reads
 * in `queue-getters.ts`. `JobQueue`'s methods, which carry the documentation,
 * call these: each checks its arguments before the adapter is loaded, then
 * asks the adapter, refusing with `UnsupportedFeatureError` what it cannot do.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import type {
  BulkOptions,
  JobAdapter,
  JobPage,
  JobStats,
  ListOptions,
  PartitionOwner,
  PauseOptions,
  QueueThroughput,
} from './adapter.js';
import { needs } from './follow.js';
import { JOB_STATES, type JobState } from './job.js';
import type { CompiledRegistration } from './options.js';
import { checkHandlerName, checkQueueName } from './record.js';

/** What the admin calls need of their queue. */
export interface QueueAdminHost {
  /** The adapter, created (and its package loaded) on first use. */
  readonly load: () => Promise<JobAdapter>;
  /** The handlers registered in this process. */
  readonly handlers: ReadonlyMap<string, CompiledRegistration>;
}

/** See the module documentation. */
export class QueueAdmin {
  readonly #host: QueueAdminHost;

  constructor(host: QueueAdminHost) {
    this.#host = host;
  }

  async stats(): Promise<JobStats> {
    return (await this.#host.load()).stats();
  }

  async list(state: JobState, options: ListOptions): Promise<JobPage> {
    if (!JOB_STATES.includes(state)) throw new InvalidOptionsError('state', state, `one of ${JOB_STATES.join(', ')}`);
    const offset = options.offset ?? 0;
    const limit = options.limit ?? 50;
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidOptionsError('offset', offset, 'an integer ≥ 0');
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new InvalidOptionsError('limit', limit, 'an integer in [1, 10000]');
    }
    return (await this.#host.load()).list(state, { ...options, offset, limit });
  }

  async retryDead(id: string | undefined, options: BulkOptions): Promise<number> {
    return (await this.#host.load()).retryDead(id, options);
  }

  async deleteDead(id: string | undefined, options: BulkOptions): Promise<number> {
    return (await this.#host.load()).deleteDead(id, options);
  }

  async partitions(): Promise<PartitionOwner[]> {
    const adapter = await this.#host.load();
    return adapter.partitions === undefined ? [] : adapter.partitions();
  }

  /** A handler registered here is paused without asking the adapter whether anything knows it. */
  async pause(handler: string, options: PauseOptions): Promise<void> {
    checkHandlerName(handler, 'handler');
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
    const adapter = await this.#host.load();
    await adapter.pause(handler, this.#host.handlers.has(handler) ? { force: true } : options);
  }

  async unpause(handler: string): Promise<void> {
    checkHandlerName(handler, 'handler');
    await (await this.#host.load()).unpause(handler);
  }

  async throughput(options: { readonly minutes?: number; readonly queue?: string }): Promise<QueueThroughput[]> {
    const minutes = options.minutes ?? 60;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 120) {
      throw new InvalidOptionsError('minutes', minutes, 'an integer in [1, 120]');
    }
    if (options.queue !== undefined) checkQueueName(options.queue, 'queue');
    return needs(
      await this.#host.load(),
      'throughput',
      'admin',
      'count completed jobs per minute',
    )(minutes, options.queue);
  }

  async pauseQueue(queue: string): Promise<void> {
    checkQueueName(queue, 'queue');
    await needs(await this.#host.load(), 'pauseQueue', 'pause', 'pause a queue')(queue);
  }

  async unpauseQueue(queue: string): Promise<void> {
    checkQueueName(queue, 'queue');
    await needs(await this.#host.load(), 'unpauseQueue', 'pause', 'pause a queue')(queue);
  }
}
