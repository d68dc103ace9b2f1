/**
 * Partitioned consumption: the room every job adapter with partitions shares
 * (`redis://`, `amqp://` in partitioned mode, the PostgreSQL adapter to come).
 * A queue's partitions are the shards of a core `Worker`: the replicas of a
 * queue split its partitions between them, sticky and balanced, and the
 * owner of a partition runs the adapter's consumer for it as the shard's
 * `do`, fenced by the claim's token. This class owns that wiring: the
 * coordinator's discovery (given, by URL, or the adapter's fallback, and
 * closed with it when it made it), one `Worker` per consumed queue with the
 * words of a queue (core's `subject`), the queue's logger and the consumers'
 * handler names in their member record, and a start that resolves once each
 * queue is consumed, awaited on core (`Worker.settled()`), not polled.
 *
 * @module
 */

import {
  createDiscovery,
  type Discovery,
  InvalidOptionsError,
  type InvalidRecordError,
  type Logger,
  type ShardContext,
  Worker,
} from '@shardwork/core';
import { settlesWithin } from '@shardwork/core/backend';

/** What an adapter gives {@link PartitionedConsumption}. */
export interface PartitionedOptions {
  /** Adapter kind, for messages: `redis`, `amqp`. */
  readonly adapter: string;
  /** Partitions per queue: the shards of each queue's worker. */
  readonly partitions: number;
  readonly leaseTtlMs: number;
  readonly revokeTimeoutMs: number;
  /**
   * Where the partition owners coordinate: a discovery URL (made here and
   * closed with this), an instance (the caller's, never closed here), or
   * `undefined` for {@link PartitionedOptions.fallback}.
   */
  readonly discovery: string | Discovery | undefined;
  /** The discovery to make when none is given (Redis: the store's own server); without it one is required. */
  readonly fallback?: () => Discovery;
  /** The queue's logger: the workers' own lines go there. */
  readonly logger: Logger;
  /** The coordinator's service of a queue. @defaultValue the queue name */
  readonly service?: (queue: string) => string;
  /** Labels of every consumer's member record (e.g. the handler names it runs). */
  readonly labels?: Readonly<Record<string, string>>;
  /** The partition consumer: the `do` of a queue's worker for one partition, until the partition is handed over. */
  readonly consume: (queue: string, ctx: ShardContext) => Promise<void>;
  /** An infrastructure error of a worker. */
  readonly onError: (error: unknown) => void;
  /** A garbage coordinator record a worker skipped or repaired. */
  readonly onInvalidRecord: (event: { readonly error: InvalidRecordError; readonly repaired: boolean }) => void;
}

/** See the module documentation. */
export class PartitionedConsumption {
  readonly #o: PartitionedOptions;
  readonly #workers = new Map<string, Worker>();
  #discovery: Promise<Discovery> | undefined;
  #owned = false;

  constructor(options: PartitionedOptions) {
    this.#o = options;
  }

  /** The worker of each consumed queue (empty before {@link PartitionedConsumption.start}). */
  get workers(): ReadonlyMap<string, Worker> {
    return this.#workers;
  }

  /** The coordinator's discovery, made on first use (also by admin reads, which need no worker). */
  coordination(): Promise<Discovery> {
    this.#discovery ??= (async () => {
      const d = this.#o.discovery;
      if (typeof d === 'object') return d;
      if (typeof d === 'string') {
        this.#owned = true;
        return createDiscovery(d);
      }
      if (this.#o.fallback === undefined) {
        throw new InvalidOptionsError(
          'discovery',
          d,
          `a discovery URL or instance for the ${this.#o.adapter} adapter's partitions`,
        );
      }
      this.#owned = true;
      return this.#o.fallback();
    })();
    return this.#discovery;
  }

  /**
   * Start one worker per queue and resolve once each consumes: it owns
   * partitions or stands by (or `deadline`, ms since the epoch, passed: the
   * workers carry on and take partitions as they come free).
   */
  async start(queues: readonly string[], deadline: number): Promise<void> {
    const o = this.#o;
    const discovery = await this.coordination();
    for (const queue of queues) {
      const worker = new Worker({
        service: o.service?.(queue) ?? queue,
        shards: o.partitions,
        discovery,
        leaseTtlMs: o.leaseTtlMs,
        revokeTimeoutMs: o.revokeTimeoutMs,
        startTimeoutMs: Math.max(0, deadline - Date.now()),
        retry: { initialIntervalMs: 200, maximumIntervalMs: 2000 },
        ...(o.labels === undefined ? {} : { labels: o.labels }),
        logger: o.logger,
        // Core's messages speak of this queue and its partitions, and name the adapter's consumer, not user code.
        subject: {
          kind: 'queue',
          name: queue,
          unit: 'partition',
          member: 'producer and consumer',
          countOption: 'partitions',
          handler: (p) => `the ${o.adapter} job adapter's consumer of partition ${p} of queue "${queue}"`,
          revokeTimeoutAdvice:
            'Its running jobs were put back and run again under the next owner; a job handler that ignores ctx.signal keeps its slot until it returns.',
        },
        handler: { do: (ctx) => o.consume(queue, ctx) },
      });
      worker.on('error', ({ error }) => o.onError(error));
      worker.on('record:invalid', (event) => o.onInvalidRecord(event));
      this.#workers.set(queue, worker);
      await worker.start();
    }
    const settled = Promise.all([...this.#workers.values()].map((w) => w.settled().catch(() => undefined)));
    await settlesWithin(settled, Math.max(0, deadline - Date.now()));
  }

  /** Stop every worker: each hands its partitions over (its consumers end). */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.#workers.values()].map((w) => w.stop().catch((error: unknown) => this.#o.onError(error))),
    );
  }

  /** Stop, and close the discovery if it was made here. Idempotent. */
  async close(): Promise<void> {
    await this.stop();
    const made = this.#owned ? this.#discovery : undefined;
    this.#owned = false;
    if (made !== undefined) await (await made.catch(() => undefined))?.close().catch(() => undefined);
  }
}
