/**
 * {@link RedisJobAdapter}, the `redis://` job adapter: jobs in Redis, one Lua
 * script per state change; each consumer replica runs a core `Worker` per
 * queue whose shards are the queue's partitions, and the owner of a partition
 * is its only consumer, fenced by the claim's token.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import type { Discovery, ShardContext } from '@shardwork/core';
import { retrying, settlesWithin } from '@shardwork/core/backend';
import { RedisDiscovery } from '@shardwork/discovery-redis';
import { RedisConnection } from '@shardwork/discovery-redis/kit';
import {
  type AdapterRuntime,
  type BulkOptions,
  type CancelResult,
  type CompiledPeriodic,
  type CompiledQueueOptions,
  consumedQueues,
  Dispatcher,
  type EnqueueResult,
  type JobAdapter,
  JobCancelledError,
  type JobChange,
  type JobDetails,
  type JobOutcome,
  type JobPage,
  type JobRecord,
  type JobState,
  type JobStats,
  type ListOptions,
  PartitionedConsumption,
  type PartitionOwner,
  type PauseOptions,
  periodicQueue,
  type QueueThroughput,
  QueueUnavailableError,
  refOf,
  type StopResult,
} from '@shardwork/jobs/adapter';
import { RedisQueueAdmin } from './admin.js';
import { ConsumerDirectory, HANDLERS_LABEL } from './consumers.js';
import { RedisJobFollow } from './follow.js';
import { partitionOf } from './keys.js';
import { type CompiledRedisJobOptions, compileRedisJobOptions, type RedisJobOptions } from './options.js';
import { type ConsumerHost, PartitionConsumer } from './partition.js';
import { jobPartition, RedisJobProducer } from './producer.js';
import { QueueRegistry } from './queues.js';

import { QueueStore } from './store.js';
import { subscribeWakes } from './wake.js';

/** See the module documentation. Create it with `createJobQueue('redis://…')` or pass an instance. */
export class RedisJobAdapter implements JobAdapter {
  readonly kind = 'redis';
  readonly durable = true;
  readonly #o: CompiledRedisJobOptions;
  readonly #connection: RedisConnection;
  #runtime: AdapterRuntime | undefined;
  readonly #stores = new Map<string, QueueStore>();
  readonly #registry: QueueRegistry;
  readonly #directory = new ConsumerDirectory(() => this.#partitioned.coordination());
  readonly #admin: RedisQueueAdmin;
  readonly #follow: RedisJobFollow;
  readonly #producer: RedisJobProducer;
  #partitionedRoom: PartitionedConsumption | undefined;
  readonly #consumers = new Map<string, Set<PartitionConsumer>>();
  #dispatcher = new Dispatcher(1, 0);
  readonly #stopping = new AbortController();
  readonly #aborting = new AbortController();
  readonly #closed = new AbortController();
  #refresh: ReturnType<typeof setInterval> | undefined;

