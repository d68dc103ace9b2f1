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
 * - **Delays** (`performAt`, `performIn`, retry backoff) without plugins: a
 *   delayed job is published once into a chain of tier queues with TTLs of
 *   `2^k` ms, one for each binary digit of its delay, through which the broker
 *   moves it (dead-lettering) into its work queue when it is due (topology.ts).
 *
 * What becomes of each delivery is runner.ts; a partition's consumption and
 * how it ends, partition.ts; periodic jobs, cron.ts.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { settlesWithin } from '@shardwork/core/backend';
import {
  type AdapterRuntime,
  type CompiledPeriodic,
  type CompiledQueueOptions,
  type CompiledRegistration,
  consumedQueues,
  type EnqueueResult,
  type FeatureRefusal,
  JobAbortedError,
  type JobAdapter,
  type JobFeature,
  type JobPage,
  type JobRecord,
  type JobState,
  type JobStats,
  PartitionedConsumption,
  partitionOf,
  periodicQueue,
  QueueUnavailableError,
  refOf,
  type StopResult,
  UnsupportedFeatureError,
} from '@shardwork/jobs/adapter';
import type { Channel, Connection } from 'rabbitmq-client';
import { Broker } from './broker.js';
import { QueueConsumer } from './consumer.js';
import { CronLeader } from './cron.js';
import { type AmqpJobOptions, type CompiledAmqpJobOptions, compileAmqpJobOptions } from './options.js';
import { consumePartition, type PartitionHost } from './partition.js';
import { JobRunner, type Source } from './runner.js';
import { Topology } from './topology.js';

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
  #runner: JobRunner | undefined;
  #partitioned: PartitionedConsumption | undefined;
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
      'jobId',
      'lookup',
      'results',
      'cancel',
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

  /** Every feature of the registration RabbitMQ cannot honour, named at once (the queue gathers all registrations). */
  checkRegistration(registration: CompiledRegistration): void {
    const refusals: FeatureRefusal[] = [];
    if (registration.uniqueKey !== undefined) {
      refusals.push({
        feature: 'unique',
        why: 'RabbitMQ keeps no state to hold a unique key while a job is queued or running; use redis://',
      });
    }
    if (registration.priority !== 1) {
      refusals.push({
        feature: 'priority',
        why: 'quorum queues on RabbitMQ 3.10 have no message priorities; use a queue per priority',
      });
    }
    if (registration.ordered && this.#o.partitions === 0) {
      refusals.push({
        feature: 'ordered',
        why: 'per-key order needs partitioned mode (?partitions=N with a discovery URL)',
      });
    }
    if (refusals.length > 0) throw new UnsupportedFeatureError('amqp', refusals);
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
    if (records.some((r) => r.idGiven === true)) {
      throw new UnsupportedFeatureError(
        'amqp',
        'jobId',
        'a broker cannot look a job up by id, so a second perform with the same id would add a second job; use redis://',
      );
    }
    if (records.some((r) => r.priority !== undefined)) {
      throw new UnsupportedFeatureError(
        'amqp',
        'jobPriority',
        'quorum queues on RabbitMQ 3.10 have no message priorities; use a handler or queue per priority, or redis://',
      );
    }
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
    const runner = new JobRunner(
      {
        runtime: rt,
        broker: this.#broker,
        topology: this.#topology,
        stopping: this.#stopping.signal,
        reportError: (error) => this.#reportError(error),
      },
      rt.options.concurrency,
    );
    this.#runner = runner;
    const conn = this.#broker.connection;
    await this.#broker.connect(o.startTimeoutMs);
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
      const host: PartitionHost = {
        broker: this.#broker,
        topology: this.#topology,
        runner,
        prefetch: rt.options.concurrency,
        revokeTimeoutMs: o.revokeTimeoutMs,
        stopping: this.#stopping.signal,
        aborting: this.#aborting.signal,
        // Ours alone to end: stop() and close() must not close its channel gracefully (that requeues at the back).
        consume: (source, prefetch, connection) => this.#consume(source, prefetch, connection, false),
      };
      this.#partitioned = new PartitionedConsumption({
        adapter: 'amqp',
        partitions: o.partitions,
        leaseTtlMs: o.leaseTtlMs,
        revokeTimeoutMs: o.revokeTimeoutMs,
        discovery: o.discovery,
        logger: rt.options.logger,
        service: (queue) => this.#topology.service(queue),
        consume: (queue, ctx) => consumePartition(host, queue, ctx),
        onError: (error) => this.#reportError(error),
        onInvalidRecord: (event) => rt.emit('record:invalid', event),
      });
      await this.#partitioned.start(queues, began + o.startTimeoutMs);
    }
    if (rt.periodics.length > 0) {
      this.#cron = new CronLeader({
        connection: conn,
        topology: this.#topology,
        periodics: rt.periodics,
        target: (p) => this.#periodicTarget(p),
        declareTarget: (channel, target, p) => this.#broker.declareWork(channel, target, this.#periodicQueue(p)),
        tickRecord: (p, tick) => rt.periodicRecord(p, tick),
        enqueued: (record) => rt.emit('job:enqueued', { job: refOf(record), runAt: new Date(record.runAt) }),
        send: (envelope, body) => this.#broker.send(envelope, body),
        writeTimeoutMs: o.enqueueTimeoutMs,
        reportError: (error) => this.#reportError(error),
      });
      await this.#cron.start().catch((error: unknown) => {
        throw this.#broker.mapError(error, 'to set up periodic jobs');
      });
    }
  }

  /** Subscribe to one broker queue until stop (`shared`: closed by stop() and close(), unlike a partition's). */
  #consume(source: Source, prefetch: number, conn: Connection = this.#broker.connection, shared = true): QueueConsumer {
    const runner = this.#runner;
    if (runner === undefined) throw new Error('AmqpJobAdapter consumed before start');
    const consumer = new QueueConsumer(conn, {
      queue: source.from,
      prefetch,
      abort:
        source.aborted === undefined ? this.#aborting.signal : AbortSignal.any([this.#aborting.signal, source.aborted]),
      declare: (channel) => this.#broker.declareWork(channel, source.from, source.queue),
      onMessage: (delivery) => runner.onDelivery(source, delivery),
      onError: (error) => this.#reportError(this.#broker.mapError(error, `consuming ${source.from}`)),
    });
    if (shared) this.#consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  #periodicTarget(p: CompiledPeriodic): string {
    const queue = this.#periodicQueue(p);
    const n = this.#o.partitions;
    if (n === 0) return this.#topology.handlerQueue(queue, p.job.handler);
    return this.#topology.partitionQueue(queue, partitionOf(p.job.key ?? p.name, n));
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────

  async stop(timeoutMs: number): Promise<StopResult> {
    const began = Date.now();
    this.#stopping.abort();
    await this.#cron?.stop().catch((error: unknown) => this.#reportError(error));
    const runner = this.#runner;
    // Nothing new arrives; what waits for a slot in a plain queue goes back at once (a partition's waits its turn).
    await Promise.all([...this.#consumers].map((c) => c.cancel()));
    runner?.dispatcher.dropWaiting((task) => task.source.aborted === undefined);
    let aborted = 0;
    if (runner !== undefined && !(await settlesWithin(runner.dispatcher.idle(), timeoutMs))) {
      aborted = runner.dispatcher.running;
      this.#aborting.abort(new JobAbortedError(`the queue stopped (stop timeout ${timeoutMs} ms)`));
      await runner.dispatcher.idle();
    }
    // A republish in flight acknowledges its delivery before the channel closes (else the job would be there twice).
    await settlesWithin(runner?.moves() ?? Promise.resolve(), Math.max(1000, timeoutMs - (Date.now() - began)));
    await Promise.all([...this.#consumers].map((c) => c.close()));
    this.#consumers.clear();
    await this.#partitioned?.stop();
    return { aborted, dropped: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopping.abort();
    this.#aborting.abort(new JobAbortedError('the queue closed'));
    await this.#cron?.stop().catch(() => undefined);
    await Promise.all([...this.#consumers].map((c) => c.close()));
    await this.#partitioned?.close();
    await this.#broker.close();
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
    if (name.startsWith(`${p}.wait.`) || name.startsWith(`${p}.delay.`)) return 'delay';
    if (name.startsWith(`${p}.cron.`)) return 'cron';
    return this.#o.partitions > 0 ? 'partition' : 'work';
  }

  // ── admin: not offered (see the package README) ──────────────────────────

  stats(): Promise<JobStats> {
    return Promise.reject(noAdmin('stats()'));
  }

  list(state: JobState): Promise<JobPage> {
    if (state === 'completed' || state === 'cancelled') {
      return Promise.reject(
        new UnsupportedFeatureError(
          'amqp',
          'results',
          `list('${state}') needs finished jobs kept, and the broker keeps nothing once a job is acknowledged; use redis://`,
        ),
      );
    }
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

function noAdmin(what: string): UnsupportedFeatureError {
  return new UnsupportedFeatureError(
    'amqp',
    'admin',
    `${what} needs to read queued jobs in place, and AMQP can only take them off a queue; ` +
      'the RabbitMQ management tools show counts per queue, and redis:// offers the admin API',
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
