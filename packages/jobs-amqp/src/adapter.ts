/**
 * {@link AmqpJobAdapter}, the `amqp://` job adapter: jobs as persistent
 * messages in durable quorum queues, published with confirms, consumed with
 * manual acknowledgements and a prefetch equal to the queue's concurrency.
 *
 * - **Plain mode** (default): a work queue per handler (`p.q.<queue>.<handler>`);
 *   every consumer process competes for its messages. A crashed consumer's
 *   jobs go to another one as soon as the broker sees its connection close.
 * - **Partitioned mode** (`partitions: N` and a discovery URL): a queue has N
 *   partition queues; a job goes to `hash(key) mod N`. A core `Worker` per
 *   queue hands the partitions to the replicas (sticky, balanced, moving
 *   minimally), and each partition queue has a single active consumer, so
 *   even a replica that lost its lease but not its connection cannot take a
 *   partition's messages alongside the new owner. Jobs of `ordered` handlers
 *   run one at a time per key, in order, across retries and failover.
 * - **Delays** (`performAt`, `performIn`, retry backoff) without plugins: tier
 *   queues with a TTL of `2^k` ms dead-letter back to the work queue; a job
 *   that comes back early is sent on to the next tier, so it never runs early.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import {
  createDiscovery,
  type Discovery,
  InvalidRecordError,
  type ShardContext,
  settlesWithin,
  sleep,
  Worker,
} from '@shardwork/core';
import {
  type AdapterRuntime,
  type AttemptOutcome,
  type CompiledPeriodic,
  type CompiledQueueOptions,
  type CompiledRegistration,
  consumedQueues,
  type EnqueueResult,
  errorInfo,
  JobAbortedError,
  type JobAdapter,
  type JobFeature,
  type JobPage,
  type JobRecord,
  type JobStats,
  partitionOf,
  periodicQueue,
  QueueUnavailableError,
  type RunExtras,
  type StopResult,
  UnsupportedFeatureError,
} from '@shardwork/jobs';
import type { Channel, Connection } from 'rabbitmq-client';
import { Broker } from './broker.js';
import { type Delivery, QueueConsumer } from './consumer.js';
import { CronLeader } from './cron.js';
import { Dispatcher, type Task } from './dispatch.js';
import { decode, encode, encodeRecord, excerpt, type JobMessage, type ReceivedJob } from './message.js';
import { type AmqpJobOptions, type CompiledAmqpJobOptions, compileAmqpJobOptions } from './options.js';
import { TICK_HEADER, Topology } from './topology.js';

/** A job whose handler this process lacks is sent round again after about this long, for a process that has it. */
const UNKNOWN_HANDLER_RETRY_MS = 1000;

/** Where a delivery came from. */
interface Source {
  /** Job queue name. */
  readonly queue: string;
  /** Broker queue it was consumed from (where a delayed or retried job goes back to). */
  readonly from: string;
  readonly partition?: number;
  readonly token?: number;
  readonly owned?: () => boolean;
  /**
   * Partitioned mode: aborts when the partition's running jobs must stop (its
   * lease is lost, or a hand-over or stop ran out of time). Deliveries of a
   * partition are never put back one by one (RabbitMQ 3.10 requeues at the back
   * of the queue, which would break per-key order); the partition's own
   * connection is dropped instead, and the broker returns them at the front.
   */
  readonly aborted?: AbortSignal;
}

/** See the module documentation. Create it with `createJobQueue('amqp://…')` or pass an instance. */
export class AmqpJobAdapter implements JobAdapter {
  readonly kind = 'amqp';
  readonly durable = true;
  readonly unsupported: readonly JobFeature[];
  readonly #o: CompiledAmqpJobOptions;
  readonly #topology: Topology;
  readonly #broker: Broker;
  #runtime: AdapterRuntime | undefined;
  readonly #consumers = new Set<QueueConsumer>();
  #dispatcher = new Dispatcher<SourcedTask>(1);
  readonly #workers: Worker[] = [];
  #discovery: Discovery | undefined;
  #ownsDiscovery = false;
  #cron: CronLeader | undefined;
  readonly #stopping = new AbortController();
  readonly #aborting = new AbortController();
  #closed = false;

