/**
 * {@link Broker}: this adapter's side of RabbitMQ that is not consuming: the
 * shared connection (and a way to open more), the confirming publisher with
 * one sweeping timer for every pending confirm, the declarations (once per
 * connection, concurrent callers sharing one), the mapping of broker errors to
 * ours, and putting a job where it waits until it is due.
 *
 * @module
 */

import { hostname } from 'node:os';
import { errorMessage, ShardworkError, settlesWithin, sleep } from '@shardwork/core';
import { QueueUnavailableError } from '@shardwork/jobs';
import { type Channel, Connection, type Envelope, type Publisher } from 'rabbitmq-client';
import { AmqpRefusedError, REFUSALS } from './errors.js';
import { type Encodable, encode } from './message.js';
import type { CompiledAmqpJobOptions } from './options.js';
import { TIER_HEADER, type Topology, tierFor } from './topology.js';

/** Content type of job bodies (rabbitmq-client hands `application/json` over parsed). */
const CONTENT_TYPE = 'application/json';

/** Publishes of one message the broker may reject (`NACK`) before we give up. */
const NACK_RETRIES = 6;

/** See the module documentation. */
export class Broker {
  readonly #o: CompiledAmqpJobOptions;
  readonly #topology: Topology;
  readonly #reportError: (error: unknown) => void;
  #conn: Connection | undefined;
  #publisher: Publisher | undefined;
  /** Broker queues declared on the current connection, and those whose declaration is done. */
  #declared = new Map<string, Promise<void>>();
  #ready = new Set<string>();
  /** Dead queues declared by this process. */
  readonly deadQueues = new Set<string>();

  constructor(options: CompiledAmqpJobOptions, topology: Topology, reportError: (error: unknown) => void) {
    this.#o = options;
    this.#topology = topology;
    this.#reportError = reportError;
  }

  /** Whether a queue's declaration is done on the current connection. */
  isReady(name: string): boolean {
    return this.#ready.has(name);
  }

