/**
 * {@link RedisJobAdapter}, the `redis://` job adapter: jobs in Redis, one Lua
 * script per state change; each consumer replica runs a core `Worker` per
 * queue whose shards are the queue's partitions, and the owner of a partition
 * is its only consumer, fenced by the claim's token.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { createDiscovery, type Discovery, type ShardContext, settlesWithin, sleep, Worker } from '@shardwork/core';
import { type RedisClient, RedisConnection, RedisDiscovery } from '@shardwork/discovery-redis';
import {
  type AdapterRuntime,
  type BulkOptions,
  type CompiledPeriodic,
  type CompiledQueueOptions,
  consumedQueues,
  type EnqueueResult,
  JOB_STATES,
  type JobAdapter,
  type JobErrorInfo,
  type JobInfo,
  JobNotFoundError,
  type JobPage,
  type JobRecord,
  type JobState,
  type JobStats,
  type ListOptions,
  type PartitionOwner,
  periodicQueue,
  QueueUnavailableError,
  type StateCounts,
  type StopResult,
} from '@shardwork/jobs';
import { nanoid } from 'nanoid';
import { partitionOf, queuesKey } from './keys.js';
import { type CompiledRedisJobOptions, compileRedisJobOptions, type RedisJobOptions } from './options.js';
import { type ConsumerHost, PartitionConsumer } from './partition.js';
import { enqueueFields, recordArgs } from './records.js';
import { Dispatcher } from './slots.js';
import { QueueStore } from './store.js';

const emptyCounts = (): StateCounts => ({ scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 });

/** See the module documentation. Create it with `createJobQueue('redis://…')` or pass an instance. */
export class RedisJobAdapter implements JobAdapter {
  readonly kind = 'redis';
  readonly durable = true;
  readonly #o: CompiledRedisJobOptions;
  readonly #connection: RedisConnection;
  #runtime: AdapterRuntime | undefined;
  readonly #stores = new Map<string, QueueStore>();
  readonly #known = new Set<string>();
  readonly #workers = new Map<string, Worker>();
  readonly #consumers = new Map<string, Set<PartitionConsumer>>();
  #subscriber: RedisClient | undefined;
  #discovery: Discovery | undefined;
  #ownsDiscovery = false;
  #dispatcher = new Dispatcher(1, 0);
  readonly #stopping = new AbortController();
  readonly #aborting = new AbortController();
  readonly #closed = new AbortController();

  constructor(options: RedisJobOptions = {}) {
    this.#o = compileRedisJobOptions(options);
    // Each partition consumer listens on these.
    setMaxListeners(0, this.#stopping.signal, this.#aborting.signal, this.#closed.signal);
    this.#connection = new RedisConnection(
      this.#o.connection,
      (detail, cause, ambiguous) =>
        new QueueUnavailableError('redis', `${this.#o.target}: ${detail}`, cause, ambiguous),
    );
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

  get #rt(): AdapterRuntime {
    if (this.#runtime === undefined) throw new Error('RedisJobAdapter used before it was attached to a JobQueue');
    return this.#runtime;
  }

  #store(queue: string): QueueStore {
    let store = this.#stores.get(queue);
    if (store === undefined) {
      store = new QueueStore(this.#connection, this.#o.prefix, queue, this.#o.partitions, (error) =>
        this.#reportError(error),
      );
      this.#stores.set(queue, store);
    }
    return store;
  }

