/**
 * Enqueueing on Redis, the producer's side of {@link RedisJobAdapter}: a
 * batch's records grouped by queue, one enqueue.lua call per queue, retried
 * while Redis is unreachable for up to `enqueueTimeoutMs` (enqueue.lua
 * remembers each call, so a retry never adds a job twice), then
 * `job:unhandled` for the jobs that no live consumer of their queue runs.
 *
 * @module
 */

import { retrying } from '@shardwork/core/backend';
import {
  type AdapterRuntime,
  type EnqueueResult,
  type JobRecord,
  QueueUnavailableError,
  refOf,
} from '@shardwork/jobs/adapter';
import { nanoid } from 'nanoid';
import type { ConsumerDirectory } from './consumers.js';
import { partitionOf } from './keys.js';
import type { QueueRegistry } from './queues.js';
import { enqueueFields } from './records.js';
import type { QueueStore } from './store.js';

/** What {@link RedisJobProducer} needs from its adapter. */
export interface ProducerHost {
  readonly registry: QueueRegistry;
  readonly directory: ConsumerDirectory;
  /** Partitions per queue. */
  readonly partitions: number;
  readonly enqueueTimeoutMs: number;
  /** Aborts when the adapter closes. */
  readonly closed: AbortSignal;
  store(queue: string): QueueStore;
  runtime(): AdapterRuntime;
  reportError(error: unknown): void;
}

/** The partition of a job: its key's, or any for a keyless job. */
export function jobPartition(record: JobRecord, partitions: number): number {
  return record.key === undefined ? Math.floor(Math.random() * partitions) : partitionOf(record.key, partitions);
}

/** See the module documentation. */
export class RedisJobProducer {
  readonly #host: ProducerHost;

  constructor(host: ProducerHost) {
    this.#host = host;
  }

  async enqueue(records: readonly JobRecord[]): Promise<EnqueueResult[]> {
    const host = this.#host;
    const byQueue = new Map<string, number[]>();
    records.forEach((r, i) => {
      const list = byQueue.get(r.queue) ?? [];
      list.push(i);
      byQueue.set(r.queue, list);
    });
    const results: EnqueueResult[] = new Array(records.length);
    for (const [queue, indexes] of byQueue) {
      // Remembered by Redis a while longer than we may retry it (see enqueue.lua).
      const args: (string | number)[] = [
        indexes.length,
        Math.max(1000, host.enqueueTimeoutMs * 2),
        host.runtime().options.idempotencyWindowMs,
        nanoid(),
      ];
      for (const i of indexes) {
        const record = records[i] as JobRecord;
        args.push(...enqueueFields(record, jobPartition(record, host.partitions)));
      }
      const reply = await this.#retryUnavailable(async () => {
        await host.registry.remember(queue);
        return host.store(queue).call('enqueue', args);
      });
      const outcomes = reply[0] as string[];
      indexes.forEach((i, j) => {
        const holder = outcomes[j];
        const record = records[i] as JobRecord;
        results[i] =
          holder === '' || holder === undefined ? { id: record.id, duplicate: false } : { id: holder, duplicate: true };
      });
    }
    this.#reportUnhandled(records);
    return results;
  }

  /** Jobs for handlers that no live consumer of their queue runs: `job:unhandled`, from a cached view. */
  #reportUnhandled(records: readonly JobRecord[]): void {
    const rt = this.#host.runtime();
    // A refresh that a stop() cut short (a CLI that performs once and exits) is no error.
    const unhandled = this.#host.directory.unhandled(records, (error) => {
      if (!this.#host.closed.aborted) this.#host.reportError(error);
    });
    for (const { queue, handler } of unhandled) {
      const record = records.find((r) => r.queue === queue && r.handler === handler) as JobRecord;
      rt.emit('job:unhandled', {
        job: refOf(record),
        reason: `no live consumer of queue "${queue}" registers handler "${handler}": its jobs wait until one does`,
      });
    }
  }

  /**
   * Retry a call while Redis is unreachable, for at most `enqueueTimeoutMs`,
   * then reject with the last error; ambiguous if any attempt may have run
   * (the call is remembered by enqueue.lua, so a retry never adds twice).
   */
  async #retryUnavailable<T>(call: () => Promise<T>): Promise<T> {
    const { enqueueTimeoutMs } = this.#host;
    let ambiguous = false;
    return retrying(() => call(), {
      retryable: (error) => error instanceof QueueUnavailableError,
      backoff: { initialMs: 50, maxMs: 1000 },
      deadlineMs: enqueueTimeoutMs,
      onRetry: (error, { attempt, delayMs }) => {
        ambiguous ||= (error as QueueUnavailableError).ambiguous;
        this.#host
          .runtime()
          .options.logger.debug(
            { scope: 'jobs', attempt, error },
            `perform: ${(error as Error).message}; trying again in ${delayMs} ms (for up to ${enqueueTimeoutMs} ms in all)`,
          );
      },
      // An earlier try may have stored the job even when the last one surely did not.
      giveUp: (error) => {
        const last = error as QueueUnavailableError;
        return ambiguous && !last.ambiguous
          ? new QueueUnavailableError(
              'redis',
              `${last.message.replace(/^Job queue redis unavailable: /, '')}; an earlier try got no reply`,
              last,
              true,
            )
          : last;
      },
    });
  }
}