  constructor(options: RedisJobOptions = {}) {
    this.#o = compileRedisJobOptions(options);
    // Each partition consumer listens on these.
    setMaxListeners(0, this.#stopping.signal, this.#aborting.signal, this.#closed.signal);
    this.#connection = new RedisConnection(
      this.#o.connection,
      (detail, cause, ambiguous) =>
        new QueueUnavailableError('redis', `${this.#o.target}: ${detail}`, cause, ambiguous),
    );
    this.#registry = new QueueRegistry({
      connection: this.#connection,
      prefix: this.#o.prefix,
      repaired: (error) => this.#runtime?.emit('record:invalid', { error, repaired: true }),
    });
    this.#admin = new RedisQueueAdmin({
      connection: this.#connection,
      registry: this.#registry,
      directory: this.#directory,
      partitions: this.#o.partitions,
      handlers: () => this.#rt.handlers,
      store: (queue) => this.#store(queue),
      coordination: () => this.#partitioned.coordination(),
    });
    this.#producer = new RedisJobProducer({
      registry: this.#registry,
      directory: this.#directory,
      partitions: this.#o.partitions,
      enqueueTimeoutMs: this.#o.enqueueTimeoutMs,
      closed: this.#closed.signal,
      store: (queue) => this.#store(queue),
      runtime: () => this.#rt,
      reportError: (error) => this.#reportError(error),
    });
    this.#follow = new RedisJobFollow({
      connection: this.#connection,
      prefix: this.#o.prefix,
      registry: this.#registry,
      store: (queue) => this.#store(queue),
      runtime: () => this.#rt,
    });
  }

  /** Key prefix in use. */
  get prefix(): string {
    return this.#o.prefix;
  }

  /** Partitions per queue. */
  get partitionCount(): number {
    return this.#o.partitions;
  }

  attach(runtime: AdapterRuntime): void {
    this.#runtime = runtime;
  }

  /** The partitioned consumption of this process's queues (made once the runtime is attached). */
  get #partitioned(): PartitionedConsumption {
    const rt = this.#rt;
    this.#partitionedRoom ??= new PartitionedConsumption({
      adapter: 'redis',
      partitions: this.#o.partitions,
      leaseTtlMs: this.#o.leaseTtlMs,
      revokeTimeoutMs: this.#o.revokeTimeoutMs,
      discovery: this.#o.discovery,
      fallback: () => this.#fallbackDiscovery(),
      logger: rt.options.logger,
      // Producers, stats() and pause() read which handlers the live consumers run from here.
      labels: { [HANDLERS_LABEL]: [...rt.handlers.keys()].sort().join(',') },
      consume: (queue, ctx) => this.#consume(queue, ctx),
      onError: (error) => this.#reportError(error),
      onInvalidRecord: (event) => rt.emit('record:invalid', event),
    });
    return this.#partitionedRoom;
  }

  get #rt(): AdapterRuntime {
    if (this.#runtime === undefined) throw new Error('RedisJobAdapter used before it was attached to a JobQueue');
    return this.#runtime;
  }

  #store(queue: string): QueueStore {
    let store = this.#stores.get(queue);
    if (store === undefined) {
      store = new QueueStore(
        this.#connection,
        this.#o.prefix,
        queue,
        this.#o.partitions,
        this.#runtime?.options.keepCompleted ?? { count: 0, ageMs: 1 },
        (error) => {
          this.#reportError(error);
          // Redis lost the data: the admin views learn of this queue from us again.
          this.#republish(queue);
        },
        (error, repaired) => {
          this.#runtime?.emit('record:invalid', { error, repaired });
          // Which handlers are ordered is ours to publish again.
          if (error.key === this.#store(queue).keys.ordered) this.#republish(queue);
        },
      );
      this.#stores.set(queue, store);
    }
    return store;
  }

  #reportError(error: unknown): void {
    this.#runtime?.emit('error', { error });
  }

  /**
   * Publish a consumed queue's name and ordered handlers again (after Redis
   * lost them, or garbage in their keys was deleted), in the background.
   */
  #republish(queue: string): void {
    if (!this.#consumedQueues().includes(queue)) return;
    void this.#registry
      .publish([queue], this.#rt.handlers.values())
      .catch((error: unknown) => this.#reportError(error));
  }

  enqueue(records: readonly JobRecord[]): Promise<EnqueueResult[]> {
    return this.#producer.enqueue(records);
  }

  /** Queues this process consumes. */
  #consumedQueues(): string[] {
    return consumedQueues(this.#rt, this.#o.queues);
  }

  #periodicQueue(p: CompiledPeriodic): string {
    return periodicQueue(this.#rt, p);
  }

  async start(): Promise<void> {
    const rt = this.#rt;
    const queues = this.#consumedQueues();
    if (queues.length === 0) return;
    const concurrency = rt.options.concurrency;
    this.#dispatcher = new Dispatcher(concurrency, this.#o.prefetch ?? concurrency);
    const o = this.#o;
    const began = Date.now();
    // Publish which handlers are ordered, so producers that lack the registration line their jobs up too.
    await this.#retryUntil(began, () => this.#registry.publish(queues, rt.handlers.values()));
    // Added again every idle re-check: a queue whose name Redis lost (or garbage replaced) shows in the admin views again.
    this.#refresh = setInterval(() => {
      this.#registry.add(queues).catch((error: unknown) => this.#reportError(error));
    }, o.idleCheckMs);
    this.#refresh.unref();
    subscribeWakes({
      connection: this.#connection,
      channels: new Map(queues.map((q) => [this.#store(q).keys.wake, q])),
      consumers: this.#consumers,
      closed: this.#closed.signal,
      cancelled: (id, reason) => this.#rt.abortAttempt(id, new JobCancelledError(id, reason)),
      reportError: (error) => this.#reportError(error),
    });
    await this.#partitioned.start(queues, began + o.startTimeoutMs);
  }

  async #retryUntil(began: number, call: () => Promise<void>): Promise<void> {
    const unavailable = (error: unknown): boolean =>
      error instanceof QueueUnavailableError || this.#connection.mapError(error) instanceof QueueUnavailableError;
    try {
      await retrying(() => call(), {
        retryable: unavailable,
        backoff: { initialMs: 100, maxMs: 2000 },
        deadlineMs: Math.max(0, this.#o.startTimeoutMs - (Date.now() - began)),
        onRetry: (error) => this.#reportError(this.#connection.mapError(error)),
      });
    } catch (error) {
      throw this.#connection.mapError(error);
    }
  }

  async #consume(queue: string, ctx: ShardContext): Promise<void> {
    const rt = this.#rt;
    const specs: (string | number)[] = [];
    let n = 0;
    // Any registered handler runs here, whatever queue its job was sent to.
    for (const reg of rt.handlers.values()) {
      specs.push(reg.name, reg.priority, reg.maxConcurrency);
      n++;
    }
    const periodics = rt.periodics.filter(
      (p) => this.#periodicQueue(p) === queue && partitionOf(p.name, this.#o.partitions) === ctx.shard,
    );
    const store = this.#store(queue);
    const host: ConsumerHost = {
      store,
      runtime: rt,
      dispatcher: this.#dispatcher,
      // Several smaller fetches in flight keep Redis and this process busy at once.
      batchSize: Math.min(
        this.#o.batchSize,
        Math.max(1, Math.ceil((rt.options.concurrency + (this.#o.prefetch ?? rt.options.concurrency)) / 4)),
      ),
      idleCheckMs: this.#o.idleCheckMs,
      revokeTimeoutMs: this.#o.revokeTimeoutMs,
      specs: [n, ...specs],
      stopping: this.#stopping.signal,
      aborting: this.#aborting.signal,
      closed: this.#closed.signal,
      periodics,
      partitionOf: (record) => jobPartition(record, this.#o.partitions),
      lastTick: async (name) => {
        const redis = await this.#connection.ready();
        const value = await redis.hget(store.keys.cron, name).catch((error: unknown) => {
          throw this.#connection.mapError(error);
        });
        return value === null ? undefined : Number(value);
      },
      reportError: (error) => this.#reportError(error),
    };
    const consumer = new PartitionConsumer(host, ctx);
    let set = this.#consumers.get(queue);
    if (set === undefined) {
      set = new Set();
      this.#consumers.set(queue, set);
    }
    set.add(consumer);
    try {
      await consumer.run();
    } finally {
      set.delete(consumer);
    }
  }

  async stop(timeoutMs: number): Promise<StopResult> {
    this.#stopping.abort();
    clearInterval(this.#refresh);
    for (const set of this.#consumers.values()) for (const c of set) c.wake();
    const consumers = [...this.#consumers.values()].flatMap((set) => [...set]);
    const drained = Promise.all(consumers.map((c) => c.drained()));
    let aborted = 0;
    if (!(await settlesWithin(drained, timeoutMs))) {
      aborted = consumers.reduce((sum, c) => sum + c.running, 0);
      this.#aborting.abort();
      await drained;
    }
    await this.#partitioned?.stop();
    return { aborted, dropped: 0 };
  }

  async close(): Promise<void> {
    this.#stopping.abort();
    clearInterval(this.#refresh);
    this.#closed.abort();
    await this.#partitionedRoom?.close();
    await this.#connection.close();
  }

  /** The Redis discovery the partition owners coordinate through when none is given: this Redis, under `<prefix>coord:`. */
  #fallbackDiscovery(): Discovery {
    const o = this.#o;
    const connection = o.connection.connection;
    const prefix = `${o.prefix}coord:`;
    if (connection.kind === 'external') return new RedisDiscovery({ client: connection.client, prefix });
    const syncReplicas = o.connection.syncReplicas;
    return connection.kind === 'cluster'
      ? new RedisDiscovery({
          redis: connection.options.redisOptions ?? {},
          clusterNodes: connection.nodes,
          prefix,
          syncReplicas,
        })
      : new RedisDiscovery({ redis: connection.options, prefix, syncReplicas });
  }

  // ── admin (admin.ts) ─────────────────────────────────────────────────────

  stats(): Promise<JobStats> {
    return this.#admin.stats();
  }

  list(state: JobState, options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions): Promise<JobPage> {
    return this.#admin.list(state, options);
  }

  retryDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#admin.retryDead(id, options);
  }

  deleteDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#admin.deleteDead(id, options);
  }

  partitions(): Promise<PartitionOwner[]> {
    return this.#admin.partitions();
  }

  pause(handler: string, options: PauseOptions = {}): Promise<void> {
    return this.#admin.pause(handler, options);
  }

  unpause(handler: string): Promise<void> {
    return this.#admin.unpause(handler);
  }

  pauseQueue(queue: string): Promise<void> {
    return this.#admin.pauseQueue(queue);
  }

  throughput(minutes: number, queue?: string): Promise<QueueThroughput[]> {
    return this.#admin.throughput(minutes, queue);
  }

  unpauseQueue(queue: string): Promise<void> {
    return this.#admin.unpauseQueue(queue);
  }

  // ── one job (follow.ts) ──────────────────────────────────────────────────

  async getJob(id: string): Promise<JobDetails | undefined> {
    const job = await this.#follow.getJob(id);
    if (job?.state !== 'running' || job.partition === undefined) return job;
    // Who runs it: the owner of its partition.
    const owners = await this.#admin.partitions().catch(() => []);
    const owner = owners.find((o) => o.queue === job.queue && o.partition === job.partition)?.owner;
    return owner === undefined ? job : { ...job, owner };
  }

  async cancel(id: string, reason: string | undefined, waitingOnly = false): Promise<CancelResult | undefined> {
    const result = await this.#follow.cancel(id, reason, waitingOnly);
    if (result?.cancelled === true) {
      // Running here: abort it now (the owner of another process is told on its wake channel).
      if (result.state === 'running') this.#rt.abortAttempt(id, new JobCancelledError(id, reason));
      const job = await this.#follow.getJob(id).catch(() => undefined);
      if (job !== undefined) this.#rt.emit('job:cancelled', { job: refOf(job), state: result.state, reason });
    }
    return result;
  }

  awaitFinished(id: string, signal: AbortSignal): Promise<JobOutcome | undefined> {
    return this.#follow.awaitFinished(id, signal);
  }

  modify(id: string, change: JobChange): Promise<{ state: JobState; applied: boolean } | undefined> {
    return this.#follow.modify(id, change);
  }
}

/**
 * Create a {@link RedisJobAdapter} from a `redis://` or `rediss://` URL and the
 * queue's options (`adapter: { … }` are {@link RedisJobOptions}); what
 * `createJobQueue()` of `@shardwork/jobs` calls for those protocols.
 */
export function jobAdapterFromUrl(url: string, options: CompiledQueueOptions): RedisJobAdapter {
  return new RedisJobAdapter({ ...(options.adapter as RedisJobOptions), url });
}
