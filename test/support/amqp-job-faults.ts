/**
 * Multi-process fault runs of the RabbitMQ job adapter: a private broker,
 * consumer replicas as child processes (each behind its own TCP proxy, so that
 * its connection can be cut), a producer in this process, and the checker of
 * job-faults.ts over what the handlers recorded, with the broker as the judge
 * of what is left: a job counts as lost when it never completed and the
 * broker holds no message any more. In partitioned mode the replicas
 * coordinate through a private redis-server.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { AmqpJobAdapter, tierFor } from '@shardwork/jobs-amqp';
import { Connection } from 'rabbitmq-client';
import { type AcceptedJob, analyzeRecords, JobReplica, readRecords } from './job-faults.js';
import { type RabbitTestServer, startRabbitServer } from './rabbitmq-server.js';
import { type RedisTestServer, startRedisServer } from './redis-server.js';
import { TcpProxy } from './tcp-proxy.js';

/** Options of a cluster. */
export interface AmqpJobClusterOptions {
  readonly replicas: number;
  /** 0: plain mode (a queue per handler); else partitioned, with `seq` jobs ordered per key. */
  readonly partitions: number;
  readonly concurrency?: number;
  readonly ttlMs?: number;
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
}

/** See the module documentation. */
export class AmqpJobCluster {
  readonly broker: RabbitTestServer;
  readonly redis: RedisTestServer | undefined;
  readonly prefix: string;
  readonly dir: string;
  readonly producer: JobQueue;
  readonly replicas: JobReplica[] = [];
  readonly proxies: TcpProxy[] = [];
  readonly accepted = new Map<string, AcceptedJob>();
  refused = 0;
  readonly #o: Required<AmqpJobClusterOptions>;
  readonly #seqNext = new Map<string, number>();

  private constructor(
    broker: RabbitTestServer,
    redis: RedisTestServer | undefined,
    o: Required<AmqpJobClusterOptions>,
  ) {
    this.broker = broker;
    this.redis = redis;
    this.#o = o;
    this.prefix = `af${process.pid}${Date.now().toString(36)}`;
    this.dir = mkdtempSync(join(tmpdir(), 'shardwork-amqpfaults-'));
    this.producer = createJobQueue(new AmqpJobAdapter({ ...this.#adapter(), url: this.#url(broker.port) }));
    this.producer.on('error', () => undefined);
  }

  static async start(options: AmqpJobClusterOptions): Promise<AmqpJobCluster> {
    const [broker, redis] = await Promise.all([
      startRabbitServer(),
      options.partitions > 0 ? startRedisServer() : Promise.resolve(undefined),
    ]);
    const cluster = new AmqpJobCluster(broker, redis, { concurrency: 8, ttlMs: 1000, ...options });
    for (let i = 0; i < options.replicas; i++) await cluster.spawn();
    await Promise.all(cluster.replicas.map((r) => r.ready));
    return cluster;
  }

  #url(port: number): string {
    const o = this.#o;
    return `amqp://guest:guest@127.0.0.1:${port}?prefix=${this.prefix}&partitions=${o.partitions}&heartbeat=2`;
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
  async spawn(): Promise<number> {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: this.broker.port });
    const index = this.replicas.length;
    this.proxies[index] = proxy;
    this.replicas[index] = new JobReplica({
      url: this.#url(proxy.port),
      recordFile: join(this.dir, `replica-${index}.jsonl`),
      concurrency: this.#o.concurrency,
      adapter: this.#adapter(),
      handlers: this.#o.partitions > 0 ? ['work', 'seq', 'tick'] : ['work', 'tick'],
    });
    return index;
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
        try {
          const { id } = await this.producer.perform(job);
          this.accepted.set(id, { h: 'work', ...(job.key === undefined ? {} : { key: job.key }) });
        } catch {
          this.refused++;
        }
      }
      const wait = began + (i + 1) * gap - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  /** Jobs neither completed nor dead by the records. */
  #open(): string[] {
    const done = new Set(
      readRecords(this.dir, this.replicas.length)
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
    for (let ms = tierFor(1); ms <= 2 ** 12; ms *= 2) names.push(`${this.prefix}.delay.${ms}`);
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
    const records = readRecords(this.dir, this.replicas.length);
    const violations: string[] = [];
    const done = new Set(records.filter((r) => r.k === 'done' || r.k === 'dead').map((r) => r.id));
    const ended = new Set(records.filter((r) => r.k === 'end').map((r) => r.id));
    const left = await this.messagesLeft();
    let completed = 0;
    for (const [id, job] of this.accepted) {
      if (done.has(id) || (ended.has(id) && left === 0)) completed++;
      else violations.push(`lost: ${job.h} ${id} accepted but never completed (${left} messages left in the broker)`);
    }
    const analysis = analyzeRecords(this.accepted, records, { fenced: false });
    return {
      violations: [...violations, ...analysis.violations],
      accepted: this.accepted.size,
      completed,
      duplicates: analysis.duplicates,
      refused: this.refused,
      ticks: analysis.ticks,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop()));
    await this.producer.stop({ timeoutMs: 0 }).catch(() => undefined);
    await Promise.all(this.proxies.map((p) => p.close()));
    await this.broker.stop();
    await this.redis?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