  constructor(options: AmqpJobOptions = {}) {
    this.#o = compileAmqpJobOptions(options);
    this.#topology = new Topology(this.#o.prefix, this.#o.deliveryLimit);
    this.#broker = new Broker(this.#o, this.#topology, (error) => this.#reportError(error));
    setMaxListeners(0, this.#stopping.signal, this.#aborting.signal);
    // RabbitMQ 3.10 quorum queues have no priorities, and the broker keeps no state to hold a unique key or a pause.
    this.unsupported = [
      'unique',
      'priority',
      'pause',
      'admin',
      ...(this.#o.partitions === 0 ? ['ordered' as const] : []),
    ];
  }

  /** Queue and exchange name prefix in use. */
  get prefix(): string {
    return this.#o.prefix;
  }

  /** Partitions per queue (0 in plain mode). */
  get partitionCount(): number {
    return this.#o.partitions;
  }

  attach(runtime: AdapterRuntime): void {
    this.#runtime = runtime;
  }

  get #rt(): AdapterRuntime {
    if (this.#runtime === undefined) throw new Error('AmqpJobAdapter used before it was attached to a JobQueue');
    return this.#runtime;
  }

  checkRegistration(registration: CompiledRegistration): void {
    const refuse = (feature: JobFeature, why: string): never => {
      throw new UnsupportedFeatureError('amqp', feature, why);
    };
    if (registration.uniqueKey !== undefined) {
      refuse('unique', 'RabbitMQ keeps no state to hold a unique key while a job is queued or running; use redis://');
    }
    if (registration.priority !== 1) {
      refuse('priority', 'quorum queues on RabbitMQ 3.10 have no message priorities; use a queue per priority');
    }
    if (registration.ordered && this.#o.partitions === 0) {
      refuse('ordered', 'per-key order needs partitioned mode (?partitions=N with a discovery URL)');
    }
  }

  #reportError(error: unknown): void {
    this.#runtime?.emit('error', { error });
  }

  /** The broker queue of a job. */
  #target(queue: string, handler: string, key: string | undefined): string {
    const t = this.#topology;
    const n = this.#o.partitions;
    if (n === 0) return t.handlerQueue(queue, handler);
    return t.partitionQueue(queue, key === undefined ? Math.floor(Math.random() * n) : partitionOf(key, n));
  }

  // ── producing ─────────────────────────────────────────────────────────────