  #reportError(error: unknown): void {
    this.#runtime?.emit('error', { error });
  }

  /** The partition of a job: its key's, or any for a keyless job. */
  #partitionOf(record: JobRecord): number {
    return record.key === undefined
      ? Math.floor(Math.random() * this.#o.partitions)
      : partitionOf(record.key, this.#o.partitions);
  }

  /** Remember a queue name in `<prefix>queues` (once per process) for the admin views. */
  async #remember(queue: string): Promise<void> {
    if (this.#known.has(queue)) return;
    const redis = await this.#connection.ready();
    await redis.sadd(queuesKey(this.#o.prefix), queue).catch((error: unknown) => {
      throw this.#connection.mapError(error);
    });
    this.#known.add(queue);
  }

  async enqueue(records: readonly JobRecord[]): Promise<EnqueueResult[]> {
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
        Math.max(1000, this.#o.enqueueTimeoutMs * 2),
        this.#rt.options.idempotencyWindowMs,
        nanoid(),
      ];
      for (const i of indexes) {
        const record = records[i] as JobRecord;
        args.push(...enqueueFields(record, this.#partitionOf(record)));
      }
      const reply = await this.#retryUnavailable(async () => {
        await this.#remember(queue);
        return this.#store(queue).call('enqueue', args);
      });
      const outcomes = reply[0] as string[];
      indexes.forEach((i, j) => {
        const holder = outcomes[j];
        const record = records[i] as JobRecord;
        results[i] =
          holder === '' || holder === undefined ? { id: record.id, duplicate: false } : { id: holder, duplicate: true };
      });
    }
    return results;
  }

  /**
   * Retry a call while Redis is unreachable, for at most `enqueueTimeoutMs`,
   * then reject with the last error; ambiguous if any attempt may have run
   * (the call is remembered by enqueue.lua, so a retry never adds twice).
   */
  async #retryUnavailable<T>(call: () => Promise<T>): Promise<T> {
    const began = Date.now();
    let ambiguous = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const delay = Math.min(1000, 50 * 2 ** attempt);
        if (!(error instanceof QueueUnavailableError)) throw error;
        ambiguous ||= error.ambiguous;
        if (Date.now() - began + delay > this.#o.enqueueTimeoutMs) {
          throw ambiguous === error.ambiguous
            ? error
            : new QueueUnavailableError(
                'redis',
                `${error.message.replace(/^Job queue redis unavailable: /, '')}; an earlier try got no reply`,
                error,
                true,
              );
        }
        await sleep(delay);
      }
    }
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
    await this.#retryUntil(began, async () => {
      const redis = await this.#connection.ready();
      // One transaction per queue (its keys share a slot), and the list of queues apart: on a cluster they live on different nodes.
      await Promise.all([
        redis.sadd(queuesKey(o.prefix), ...queues),
        ...queues.map((queue) => {
          const keys = this.#store(queue).keys;
          const multi = redis.multi();
          for (const reg of rt.handlers.values()) {
            if (reg.ordered) multi.sadd(keys.ordered, reg.name);
            else multi.srem(keys.ordered, reg.name);
          }
          return multi.exec();
        }),
      ]);
    });
    for (const queue of queues) this.#known.add(queue);
    this.#subscribe(queues);
    const discovery = await this.#coordination();
    for (const queue of queues) {
      const worker = new Worker({
        service: queue,
        shards: o.partitions,
        discovery,
        leaseTtlMs: o.leaseTtlMs,
        revokeTimeoutMs: o.revokeTimeoutMs,
        startTimeoutMs: Math.max(0, o.startTimeoutMs - (Date.now() - began)),
        retry: { initialIntervalMs: 200, maximumIntervalMs: 2000 },
        handler: { do: (ctx) => this.#consume(queue, ctx) },
      });
      worker.on('error', ({ error }) => this.#reportError(error));
      worker.on('record:invalid', (e) => rt.emit('record:invalid', e));
      this.#workers.set(queue, worker);
      await worker.start();
    }
    // Resolve once this replica consumes: it owns partitions, or stands by.
    for (const worker of this.#workers.values()) {
      while (worker.status().shards.length === 0 && !worker.status().standby && worker.state === 'running') {
        if (Date.now() - began > o.startTimeoutMs) break;
        await sleep(20);
      }
    }
  }

  async #retryUntil(began: number, call: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await call();
        return;
      } catch (error) {
        const unavailable =
          error instanceof QueueUnavailableError || this.#connection.mapError(error) instanceof QueueUnavailableError;
        if (!unavailable || Date.now() - began > this.#o.startTimeoutMs) throw this.#connection.mapError(error);
        this.#reportError(this.#connection.mapError(error));
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  #subscribe(queues: readonly string[]): void {
    const channels = new Map(queues.map((q) => [this.#store(q).keys.wake, q]));
    const sub = this.#connection.subscriber();
    let readies = 0;
    sub.on('message', (channel: string, message: string) => {
      const queue = channels.get(channel);
      if (queue === undefined) return;
      for (const consumer of this.#consumers.get(queue) ?? []) {
        if (message === '*' || Number(message) === consumer.partition) consumer.wake();
      }
    });
    // A subscription that failed while the connection stayed up would leave every idle consumer
    // waiting for its safety re-check (30 s): try again while this connection is the ready one.
    const subscribe = (first: boolean, attempt: number): void => {
      sub
        .subscribe(...channels.keys())
        .then(() => {
          // Messages may have been missed while the subscriber was away.
          if (!first) for (const set of this.#consumers.values()) for (const c of set) c.wake();
        })
        .catch((error: unknown) => {
          if (this.#closed.signal.aborted || sub.status !== 'ready') return; // the next 'ready' subscribes
          if (attempt === 0) this.#reportError(this.#connection.mapError(error));
          setTimeout(() => subscribe(first, attempt + 1), Math.min(2000, 100 * 2 ** attempt)).unref();
        });
    };
    sub.on('ready', () => subscribe(readies++ === 0, 0));
    sub.connect().catch(() => undefined);
    this.#subscriber = sub;
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
      partitionOf: (record) => this.#partitionOf(record),
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
    for (const set of this.#consumers.values()) for (const c of set) c.wake();
    const consumers = [...this.#consumers.values()].flatMap((set) => [...set]);
    const drained = Promise.all(consumers.map((c) => c.drained()));
    let aborted = 0;
    if (!(await settlesWithin(drained, timeoutMs))) {
      aborted = consumers.reduce((sum, c) => sum + c.running, 0);
      this.#aborting.abort();
      await drained;
    }
    await Promise.all([...this.#workers.values()].map((w) => w.stop()));
    return { aborted, dropped: 0 };
  }

  async close(): Promise<void> {
    this.#stopping.abort();
    this.#closed.abort();
    await Promise.all([...this.#workers.values()].map((w) => w.stop()));
    if (this.#ownsDiscovery) await this.#discovery?.close().catch(() => undefined);
    await this.#connection.close();
  }

  // ── admin ────────────────────────────────────────────────────────────────

  async #redis(): Promise<RedisClient> {
    return this.#connection.ready();
  }

  async #queues(filter?: string): Promise<string[]> {
    const redis = await this.#redis();
    const names = new Set<string>([...this.#known, ...(await redis.smembers(queuesKey(this.#o.prefix)))]);
    return [...names].filter((q) => filter === undefined || q === filter).sort();
  }

  async stats(): Promise<JobStats> {
    const redis = await this.#redis();
    const total = emptyCounts();
    const queues: Record<string, StateCounts> = {};
    const handlers: Record<string, StateCounts & { paused: boolean }> = {};
    for (const name of this.#rt.handlers.keys()) handlers[name] = { ...emptyCounts(), paused: false };
    for (const queue of await this.#queues()) {
      const keys = this.#store(queue).keys;
      const [counts, paused, seen] = (await redis
        .multi()
        .hgetall(keys.count)
        .smembers(keys.paused)
        .smembers(keys.seen)
        .exec()) as [unknown, unknown][];
      const byQueue = emptyCounts();
      queues[queue] = byQueue;
      const pausedSet = new Set((paused?.[1] ?? []) as string[]);
      for (const name of (seen?.[1] ?? []) as string[]) {
        handlers[name] ??= { ...emptyCounts(), paused: false };
      }
      for (const name of pausedSet) {
        const entry = handlers[name] ?? { ...emptyCounts(), paused: true };
        entry.paused = true;
        handlers[name] = entry;
      }
      for (const [field, value] of Object.entries((counts?.[1] ?? {}) as Record<string, string>)) {
        const at = field.indexOf(':');
        const state = field.slice(0, at) as JobState;
        const name = field.slice(at + 1);
        const n = Number(value);
        if (!JOB_STATES.includes(state) || !Number.isFinite(n) || n === 0) continue;
        byQueue[state] += n;
        total[state] += n;
        const entry = handlers[name] ?? { ...emptyCounts(), paused: pausedSet.has(name) };
        entry[state] += n;
        handlers[name] = entry;
      }
    }
    return { total, queues, handlers };
  }

  async list(
    state: JobState,
    options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  ): Promise<JobPage> {
    const redis = await this.#redis();
    const ids: { queue: string; id: string; at: number }[] = [];
    for (const queue of await this.#queues(options.queue)) {
      const keys = this.#store(queue).keys;
      if (state === 'dead') {
        const flat = await redis.zrange(keys.dead, 0, -1, 'WITHSCORES');
        for (let i = 0; i < flat.length; i += 2) ids.push({ queue, id: flat[i] as string, at: Number(flat[i + 1]) });
        continue;
      }
      const pipeline = redis.pipeline();
      for (let p = 0; p < this.#o.partitions; p++) {
        if (state === 'scheduled' || state === 'retrying') pipeline.zrange(keys.due(p), 0, -1, 'WITHSCORES');
        else if (state === 'running') pipeline.hgetall(keys.run(p));
        else pipeline.hgetall(keys.busy(p));
      }
      const replies = ((await pipeline.exec()) ?? []).map(([, value]) => value);
      if (state === 'scheduled' || state === 'retrying') {
        const due: { id: string; at: number }[] = [];
        for (const flat of replies as string[][]) {
          for (let i = 0; i < flat.length; i += 2) due.push({ id: flat[i] as string, at: Number(flat[i + 1]) });
        }
        const fails = due.length === 0 ? [] : await redis.hmget(keys.fails, ...due.map((d) => d.id));
        due.forEach((d, i) => {
          if ((fails[i] !== null) === (state === 'retrying')) ids.push({ queue, ...d });
        });
      } else if (state === 'running') {
        for (const run of replies as Record<string, string>[]) {
          for (const [id, value] of Object.entries(run)) ids.push({ queue, id, at: Number(value.split('|').pop()) });
        }
      } else {
        const seen = await redis.smembers(keys.seen);
        const lists = redis.pipeline();
        for (let p = 0; p < this.#o.partitions; p++) for (const h of seen) lists.lrange(keys.ready(p, h), 0, -1);
        (replies as Record<string, string>[]).forEach((busy, p) => {
          for (const key of Object.keys(busy)) lists.lrange(keys.line(p, key), 0, -1);
        });
        for (const [, value] of (await lists.exec()) ?? []) {
          for (const id of value as string[]) ids.push({ queue, id, at: ids.length });
        }
      }
    }
    const jobs: JobInfo[] = [];
    const matching: { queue: string; id: string; at: number; info: JobInfo }[] = [];
    // Records in batches per queue, then filter by handler and page.
    const byQueue = new Map<string, typeof ids>();
    for (const entry of ids) byQueue.set(entry.queue, [...(byQueue.get(entry.queue) ?? []), entry]);
    for (const [queue, entries] of byQueue) {
      const keys = this.#store(queue).keys;
      const list = entries.map((e) => e.id);
      const [records, fails, errors] = await Promise.all([
        redis.hmget(keys.jobs, ...list),
        redis.hmget(keys.fails, ...list),
        redis.hmget(keys.err, ...list),
      ]);
      entries.forEach((entry, i) => {
        const parsed = recordArgs(records[i] ?? undefined);
        const raw = records[i] === null || records[i] === undefined ? undefined : safeParse(records[i] as string);
        const info: JobInfo = {
          id: entry.id,
          handler: parsed?.handler ?? '?',
          queue,
          key: parsed?.key,
          args: parsed?.args ?? {},
          state,
          fails: Number(fails[i] ?? 0),
          enqueuedAt: Number(raw?.enqueuedAt ?? 0),
          runAt: state === 'scheduled' || state === 'retrying' ? entry.at : Number(raw?.runAt ?? 0),
          lastError:
            errors[i] === null || errors[i] === undefined
              ? undefined
              : (safeParse(errors[i] as string) as JobErrorInfo | undefined),
        };
        if (options.handler === undefined || info.handler === options.handler) matching.push({ ...entry, info });
      });
    }
    if (state !== 'ready') matching.sort((a, b) => a.at - b.at);
    for (const m of matching.slice(options.offset, options.offset + options.limit)) jobs.push(m.info);
    return { total: matching.length, jobs };
  }

  async #deadOp(name: 'retry-dead' | 'delete-dead', id: string | undefined, options: BulkOptions): Promise<number> {
    let done = 0;
    for (const queue of await this.#queues()) {
      const store = this.#store(queue);
      for (;;) {
        const [moved, left] = (await store.call(name, [id ?? '', 1000])) as [number, number];
        if (id !== undefined) {
          if (moved >= 0) return moved;
          break;
        }
        done += moved;
        options.onProgress?.(done);
        if (left === 0 || moved === 0) break;
      }
    }
    if (id !== undefined) throw new JobNotFoundError(id, 'in the dead set');
    return done;
  }

  retryDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#deadOp('retry-dead', id, options);
  }

  deleteDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#deadOp('delete-dead', id, options);
  }

  async partitions(): Promise<PartitionOwner[]> {
    const redis = await this.#redis();
    const discovery = await this.#coordination();
    const owners: PartitionOwner[] = [];
    for (const queue of await this.#queues()) {
      const [snapshot, fence] = await Promise.all([
        discovery.snapshot(queue),
        redis.hgetall(this.#store(queue).keys.fence),
      ]);
      const members = new Map(snapshot.members.map((m) => [m.id, m]));
      const claims = new Map(snapshot.claims.map((c) => [c.shard, c]));
      for (let partition = 0; partition < this.#o.partitions; partition++) {
        const claim = claims.get(partition);
        const member = claim === undefined ? undefined : members.get(claim.owner);
        const fenced = fence[String(partition)];
        owners.push({
          queue,
          partition,
          owner: claim?.owner,
          host: member?.host,
          pid: member?.pid,
          token: claim?.token,
          fence: fenced === undefined ? undefined : Number(fenced),
        });
      }
    }
    return owners;
  }

  /** The coordinator's discovery connection (made on first use; closed with the adapter unless it was given). */
  async #coordination(): Promise<Discovery> {
    const o = this.#o;
    if (this.#discovery !== undefined) return this.#discovery;
    if (typeof o.discovery === 'object') {
      this.#discovery = o.discovery;
      return o.discovery;
    }
    const connection = o.connection.connection;
    const created =
      typeof o.discovery === 'string'
        ? await createDiscovery(o.discovery)
        : connection.kind === 'external'
          ? new RedisDiscovery({ client: connection.client, prefix: `${o.prefix}coord:` })
          : connection.kind === 'cluster'
            ? new RedisDiscovery({
                redis: connection.options.redisOptions ?? {},
                clusterNodes: connection.nodes,
                prefix: `${o.prefix}coord:`,
                syncReplicas: o.connection.syncReplicas,
              })
            : new RedisDiscovery({
                redis: connection.options,
                prefix: `${o.prefix}coord:`,
                syncReplicas: o.connection.syncReplicas,
              });
    if (this.#discovery !== undefined) {
      await created.close();
      return this.#discovery;
    }
    this.#discovery = created;
    this.#ownsDiscovery = true;
    return created;
  }

  async pause(handler: string): Promise<void> {
    const redis = await this.#redis();
    const queues = new Set([...(await this.#queues()), this.#rt.handlers.get(handler)?.queue ?? 'default']);
    // Queue by queue: on a cluster their keys live on different nodes.
    await Promise.all([...queues].map((queue) => redis.sadd(this.#store(queue).keys.paused, handler)));
  }

  async unpause(handler: string): Promise<void> {
    const redis = await this.#redis();
    await Promise.all(
      (await this.#queues()).map((queue) => {
        const keys = this.#store(queue).keys;
        return redis.multi().srem(keys.paused, handler).publish(keys.wake, '*').exec();
      }),
    );
  }
}

function safeParse(raw: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(raw) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
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
