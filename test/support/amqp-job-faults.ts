/**
 * Multi-process fault runs of the RabbitMQ job adapter: a private broker,
 * consumer replicas as child processes (each behind its own TCP proxy, so that
 * its connection can be cut), a producer in this process, and the checker of
 * job-faults.ts over what the handlers recorded, with the broker as the judge
 * of what is left: a job counts as lost when it never completed and the
 * broker holds no message any more. In partitioned mode the replicas
 * coordinate through a private redis-server. Every fault goes through the
 * methods here (or `JobReplica.signal`/`kill`) so that the checker knows it.
 */

import { sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { AmqpJobAdapter, tierFor } from '@shardwork/jobs-amqp';
import { type RabbitTestServer, type RedisTestServer, startRabbitServer, startRedisServer } from '@shardwork/testkit';
import { Connection } from 'rabbitmq-client';
import { analyzeRecords, ReplicaSet } from './job-faults.js';

/** Options of a cluster. */
export interface AmqpJobClusterOptions {
  readonly replicas: number;
  /** 0: plain mode (a queue per handler); else partitioned, with `seq` jobs ordered per key. */
  readonly partitions: number;
  readonly concurrency?: number;
  readonly ttlMs?: number;
  /** AMQP heartbeat, s: the broker drops a silent (paused, stalled) consumer after about twice this. @defaultValue 2 */
  readonly heartbeat?: number;
  /** Share of `work` jobs that {@link AmqpJobCluster.produce} delays (by up to 3 s, through the delay chain). @defaultValue 0 */
  readonly delayed?: number;
}

/** What {@link AmqpJobCluster.check} found. */
export interface AmqpJobCheckReport {
  readonly violations: string[];
  readonly accepted: number;
  readonly completed: number;
  /** Jobs that started more than once: allowed for jobs in flight at a fault. */
  readonly duplicates: number;
  /** Performs that rejected (the broker was down): not accepted, so not checked. */
  readonly refused: number;
  readonly ticks: number;
  /** The faults applied, one line each (for the failure message): what, the replica, when (monotonic ms). */
  readonly faultLog: string[];
}

/** See the module documentation. */
export class AmqpJobCluster extends ReplicaSet {
  readonly broker: RabbitTestServer;
  readonly redis: RedisTestServer | undefined;
  readonly prefix: string;
  readonly producer: JobQueue;
  refused = 0;
  readonly #o: Required<AmqpJobClusterOptions>;
  readonly #seqNext = new Map<string, number>();

  private constructor(
    broker: RabbitTestServer,
    redis: RedisTestServer | undefined,
    o: Required<AmqpJobClusterOptions>,
  ) {
    super('shardwork-amqpfaults-');
    this.broker = broker;
    this.redis = redis;
    this.#o = o;
    this.prefix = `af${process.pid}${Date.now().toString(36)}`;
    this.producer = createJobQueue(new AmqpJobAdapter({ ...this.#adapter(), url: this.#url(broker.port) }));
    this.producer.on('error', () => undefined);
  }

  static async start(options: AmqpJobClusterOptions): Promise<AmqpJobCluster> {
    const [broker, redis] = await Promise.all([
      startRabbitServer(),
      options.partitions > 0 ? startRedisServer() : Promise.resolve(undefined),
    ]);
    const cluster = new AmqpJobCluster(broker, redis, {
      concurrency: 8,
      ttlMs: 1000,
      heartbeat: 2,
      delayed: 0,
      ...options,
    });
    try {
      for (let i = 0; i < options.replicas; i++) await cluster.spawn();
      await Promise.all(cluster.replicas.map((r) => r.ready));
    } catch (error) {
      // Nobody else holds the cluster yet: without this its broker would outlive the test.
      await cluster.close().catch(() => undefined);
      throw error;
    }
    return cluster;
  }

  #url(port: number): string {
    const o = this.#o;
    return `amqp://guest:guest@127.0.0.1:${port}?prefix=${this.prefix}&partitions=${o.partitions}&heartbeat=${o.heartbeat}`;
  }

  #adapter(): Record<string, unknown> {
    return {
      revokeTimeoutMs: 2000,
      startTimeoutMs: 60_000,
      enqueueTimeoutMs: 15_000,
      leaseTtlMs: this.#o.ttlMs,
      ...(this.redis === undefined ? {} : { discovery: `${this.redis.url}?prefix=${this.prefix}:` }),
    };
  }

  /** Start one more consumer behind its own proxy; returns its index. */
  spawn(): Promise<number> {
    return this.spawnBehindProxy(this.broker.port, (port, recordFile) => ({
      url: this.#url(port),
      recordFile,
      concurrency: this.#o.concurrency,
      adapter: this.#adapter(),
      handlers: this.#o.partitions > 0 ? ['work', 'seq', 'tick'] : ['work', 'tick'],
    }));
  }

  /** Restart the broker (a fault of every consumer). */
  async restartBroker(options: Parameters<RabbitTestServer['restart']>[0]): Promise<void> {
    await this.faults.around('broker restart', undefined, () => this.broker.restart(options));
  }

  /** Enqueue `count` jobs (`work`, and ordered `seq` ones in partitioned mode), `perSecond` a second. */
  async produce(count: number, perSecond: number): Promise<void> {
    const gap = 1000 / perSecond;
    const began = Date.now();
    for (let i = 0; i < count; i++) {
      const ms = 5 + Math.floor(Math.random() * 30);
      let job: { handler: 'work' | 'seq'; key?: string; args: { n?: number; ms: number } };
      if (this.#o.partitions > 0 && Math.random() < 0.5) {
        const key = `s${Math.floor(Math.random() * 4)}`;
        const n = this.#seqNext.get(key) ?? 0;
        job = { handler: 'seq', key, args: { n, ms } };
        try {
          const { id } = await this.producer.perform(job);
          // Only confirmed jobs take a place in their key's order.
          this.#seqNext.set(key, n + 1);
          this.accepted.set(id, { h: 'seq', key, n });
        } catch {
          this.refused++;
        }
      } else {
        job = { handler: 'work', args: { ms }, ...(Math.random() < 0.5 ? { key: `w${i % 7}` } : {}) };
        const delay = Math.random() < this.#o.delayed ? Math.floor(Math.random() * 3000) : 0;
        try {
          const { id } = delay > 0 ? await this.producer.performIn(job, delay) : await this.producer.perform(job);
          this.accepted.set(id, { h: 'work', ...(job.key === undefined ? {} : { key: job.key }) });
        } catch {
          this.refused++;
        }
      }
      const wait = began + (i + 1) * gap - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  /**
   * Enqueue the next ordered `seq` job of `key` (running `ms`); resolves once
   * the broker confirmed it (only confirmed jobs take a place in its order).
   */
  async performSeq(key: string, ms: number): Promise<string> {
    const n = this.#seqNext.get(key) ?? 0;
    const { id } = await this.producer.perform({ handler: 'seq', key, args: { n, ms } });
    this.#seqNext.set(key, n + 1);
    this.accepted.set(id, { h: 'seq', key, n });
    return id;
  }

  /** Index of the replica that starts job `id` first (by its records), once it did. */
  async startedOn(id: string, withinMs: number): Promise<number> {
    const began = Date.now();
    for (;;) {
      const start = this.records().find((r) => r.k === 'start' && r.id === id);
      const index = start === undefined ? -1 : this.replicas.findIndex((r) => r.pid === start.pid);
      if (index >= 0) return index;
      if (Date.now() - began > withinMs) throw new Error(`job ${id} did not start within ${withinMs} ms`);
      await sleep(20);
    }
  }

  /**
   * Index of the replica that leads the cron schedule (holds the token of
   * `p.cron.lock`), as the broker sees it: the active consumer's channel, its
   * connection, and the pid in that connection's name.
   */
  async cronLeader(): Promise<number | undefined> {
    const rows = async (...args: string[]): Promise<string[][]> =>
      (await this.broker.ctl(...args, '-q', '--no-table-headers'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.split('\t'));
    const lock = `${this.prefix}.cron.lock`;
    const consumers = await rows('list_consumers', 'queue_name', 'channel_pid', 'active');
    const channel = consumers.find(([queue, , active]) => queue === lock && active === 'true')?.[1];
    if (channel === undefined) return undefined;
    const connection = (await rows('list_channels', 'pid', 'connection')).find(([pid]) => pid === channel)?.[1];
    const properties = (await rows('list_connections', 'pid', 'client_properties')).find(
      ([pid]) => pid === connection,
    )?.[1];
    const pid = Number(/"connection_name","shardwork \S+ (\d+)/.exec(properties ?? '')?.[1]);
    const index = this.replicas.findIndex((r) => r.pid === pid);
    return index < 0 ? undefined : index;
  }

  /** Jobs neither completed nor dead by the records. */
  #open(): string[] {
    const done = new Set(
      this.records()
        .filter((r) => r.k === 'done' || r.k === 'dead')
        .map((r) => r.id),
    );
    return [...this.accepted.keys()].filter((id) => !done.has(id));
  }

  /** Wait until every accepted job completed (or `withinMs` passes). */
  async settle(withinMs: number): Promise<void> {
    const began = Date.now();
    while (this.#open().length > 0 && Date.now() - began < withinMs) await sleep(200);
  }

  /** Messages ready in the broker queues of the cluster: work or partition queues, and every tier. */
  async messagesLeft(): Promise<number> {
    const conn = new Connection({ url: this.broker.url, retryLow: 100, retryHigh: 500 });
    conn.on('error', () => undefined);
    const names =
      this.#o.partitions > 0
        ? Array.from({ length: this.#o.partitions }, (_, p) => `${this.prefix}.q.default.p${p}`)
        : [`${this.prefix}.q.default.work`, `${this.prefix}.q.default.tick`];
    // The delay chain's tiers (up to the 3 s delays of produce()).
    for (let ms = tierFor(1); ms <= 2 ** 12; ms *= 2) names.push(`${this.prefix}.wait.${ms}`);
    let left = 0;
    try {
      for (const queue of names) {
        const channel = await conn.acquire();
        try {
          left += (await channel.queueDeclare({ queue, passive: true })).messageCount;
        } catch {
          // never declared: nothing in it
        } finally {
          if (channel.active) await channel.close().catch(() => undefined);
        }
      }
    } finally {
      await conn.close();
    }
    return left;
  }

  /**
   * Check JOBS.md's promises: nothing lost (a job without a recorded
   * completion counts as completed only if its handler ended and the broker
   * holds no message any more: a replica killed between its acknowledgement
   * and its record line), order per key, one enqueue per tick.
   */
  async check(): Promise<AmqpJobCheckReport> {
    const records = this.records();
    const violations: string[] = [];
    const done = new Set(records.filter((r) => r.k === 'done' || r.k === 'dead').map((r) => r.id));
    const ended = new Set(records.filter((r) => r.k === 'end').map((r) => r.id));
    const left = await this.messagesLeft();
    let completed = 0;
    for (const [id, job] of this.accepted) {
      if (done.has(id) || (ended.has(id) && left === 0)) completed++;
      else violations.push(`lost: ${job.h} ${id} accepted but never completed (${left} messages left in the broker)`);
    }
    const analysis = analyzeRecords(this.accepted, records, { fenced: false, faults: this.faults });
    return {
      violations: [...violations, ...analysis.violations],
      accepted: this.accepted.size,
      completed,
      duplicates: analysis.duplicates,
      refused: this.refused,
      ticks: analysis.ticks,
      faultLog: this.faults.spans.map((f) => {
        const replica = this.replicas.findIndex((r) => r.pid === f.pid);
        const who = f.pid === undefined ? 'the broker' : `replica ${replica} (pid ${f.pid})`;
        return `fault: ${f.what} of ${who} from ${f.from.toFixed(1)} to ${f.to.toFixed(1)}`;
      }),
    };
  }

  close(): Promise<void> {
    return this.closeWith(this.broker, this.redis);
  }
}