  async enqueue(records: readonly JobRecord[]): Promise<EnqueueResult[]> {
    if (this.#closed) throw new QueueUnavailableError('amqp', 'the adapter is closed');
    const broker = this.#broker;
    const place = (r: JobRecord): Promise<void> => broker.place(this.#target(r.queue, r.handler, r.key), r.queue, r);
    // Each record is declared (once per queue and connection, shared) and published at once; the confirms are awaited together.
    const only = records.length === 1 ? records[0] : undefined;
    await broker.timed<unknown>(only === undefined ? Promise.all(records.map(place)) : place(only));
    return records.map((record) => ({ id: record.id, duplicate: false }));
  }

  // ── consuming ─────────────────────────────────────────────────────────────

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
    const o = this.#o;
    this.#dispatcher = new Dispatcher<SourcedTask>(rt.options.concurrency);
    const conn = this.#broker.connection;
    try {
      await conn.onConnect(o.startTimeoutMs, true);
    } catch (error) {
      throw this.#broker.unavailable(error);
    }
    const began = Date.now();
    if (o.partitions === 0) {
      const consumers: QueueConsumer[] = [];
      for (const queue of queues) {
        for (const reg of rt.handlers.values()) {
          const target = this.#topology.handlerQueue(queue, reg.name);
          await this.#broker.ensureWork(target, queue);
          consumers.push(
            this.#consume({ queue, from: target }, prefetchOf(rt.options.concurrency, reg.maxConcurrency)),
          );
        }
      }
      // Resolve once this process consumes.
      await settlesWithin(
        Promise.all(consumers.map((c) => c.ready())),
        Math.max(0, o.startTimeoutMs - (Date.now() - began)),
      );
    } else {
      const discovery = await this.#coordination();
      for (const queue of queues) {
        const worker = new Worker({
          service: this.#topology.service(queue),
          shards: o.partitions,
          discovery,
          leaseTtlMs: o.leaseTtlMs,
          revokeTimeoutMs: o.revokeTimeoutMs,
          startTimeoutMs: Math.max(0, o.startTimeoutMs - (Date.now() - began)),
          retry: { initialIntervalMs: 200, maximumIntervalMs: 2000 },
          handler: { do: (ctx) => this.#consumePartition(queue, ctx) },
        });
        worker.on('error', ({ error }) => this.#reportError(error));
        worker.on('record:invalid', (e) => rt.emit('record:invalid', e));
        this.#workers.push(worker);
        await worker.start();
      }
      // Resolve once this replica consumes: it owns partitions, or stands by.
      for (const worker of this.#workers) {
        while (worker.status().shards.length === 0 && !worker.status().standby && worker.state === 'running') {
          if (Date.now() - began > o.startTimeoutMs) break;
          await sleep(20);
        }
      }
    }
    if (rt.periodics.length > 0) {
      this.#cron = new CronLeader({
        connection: conn,
        topology: this.#topology,
        periodics: rt.periodics,
        target: (p) => this.#periodicTarget(p),
        declareTarget: (channel, target, p) => this.#broker.declareWork(channel, target, this.#periodicQueue(p)),
        publishTicks: (p, ticks) => this.#publishTicks(p, ticks),
        send: (envelope, body) => this.#broker.send(envelope, body),
        reportError: (error) => this.#reportError(error),
      });
      await this.#cron.start().catch((error: unknown) => {
        throw this.#broker.mapError(error, 'to set up periodic jobs');
      });
    }
  }

  /** Subscribe to one broker queue until stop. */
  #consume(source: Source, prefetch: number, conn: Connection = this.#broker.connection): QueueConsumer {
    const consumer = new QueueConsumer(conn, {
      queue: source.from,
      prefetch,
      abort:
        source.aborted === undefined ? this.#aborting.signal : AbortSignal.any([this.#aborting.signal, source.aborted]),
      declare: (channel) => this.#broker.declareWork(channel, source.from, source.queue),
      onMessage: (delivery) => this.#onDelivery(source, delivery),
      onError: (error) => this.#reportError(this.#broker.mapError(error, `consuming ${source.from}`)),
    });
    this.#consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  /**
   * The `do` of a partition's shard: consume its queue, on a connection of its
   * own, until the partition is handed over. A hand-over keeps order: the
   * consumer is cancelled (nothing new arrives; the next owner subscribes only
   * once core releases the claim), the jobs this replica holds run to the end
   * within `revokeTimeoutMs`, and whatever is left is returned by dropping the
   * connection, which returns a consumer's messages to the front of the queue.
   * A lost lease drops it at once.
   */
  async #consumePartition(queue: string, ctx: ShardContext): Promise<void> {
    const from = this.#topology.partitionQueue(queue, ctx.shard);
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const source: Source = {
      queue,
      from,
      partition: ctx.shard,
      token: ctx.token,
      owned: () => ctx.owned,
      aborted: abort.signal,
    };
    const conn = this.#broker.openConnection(`${from}`);
    const consumer = this.#consume(source, this.#rt.options.concurrency, conn);
    // Ours alone to end: stop() and close() must not close its channel gracefully (that would requeue at the back).
    this.#consumers.delete(consumer);
    await once(AbortSignal.any([ctx.signal, this.#stopping.signal]));
    await consumer.cancel();
    // What this replica holds of the partition: running, or waiting for a slot or its key's line.
    const held = this.#dispatcher.idle((task) => task.source === source);
    if (this.#stopping.signal.aborted) {
      // stop() bounds the wait and aborts everything at its timeout.
      await Promise.race([held, once(this.#aborting.signal)]);
    } else if (ctx.held) {
      await settlesWithin(held, Math.max(0, this.#o.revokeTimeoutMs - 1000));
    }
    abort.abort(new JobAbortedError(`partition ${ctx.shard} of ${queue} handed over`));
    this.#dispatcher.dropWaiting((task) => task.source === source);
    await this.#dispatcher.idle((task) => task.source === source);
    if (consumer.unsettled > 0) conn.unsafeDestroy();
    await consumer.close();
    await settlesWithin(conn.close(), 1000).then((closed) => closed || conn.unsafeDestroy());
  }

  #onDelivery(source: Source, delivery: Delivery): void {
    if (source.aborted?.aborted === true) return; // returned with the partition's connection
    if (source.aborted === undefined && this.#stopping.signal.aborted) {
      delivery.requeue();
      return;
    }
    const job = decode(delivery.message.body);
    if (typeof job === 'string') {
      void this.#deadInvalid(source, delivery, job);
      return;
    }
    if (job.runAt > Date.now()) {
      // Back from a tier early: on to the next one.
      void this.#forward(source, job, delivery);
      return;
    }
    const reg = this.#rt.handlers.get(job.handler);
    if (reg === undefined) {
      // A partition queue carries every handler of its queue; one this process lacks waits for one that has it.
      void this.#forward(source, { ...job, runAt: Date.now() + UNKNOWN_HANDLER_RETRY_MS }, delivery);
      return;
    }
    const task: SourcedTask = {
      source,
      handler: reg.name,
      maxConcurrency: reg.maxConcurrency,
      line:
        reg.ordered && job.key !== undefined && source.partition !== undefined
          ? `${source.from}|${job.key}`
          : undefined,
      start: () => this.#attempt(source, reg, job, delivery),
      drop: () => this.#giveBack(source, delivery),
    };
    this.#dispatcher.add(task);
  }

  /**
   * Republish a job to its queue or tier, then acknowledge the delivery. If
   * that fails, a plain queue's delivery is put back; a partition's is tried
   * again (it holds its place in its key's line) until its partition ends.
   */
  async #forward(
    source: Source,
    job: JobMessage,
    delivery: Delivery,
    extra?: Record<string, unknown>,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#broker.timed(this.#broker.place(source.from, source.queue, job, extra));
        delivery.ack();
        return true;
      } catch (error) {
        this.#reportError(error);
        if (source.aborted === undefined || delivery.lost.aborted || source.aborted.aborted) {
          this.#giveBack(source, delivery);
          return false;
        }
        await sleep(Math.min(2000, 100 * 2 ** attempt), source.aborted).catch(() => undefined);
      }
    }
  }

  /** Put a delivery back: a plain queue's at once; a partition's when its connection drops (in order). */
  #giveBack(source: Source, delivery: Delivery): void {
    if (source.aborted === undefined) delivery.requeue();
  }

  async #deadInvalid(source: Source, delivery: Delivery, problem: string): Promise<void> {
    const error = new InvalidRecordError(`${source.from} message ${delivery.message.messageId ?? '(no id)'}`, problem);
    this.#rt.emit('record:invalid', { error });
    const body = Buffer.from(
      JSON.stringify({ invalid: problem, diedAt: Date.now(), raw: excerpt(delivery.message.body) }),
    );
    await this.#toDead(source, delivery, delivery.message.messageId ?? `invalid-${Date.now()}`, body);
  }

  /** Publish a body to the source queue's dead queue, then acknowledge the delivery (give it back if that fails). */
  async #toDead(source: Source, delivery: Delivery, messageId: string, body: Buffer): Promise<boolean> {
    try {
      await this.#broker.ensureWork(source.from, source.queue);
      await this.#broker.send({ routingKey: this.#topology.deadQueue(source.queue), messageId }, body);
      delivery.ack();
      return true;
    } catch (error) {
      this.#reportError(error);
      this.#giveBack(source, delivery);
      return false;
    }
  }

  /** Run a job (an ordered one again after each backoff, holding its line) and settle its delivery. */
  async #attempt(source: Source, reg: CompiledRegistration, message: ReceivedJob, delivery: Delivery): Promise<void> {
    const rt = this.#rt;
    // Channel lost, stop past its timeout, or the partition ended (a waiting job whose channel is gone starts as a no-op).
    const signal = delivery.lost;
    const owned = source.owned;
    const extras: RunExtras = {
      signal,
      ...(source.partition === undefined ? {} : { partition: source.partition }),
      ...(source.token === undefined ? {} : { token: source.token }),
      owned: owned === undefined ? () => !signal.aborted : () => !signal.aborted && owned(),
    };
    let job = message;
    job.ordered = reg.ordered;
    for (;;) {
      if (signal.aborted || owned?.() === false) {
        this.#giveBack(source, delivery);
        return;
      }
      const outcome = await rt.run(job, extras);
      if (outcome.type === 'retry' && reg.ordered && job.key !== undefined && source.partition !== undefined) {
        // The line waits for this job: keep it (unacknowledged) and run it again here after the backoff.
        const nextRunAt = Date.now() + outcome.delayMs;
        rt.report(job, outcome, nextRunAt);
        job = job.failed(errorInfo(outcome.error, Date.now()), nextRunAt);
        await sleep(outcome.delayMs, signal).catch(() => undefined);
        continue;
      }
      await this.#settle(source, delivery, job, outcome);
      return;
    }
  }

  async #settle(source: Source, delivery: Delivery, job: ReceivedJob, outcome: AttemptOutcome): Promise<void> {
    const rt = this.#rt;
    switch (outcome.type) {
      case 'completed':
        delivery.ack();
        rt.report(job, outcome);
        return;
      case 'aborted':
        this.#giveBack(source, delivery);
        rt.report(job, outcome);
        return;
      case 'retry': {
        const now = Date.now();
        const nextRunAt = now + outcome.delayMs;
        const next = job.failed(errorInfo(outcome.error, now), nextRunAt);
        if (await this.#forward(source, next, delivery)) rt.report(job, outcome, nextRunAt);
        return;
      }
      case 'dead': {
        const now = Date.now();
        const dead = job.failed(errorInfo(outcome.error, now), job.runAt);
        const body = encode(dead, { deadReason: outcome.reason, diedAt: now });
        if (await this.#toDead(source, delivery, job.id, body)) rt.report(job, outcome);
        return;
      }
    }
  }

  #periodicTarget(p: CompiledPeriodic): string {
    const queue = this.#periodicQueue(p);
    const n = this.#o.partitions;
    if (n === 0) return this.#topology.handlerQueue(queue, p.job.handler);
    return this.#topology.partitionQueue(queue, partitionOf(p.job.key ?? p.name, n));
  }

  async #publishTicks(periodic: CompiledPeriodic, ticks: readonly number[]): Promise<void> {
    const rt = this.#rt;
    for (const tick of ticks) {
      const record = rt.periodicRecord(periodic, tick);
      await this.#broker.send(
        {
          exchange: this.#topology.cronExchange,
          routingKey: periodic.name,
          headers: { [TICK_HEADER]: tick },
          messageId: record.id,
        },
        encodeRecord(record),
      );
      rt.emit('job:enqueued', {
        job: { id: record.id, handler: record.handler, queue: record.queue, key: record.key, args: record.args },
        runAt: new Date(record.runAt),
      });
    }
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────

  async stop(timeoutMs: number): Promise<StopResult> {
    this.#stopping.abort();
    await this.#cron?.stop().catch((error: unknown) => this.#reportError(error));
    // Nothing new arrives; what waits for a slot in a plain queue goes back at once (a partition's waits its turn).
    await Promise.all([...this.#consumers].map((c) => c.cancel()));
    this.#dispatcher.dropWaiting((task) => task.source.aborted === undefined);
    let aborted = 0;
    if (!(await settlesWithin(this.#dispatcher.idle(), timeoutMs))) {
      aborted = this.#dispatcher.running;
      this.#aborting.abort(new JobAbortedError(`the queue stopped (stop timeout ${timeoutMs} ms)`));
      await this.#dispatcher.idle();
    }
    await Promise.all([...this.#consumers].map((c) => c.close()));
    this.#consumers.clear();
    await Promise.all(this.#workers.map((w) => w.stop()));
    return { aborted, dropped: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopping.abort();
    this.#aborting.abort(new JobAbortedError('the queue closed'));
    await this.#cron?.stop().catch(() => undefined);
    await Promise.all([...this.#consumers].map((c) => c.close()));
    await Promise.all(this.#workers.map((w) => w.stop().catch(() => undefined)));
    if (this.#ownsDiscovery) await this.#discovery?.close().catch(() => undefined);
    await this.#broker.close();
  }

  /** The coordinator's discovery connection (made on first use; closed with the adapter unless it was given). */
  async #coordination(): Promise<Discovery> {
    if (this.#discovery !== undefined) return this.#discovery;
    const d = this.#o.discovery;
    if (typeof d === 'object') {
      this.#discovery = d;
      return d;
    }
    this.#discovery = await createDiscovery(d as string);
    this.#ownsDiscovery = true;
    return this.#discovery;
  }

  // ── counts: what AMQP can tell ───────────────────────────────────────────

  /**
   * Messages ready (not delivered to a consumer) and consumers of every broker
   * queue this process knows: the work or partition queues and dead queues of
   * the queues it consumes or has published to, and the delay tiers declared so
   * far. This is what AMQP can count without taking messages off a queue;
   * per-handler and per-state counts of the admin API need more (see the README).
   */
  async brokerCounts(): Promise<BrokerQueueCount[]> {
    const t = this.#topology;
    const names = new Set<string>(this.#broker.readyNames());
    if (this.#runtime !== undefined) {
      for (const queue of this.#consumedQueues()) {
        names.add(t.deadQueue(queue));
        if (this.#o.partitions === 0) {
          for (const handler of this.#rt.handlers.keys()) names.add(t.handlerQueue(queue, handler));
        } else {
          for (let p = 0; p < this.#o.partitions; p++) names.add(t.partitionQueue(queue, p));
        }
      }
    }
    for (const name of this.#broker.deadQueues) names.add(name);
    const counts: BrokerQueueCount[] = [];
    let channel: Channel | undefined;
    try {
      for (const name of [...names].sort()) {
        if (channel?.active !== true) channel = await this.#broker.connection.acquire();
        try {
          const { messageCount, consumerCount } = await channel.queueDeclare({ queue: name, passive: true });
          counts.push({ name, kind: this.#kindOf(name), messages: messageCount, consumers: consumerCount });
        } catch (error) {
          // A queue nobody declared yet holds nothing (the broker closed the channel; the next name takes a new one).
          if ((error as { code?: unknown }).code !== 'NOT_FOUND')
            throw this.#broker.mapError(error, `to count ${name}`);
        }
      }
    } finally {
      if (channel?.active === true) await channel.close().catch(() => undefined);
    }
    return counts;
  }

  #kindOf(name: string): BrokerQueueCount['kind'] {
    const p = this.#topology.prefix;
    if (name.startsWith(`${p}.dead.`)) return 'dead';
    if (name.startsWith(`${p}.delay.`)) return 'delay';
    if (name.startsWith(`${p}.cron.`)) return 'cron';
    return this.#o.partitions > 0 ? 'partition' : 'work';
  }

  // ── admin: not offered (see the package README) ──────────────────────────

  stats(): Promise<JobStats> {
    return Promise.reject(noAdmin('stats()'));
  }

  list(): Promise<JobPage> {
    return Promise.reject(noAdmin('list()'));
  }

  retryDead(): Promise<number> {
    return Promise.reject(noAdmin('retryDead()'));
  }

  deleteDead(): Promise<number> {
    return Promise.reject(noAdmin('deleteDead()'));
  }

  pause(): Promise<void> {
    return Promise.reject(
      new UnsupportedFeatureError(
        'amqp',
        'pause',
        'RabbitMQ keeps no shared state to pause a handler across consumers',
      ),
    );
  }

  unpause(): Promise<void> {
    return this.pause();
  }
}

/** One broker queue as {@link AmqpJobAdapter.brokerCounts} reports it. */
export interface BrokerQueueCount {
  readonly name: string;
  /** `work` (plain mode), `partition`, `dead`, `delay` (a tier) or `cron`. */
  readonly kind: 'work' | 'partition' | 'dead' | 'delay' | 'cron';
  /** Messages ready, not counting those delivered to a consumer and not yet acknowledged. */
  readonly messages: number;
  readonly consumers: number;
}

/** A dispatcher task with where its delivery came from. */
interface SourcedTask extends Task {
  readonly source: Source;
}

/** Resolves when `signal` aborts. */
function once(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function noAdmin(what: string): UnsupportedFeatureError {
  return new UnsupportedFeatureError(
    'amqp',
    'admin',
    `${what} needs to read queued jobs in place, and AMQP can only take them off a queue; ` +
      'the RabbitMQ management tools show counts per queue',
  );
}

/** Prefetch of a handler's consumer: its share of the queue's concurrency. */
function prefetchOf(concurrency: number, maxConcurrency: number): number {
  return maxConcurrency > 0 ? Math.min(concurrency, maxConcurrency) : concurrency;
}

/**
 * Create an {@link AmqpJobAdapter} from an `amqp://` or `amqps://` URL and the
 * queue's options (`adapter: { … }` are {@link AmqpJobOptions}); what
 * `createJobQueue()` of `@shardwork/jobs` calls for those protocols.
 */
export function jobAdapterFromUrl(url: string, options: CompiledQueueOptions): AmqpJobAdapter {
  return new AmqpJobAdapter({ ...(options.adapter as AmqpJobOptions), url });
}