  /** Queues declared on the current connection. */
  readyNames(): readonly string[] {
    return [...this.#ready];
  }

  get connection(): Connection {
    this.#conn ??= this.openConnection('', () => {
      // A restarted broker kept its durable queues, but a deleted one must be declared again.
      this.#declared = new Map();
      this.#ready = new Set();
    });
    return this.#conn;
  }

  /** A connection to the broker that reconnects with backoff and reports one error per outage. */
  openConnection(name: string, onReconnect?: () => void): Connection {
    const o = this.#o;
    const conn = new Connection({
      hostname: o.hostname,
      port: o.port,
      username: o.username,
      password: o.password,
      vhost: o.vhost,
      tls: o.tls,
      heartbeat: o.heartbeat,
      connectionTimeout: o.connectTimeoutMs,
      acquireTimeout: Math.max(100, o.enqueueTimeoutMs),
      retryLow: 100,
      retryHigh: 2000,
      connectionName: `shardwork ${hostname()} ${process.pid}${name === '' ? '' : ` ${name}`}`,
    });
    let connectedOnce = false;
    let reported = false;
    conn.on('error', (error: unknown) => {
      if (reported) return;
      reported = true;
      this.#reportError(this.unavailable(error));
    });
    conn.on('connection', () => {
      reported = false;
      if (connectedOnce) onReconnect?.();
      connectedOnce = true;
    });
    return conn;
  }

  unavailable(error: unknown): QueueUnavailableError {
    if (error instanceof QueueUnavailableError) return error;
    return new QueueUnavailableError('amqp', `${this.#o.target}: ${errorMessage(error)}`, error);
  }

  /** An error as the caller should see it: a refusal as it is, anything else as "unavailable". */
  mapError(error: unknown, what: string): Error {
    if (error instanceof ShardworkError) return error;
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && REFUSALS.has(code)) return new AmqpRefusedError(what, error);
    return this.unavailable(error);
  }

  get #publish(): Publisher {
    this.#publisher ??= this.connection.createPublisher({ confirm: true, maxAttempts: 1 });
    return this.#publisher;
  }

  /** Publish and wait for the broker's confirm (see {@link Broker.timed} for the bound). */
  send(envelope: Envelope, body: Buffer): Promise<void> {
    envelope.durable = true;
    envelope.contentType = CONTENT_TYPE;
    return this.#publish.send(envelope, body).catch((error: unknown) => this.#resend(envelope, body, error, 1));
  }

  /**
   * A quorum queue that has just been declared (or is electing a leader)
   * rejects publishes for a moment (`NACK`, "message rejected by server"):
   * nothing was stored, so publish again, a few times with backoff.
   */
  async #resend(envelope: Envelope, body: Buffer, error: unknown, attempt: number): Promise<void> {
    if ((error as { code?: unknown } | null)?.code !== 'NACK' || attempt >= NACK_RETRIES) {
      throw this.mapError(error, `a publish to ${envelope.routingKey ?? envelope.exchange}`);
    }
    await sleep(25 * 2 ** attempt);
    return this.#publish.send(envelope, body).catch((e: unknown) => this.#resend(envelope, body, e, attempt + 1));
  }

  /** Publishes waiting for their confirm, with their deadlines: one sweeping timer bounds them all. */
  readonly #deadlines = new Set<{ readonly at: number; readonly fail: (error: Error) => void }>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /**
   * Bound a publish (or a batch of them) by `enqueueTimeoutMs`: the client
   * waits that long for a connection, and this covers a confirm that never
   * comes. A timer per publish would cost more than the publish; one interval
   * sweeps the deadlines while any are pending.
   */
  timed<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = {
        at: Date.now() + this.#o.enqueueTimeoutMs + 1000,
        fail: (error: Error) => reject(error),
      };
      this.#deadlines.add(entry);
      this.#sweeper ??= setInterval(() => this.#sweep(), 250);
      work.then(
        (value) => {
          this.#deadlines.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.#deadlines.delete(entry);
          reject(error);
        },
      );
    });
  }

  #sweep(): void {
    const now = Date.now();
    for (const entry of this.#deadlines) {
      if (entry.at > now) continue;
      this.#deadlines.delete(entry);
      entry.fail(this.unavailable(new Error(`no publisher confirm within ${this.#o.enqueueTimeoutMs} ms`)));
    }
    if (this.#deadlines.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Declare something once per connection (concurrent callers share the declaration). */
  #once(name: string, declare: (channel: Channel) => Promise<void>): Promise<void> {
    let pending = this.#declared.get(name);
    if (pending === undefined) {
      pending = (async () => {
        const channel = await this.connection.acquire();
        try {
          await declare(channel);
        } finally {
          if (channel.active) await channel.close().catch(() => undefined);
        }
        this.#ready.add(name);
      })().catch((error: unknown) => {
        this.#declared.delete(name);
        throw this.mapError(error, `to declare ${name}`);
      });
      this.#declared.set(name, pending);
    }
    return pending;
  }

  async #declareExchanges(channel: Channel): Promise<void> {
    const t = this.#topology;
    await channel.exchangeDeclare({ exchange: t.dueExchange, type: 'direct', durable: true });
    await channel.exchangeDeclare({ exchange: t.delayExchange, type: 'headers', durable: true });
    await channel.exchangeDeclare({ exchange: t.deadExchange, type: 'direct', durable: true });
  }

  /** Declare a work (or partition) queue with its dead queue and its binding for delayed jobs, on `channel`. */
  async declareWork(channel: Channel, target: string, queue: string): Promise<void> {
    const t = this.#topology;
    await this.#declareExchanges(channel);
    const dead = t.deadQueue(queue);
    this.deadQueues.add(dead);
    await channel.queueDeclare({ queue: dead, durable: true, arguments: t.deadArguments() });
    await channel.queueBind({ queue: dead, exchange: t.deadExchange, routingKey: dead });
    await channel.queueDeclare({
      queue: target,
      durable: true,
      arguments: t.workArguments(queue, this.#o.partitions > 0),
    });
    await channel.queueBind({ queue: target, exchange: t.dueExchange, routingKey: target });
  }

  ensureWork(target: string, queue: string): Promise<void> {
    return this.#once(target, (channel) => this.declareWork(channel, target, queue));
  }

  ensureTier(ms: number): Promise<void> {
    const t = this.#topology;
    const name = t.tierQueue(ms);
    return this.#once(name, async (channel) => {
      await this.#declareExchanges(channel);
      await channel.queueDeclare({ queue: name, durable: true, arguments: t.tierArguments(ms) });
      await channel.queueBind({
        queue: name,
        exchange: t.delayExchange,
        routingKey: '',
        arguments: { 'x-match': 'all', [TIER_HEADER]: String(ms) },
      });
    });
  }

  /** Put a job where it waits until `runAt`: its work queue if due, else the tier for the time left. */
  place(target: string, queue: string, job: Encodable, extra?: Record<string, unknown>): Promise<void> {
    // The hot path (declared, due now) stays synchronous up to the publish.
    if (!this.#ready.has(target))
      return this.ensureWork(target, queue).then(() => this.place(target, queue, job, extra));
    const body = encode(job, extra);
    const left = job.runAt - Date.now();
    if (left <= 0) return this.send({ routingKey: target, messageId: job.id }, body);
    return this.#delay(target, job.id, body, left);
  }

  async #delay(target: string, id: string, body: Buffer, left: number): Promise<void> {
    const tier = tierFor(left);
    await this.ensureTier(tier);
    await this.send(
      {
        exchange: this.#topology.delayExchange,
        routingKey: target,
        headers: { [TIER_HEADER]: String(tier) },
        messageId: id,
      },
      body,
    );
  }

  /** Close the publisher and the shared connection (bounded: a dead broker is not waited for). */
  async close(): Promise<void> {
    await this.#publisher?.close().catch(() => undefined);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    const conn = this.#conn;
    if (conn === undefined) return;
    if (!(await settlesWithin(conn.close(), 2000))) conn.unsafeDestroy();
  }
}
