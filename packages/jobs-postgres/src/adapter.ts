/**
 * {@link PostgresJobAdapter}, the `postgres://` job adapter: jobs are rows of
 * one table in every state; each consumer replica runs a core `Worker` per
 * queue whose shards are the queue's partitions (the shared
 * `PartitionedConsumption` room), and the owner of a partition is its only
 * consumer, fenced by the claim's token in every statement that changes a
 * job. Wake-ups by LISTEN/NOTIFY; no polling while idle.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { InvalidOptionsError, type ShardContext } from '@shardwork/core';
import { retrying, settlesWithin } from '@shardwork/core/backend';
import {
  type AdapterRuntime,
  type BulkOptions,
  type CancelResult,
  type CompiledQueueOptions,
  consumedQueues,
  Dispatcher,
  type EnqueueOptions,
  type EnqueueResult,
  InvalidJobError,
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
  partitionOf,
  periodicQueue,
  type QueueThroughput,
  QueueUnavailableError,
  refOf,
  type StopResult,
} from '@shardwork/jobs/adapter';
import pg from 'pg';
import { PostgresQueueAdmin } from './admin.js';
import { PartitionConsumer } from './consumer.js';
import { ensureQueues, storedJob, storeJobs } from './enqueue.js';
import type { FetchSpec } from './fenced.js';
import { PostgresJobFollow } from './follow.js';
import { checkSchema, migrate, quotedSchema } from './migrate.js';
import { type CompiledPostgresJobOptions, compilePostgresJobOptions, type PostgresJobOptions } from './options.js';
import { NOW, wakeChannel } from './sql.js';
import { isUnreachable, mapPostgresError } from './unavailable.js';
import { type WakeMessage, WakeSubscriber } from './wake.js';

/** See the module documentation. Create it with `createJobQueue('postgres://…')` or pass an instance. */
export class PostgresJobAdapter implements JobAdapter {
  readonly kind = 'postgres';
  readonly durable = true;
  readonly acceptsClient = true;
  readonly #o: CompiledPostgresJobOptions;
  readonly #pool: pg.Pool;
  #ready: Promise<pg.Pool> | undefined;
  #runtime: AdapterRuntime | undefined;
  readonly #admin: PostgresQueueAdmin;
  /** Queues this adapter registered (or found) with its partition count: enqueues skip that check. */
  readonly #knownQueues = new Set<string>();
  readonly #follow: PostgresJobFollow;
  readonly #wake: WakeSubscriber;
  #listening: Promise<void> | undefined;
  #partitionedRoom: PartitionedConsumption | undefined;
  readonly #consumers = new Map<string, Set<PartitionConsumer>>();
  #dispatcher = new Dispatcher(1, 0);
  readonly #stopping = new AbortController();
  readonly #aborting = new AbortController();
  readonly #closed = new AbortController();
  /** Finished attempts per queue not yet written to `throughput`. */
  readonly #counts = new Map<string, { completed: number; failed: number }>();
  #countTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: PostgresJobOptions = {}) {
    this.#o = compilePostgresJobOptions(options);
    setMaxListeners(0, this.#stopping.signal, this.#aborting.signal, this.#closed.signal);
    this.#pool = this.#o.pool ?? new pg.Pool(this.#o.connection);
    // An idle connection that dies with the server is replaced on next use; the error is not ours to throw.
    if (this.#o.pool === undefined) this.#pool.on('error', (error) => this.#reportError(this.#map(error)));
    const ready = (): Promise<pg.Pool> => this.#readyPool();
    this.#admin = new PostgresQueueAdmin({
      pool: this.#pool,
      schema: this.#o.schema,
      partitions: this.#o.partitions,
      handlers: () => this.#rt.handlers,
      coordination: () => this.#partitioned.coordination(),
      ready,
    });
    this.#follow = new PostgresJobFollow({
      schema: this.#o.schema,
      ready,
      listen: () => this.#listen(),
      keepCompleted: () => this.#rt.options.keepCompleted,
    });
    const connection = this.#o.pool === undefined ? this.#o.connection : this.#o.pool.options;
    this.#wake = new WakeSubscriber({
      connection,
      schema: this.#o.schema,
      onWake: (message) => this.#onWake(message),
      onError: (error) => this.#reportError(this.#map(error)),
    });
  }

  /** The schema of the job tables. */
  get schema(): string {
    return this.#o.schema;
  }

  /** Partitions per queue. */
  get partitionCount(): number {
    return this.#o.partitions;
  }

  /** The pool the adapter runs its statements on (the caller's when one was given). */
  get pool(): pg.Pool {
    return this.#pool;
  }

  attach(runtime: AdapterRuntime): void {
    this.#runtime = runtime;
  }

  get #rt(): AdapterRuntime {
    if (this.#runtime === undefined) throw new Error('PostgresJobAdapter used before it was attached to a JobQueue');
    return this.#runtime;
  }

  #map(error: unknown): unknown {
    return mapPostgresError(error, this.#o.target);
  }

  #reportError(error: unknown): void {
    this.#runtime?.emit('error', { error });
  }

  /** The pool once the schema is migrated (first use migrates; a failure is retried by the next use). */
  #readyPool(): Promise<pg.Pool> {
    this.#ready ??= (async () => {
      if (this.#o.migrate) await migrate(this.#pool, { schema: this.#o.schema });
      else await checkSchema(this.#pool, this.#o.schema);
      return this.#pool;
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw this.#map(error);
    });
    return this.#ready;
  }

  #listen(): Promise<void> {
    this.#listening ??= this.#wake.start().catch((error: unknown) => {
      this.#listening = undefined;
      throw this.#map(error);
    });
    return this.#listening;
  }

  #onWake(message: WakeMessage): void {
    switch (message.type) {
      case 'ready':
        for (const c of this.#consumers.get(message.queue) ?? []) if (c.partition === message.partition) c.wake();
        return;
      case 'all':
        for (const [queue, set] of this.#consumers) {
          if (message.queue === undefined || message.queue === queue) for (const c of set) c.wake();
        }
        return;
      case 'done':
        this.#follow.done(message.outcome);
        return;
      case 'cancel':
        this.#runtime?.abortAttempt(message.id, new JobCancelledError(message.id, undefined));
        return;
    }
  }

  /** The partitioned consumption of this process's queues (made once the runtime is attached). */
  get #partitioned(): PartitionedConsumption {
    const rt = this.#rt;
    this.#partitionedRoom ??= new PartitionedConsumption({
      adapter: 'postgres',
      partitions: this.#o.partitions,
      leaseTtlMs: this.#o.leaseTtlMs,
      revokeTimeoutMs: this.#o.revokeTimeoutMs,
      discovery: this.#o.discovery,
      logger: rt.options.logger,
      labels: { handlers: [...rt.handlers.keys()].sort().join(',') },
      consume: (queue, ctx) => this.#consume(queue, ctx),
      onError: (error) => this.#reportError(error),
      onInvalidRecord: (event) => rt.emit('record:invalid', event),
    });
    return this.#partitionedRoom;
  }

  async enqueue(records: readonly JobRecord[], options?: EnqueueOptions): Promise<EnqueueResult[]> {
    const rows = records.map((r) => storedJob(r, this.#partitionOf(r)));
    const storeOn = (db: pg.ClientBase | pg.Pool, known?: Set<string>): Promise<EnqueueResult[]> =>
      storeJobs(db, this.#o.schema, rows, {
        partitions: this.#o.partitions,
        givenWindowMs: this.#rt.options.idempotencyWindowMs,
        ...(known === undefined ? {} : { known }),
      });
    if (options?.client !== undefined) {
      const client = callersClient(options.client);
      await this.#readyPool();
      // The caller's transaction: no retry (a failed statement aborted it), and
      // NOTIFY is delivered when it commits, so consumers wake then.
      return storeOn(client).catch((error: unknown) => {
        throw this.#map(error);
      });
    }
    const store = async (): Promise<EnqueueResult[]> => storeOn(await this.#readyPool(), this.#knownQueues);
    let ambiguous = false;
    try {
      return await retrying(store, {
        retryable: isUnreachable,
        backoff: { initialMs: 50, maxMs: 1000 },
        deadlineMs: this.#o.enqueueTimeoutMs,
        onRetry: () => {
          ambiguous = true;
        },
      });
    } catch (error) {
      const mapped = this.#map(error);
      if (mapped instanceof QueueUnavailableError && ambiguous && !mapped.ambiguous) {
        throw new QueueUnavailableError('postgres', `${mapped.message}; an earlier try got no reply`, error, true);
      }
      throw mapped;
    }
  }

  /** The partition of a job: its key's, or any for a keyless job. */
  #partitionOf(record: JobRecord): number {
    return record.key === undefined
      ? Math.floor(Math.random() * this.#o.partitions)
      : partitionOf(record.key, this.#o.partitions);
  }

  async start(): Promise<void> {
    const rt = this.#rt;
    const queues = consumedQueues(rt, this.#o.queues);
    if (queues.length === 0) return;
    if (this.#o.discovery === undefined) {
      throw new InvalidOptionsError(
        'discovery',
        undefined,
        'a discovery URL or instance where the partition owners of the postgres job adapter coordinate (postgres://, redis://, etcd://; memory:// when one process consumes): the pool given has no connectionString to default to the same database',
      );
    }
    const began = Date.now();
    this.#dispatcher = new Dispatcher(rt.options.concurrency, rt.options.concurrency);
    try {
      await retrying(
        async () => {
          const pool = await this.#readyPool();
          // The queues' rows before any partition is taken; a queue stored with another partition count is refused.
          await ensureQueues(pool, quotedSchema(this.#o.schema), queues, this.#o.partitions);
          await this.#listen();
        },
        {
          retryable: isUnreachable,
          backoff: { initialMs: 100, maxMs: 2000 },
          deadlineMs: this.#o.startTimeoutMs,
          onRetry: (error) => this.#reportError(this.#map(error)),
        },
      );
    } catch (error) {
      throw this.#map(error);
    }
    this.#countTimer = setInterval(() => void this.#writeCounts(), 1000);
    this.#countTimer.unref();
    await this.#partitioned.start(queues, began + this.#o.startTimeoutMs);
  }

  /** The fetch rules of this process's handlers. */
  #spec(): FetchSpec {
    const regs = [...this.#rt.handlers.values()];
    return {
      handlers: regs.map((r) => r.name),
      ordered: regs.filter((r) => r.ordered).map((r) => r.name),
      limited: new Map(regs.filter((r) => r.maxConcurrency > 0).map((r) => [r.name, r.maxConcurrency])),
      priorities: new Map(regs.map((r) => [r.name, r.priority])),
    };
  }

  async #consume(queue: string, ctx: ShardContext): Promise<void> {
    const rt = this.#rt;
    const periodics = rt.periodics.filter(
      (p) => periodicQueue(rt, p) === queue && partitionOf(p.name, this.#o.partitions) === ctx.shard,
    );
    const consumer = new PartitionConsumer(
      {
        pool: this.#pool,
        schema: this.#o.schema,
        queue,
        runtime: rt,
        dispatcher: this.#dispatcher,
        // A fetch fills at most the prefetch (the concurrency), and waits under load until it can.
        batchSize: Math.min(this.#o.batchSize, rt.options.concurrency),
        prefetch: rt.options.concurrency,
        idleCheckMs: this.#o.idleCheckMs,
        revokeTimeoutMs: this.#o.revokeTimeoutMs,
        leaseTtlMs: this.#o.leaseTtlMs,
        spec: this.#spec(),
        stopping: this.#stopping.signal,
        aborting: this.#aborting.signal,
        closed: this.#closed.signal,
        periodics,
        partitions: this.#o.partitions,
        partitionOf: (record) => this.#partitionOf(record),
        count: (completed, failed) => {
          const c = this.#counts.get(queue) ?? { completed: 0, failed: 0 };
          c.completed += completed;
          c.failed += failed;
          this.#counts.set(queue, c);
        },
        slotFreed: () => {
          this.#pool
            .query(`SELECT pg_notify($1, $2)`, [wakeChannel(this.#o.schema), `${queue}|*`])
            .catch((error: unknown) => this.#reportError(this.#map(error)));
        },
        mapError: (error) => this.#map(error),
        reportError: (error) => this.#reportError(error),
      },
      ctx,
    );
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

  /** Write the finished attempts counted since the last write (every second, and at stop). */
  async #writeCounts(): Promise<void> {
    if (this.#counts.size === 0) return;
    const entries = [...this.#counts];
    this.#counts.clear();
    await this.#pool
      .query(
        `INSERT INTO ${quotedSchema(this.#o.schema)}.throughput (queue, minute, completed, failed)
         SELECT q, (${NOW} / 60000) * 60000, c, f
         FROM unnest($1::text[], $2::int[], $3::int[]) AS t(q, c, f)
         ON CONFLICT (queue, minute) DO UPDATE SET completed = throughput.completed + EXCLUDED.completed,
           failed = throughput.failed + EXCLUDED.failed`,
        [entries.map(([q]) => q), entries.map(([, c]) => c.completed), entries.map(([, c]) => c.failed)],
      )
      .catch((error: unknown) => this.#reportError(this.#map(error)));
  }

  async stop(timeoutMs: number): Promise<StopResult> {
    this.#stopping.abort();
    for (const set of this.#consumers.values()) for (const c of set) c.wake();
    const consumers = [...this.#consumers.values()].flatMap((set) => [...set]);
    const drained = Promise.all(consumers.map((c) => c.drained()));
    let aborted = 0;
    if (!(await settlesWithin(drained, timeoutMs))) {
      aborted = consumers.reduce((sum, c) => sum + c.running, 0);
      this.#aborting.abort();
      await drained;
    }
    await this.#partitionedRoom?.stop();
    clearInterval(this.#countTimer);
    await this.#writeCounts();
    return { aborted, dropped: 0 };
  }

  async close(): Promise<void> {
    this.#stopping.abort();
    this.#closed.abort();
    clearInterval(this.#countTimer);
    await this.#partitionedRoom?.close();
    await this.#writeCounts();
    await this.#wake.close();
    if (this.#o.pool === undefined) await this.#pool.end().catch(() => undefined);
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

  unpauseQueue(queue: string): Promise<void> {
    return this.#admin.unpauseQueue(queue);
  }

  throughput(minutes: number, queue?: string): Promise<QueueThroughput[]> {
    return this.#admin.throughput(minutes, queue);
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
 * Create a {@link PostgresJobAdapter} from a `postgres://` or `postgresql://`
 * URL and the queue's options (`adapter: { … }` are {@link PostgresJobOptions});
 * what `createJobQueue()` of `@shardwork/jobs` calls for those protocols.
 */
export function jobAdapterFromUrl(url: string, options: CompiledQueueOptions): PostgresJobAdapter {
  return new PostgresJobAdapter({ ...(options.adapter as PostgresJobOptions), url });
}

/**
 * The caller's client of `perform(job, { client })`: a `pg` client (its own
 * or a pool's), refused with a clear error for a pool (whose statements
 * would each run on some connection, outside any transaction of the caller)
 * or for anything without `query`.
 */
function callersClient(client: object): pg.ClientBase {
  if (client instanceof pg.Pool || ('totalCount' in client && 'idleCount' in client)) {
    throw new InvalidJobError(
      'options.client',
      'is a pg Pool, which has no transaction of yours: pass the client you ran BEGIN on (const client = await pool.connect())',
    );
  }
  if (typeof (client as { query?: unknown }).query !== 'function') {
    throw new InvalidJobError(
      'options.client',
      'must be a pg Client or pooled client (await pool.connect()) inside your transaction, after BEGIN',
    );
  }
  return client as pg.ClientBase;
}
