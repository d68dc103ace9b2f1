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
import { BackendRefusedError, errorMessage, ShardworkError, sleep } from '@shardwork/core';
import { retrying, settlesWithin } from '@shardwork/core/backend';
import { QueueUnavailableError } from '@shardwork/jobs/adapter';
import { type Channel, Connection, type Envelope, type Publisher } from 'rabbitmq-client';
import { AmqpRefusedError, REFUSALS } from './errors.js';
import { type Encodable, encode } from './message.js';
import type { CompiledAmqpJobOptions } from './options.js';
import { delayRoute, type Topology } from './topology.js';

/** Content type of job bodies (rabbitmq-client hands `application/json` over parsed). */
const CONTENT_TYPE = 'application/json';

/** Publishes of one message the broker may reject (`NACK`) before we give up. */
const NACK_RETRIES = 6;

/**
 * rabbitmq-client's codes for a publish that was written while its channel or
 * connection then broke before the broker's confirm: the message may be
 * stored (a `CLOSED`, `CLOSING` or acquire `TIMEOUT` means it was never sent).
 */
const UNCONFIRMED = new Set([
  'CH_CLOSE',
  'CONN_CLOSE',
  'READ_END',
  'SOCKET_TIMEOUT',
  'FRAME_ERROR',
  'UNEXPECTED_FRAME',
]);

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
  /** The broker refused our login: every publish and start fails at once with this until a connection succeeds. */
  #refused: BackendRefusedError | undefined;
  readonly #refusalWaiters: ((error: BackendRefusedError) => void)[] = [];

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
    // Keys with a space name something other than a queue (the delay chain's exchanges).
    return [...this.#ready].filter((name) => !name.includes(' '));
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
      const refusal = this.#loginRefusal(error);
      if (refusal !== undefined) {
        // Wrong credentials or vhost: retrying cannot help. Say so once, and fail what waits.
        if (this.#refused === undefined) this.#reportError(refusal);
        this.#refused = refusal;
        for (const entry of this.#deadlines) entry.fail(refusal);
        this.#deadlines.clear();
        for (const wait of this.#refusalWaiters.splice(0)) wait(refusal);
        return;
      }
      if (reported) return;
      reported = true;
      this.#reportError(this.unavailable(error));
    });
    conn.on('connection', () => {
      reported = false;
      this.#refused = undefined;
      if (connectedOnce) onReconnect?.();
      connectedOnce = true;
    });
    return conn;
  }

  /** The broker refused the login (credentials, vhost access): a {@link BackendRefusedError} naming what to check. */
  #loginRefusal(error: unknown): BackendRefusedError | undefined {
    const code = (error as { code?: unknown } | null)?.code;
    if (code !== 'ACCESS_REFUSED' && code !== 'NOT_ALLOWED') return undefined;
    // rabbitmq-client's message starts with "undefined: " (no reply text field): keep the broker's own words.
    const said = errorMessage(error).replace(/^(AMQPConnectionError: )?undefined: /, '');
    const what =
      code === 'ACCESS_REFUSED'
        ? 'the user name and password (in a URL, percent-encode special characters such as @ : / as %40 %3A %2F)'
        : `that the user may use the vhost "${this.#o.vhost}" (rabbitmqctl set_permissions)`;
    return new BackendRefusedError(`RabbitMQ at ${this.#o.target}`, 'auth', `${said} Check ${what}.`, error);
  }

  /**
   * Connect within `timeoutMs`, or reject at once with the login's
   * {@link BackendRefusedError} when the broker refuses it (rather than
   * retrying a refusal until the timeout).
   */
  async connect(timeoutMs: number): Promise<void> {
    if (this.#refused !== undefined) throw this.#refused;
    let stop: (error: Error) => void = () => undefined;
    const refused = new Promise<never>((_, reject) => {
      stop = reject;
      this.#refusalWaiters.push(reject);
    });
    try {
      await Promise.race([this.connection.onConnect(timeoutMs, true), refused]);
    } catch (error) {
      throw error instanceof BackendRefusedError ? error : this.unavailable(error);
    } finally {
      const at = this.#refusalWaiters.indexOf(stop);
      if (at >= 0) this.#refusalWaiters.splice(at, 1);
    }
  }

  /** @param ambiguous - a publish was written and its confirm never came: the job may be stored. */
  unavailable(error: unknown, ambiguous = false): QueueUnavailableError {
    if (error instanceof QueueUnavailableError) return error;
    return new QueueUnavailableError('amqp', `${this.#o.target}: ${errorMessage(error)}`, error, ambiguous);
  }

  /**
   * An error as the caller should see it: a refusal as it is, anything else as
   * "unavailable" (`ambiguous` for a publish whose channel or connection broke
   * while it waited for its confirm).
   */
  mapError(error: unknown, what: string, publishing = false): Error {
    if (error instanceof ShardworkError) return error;
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && REFUSALS.has(code)) return new AmqpRefusedError(what, error);
    return this.unavailable(error, publishing && typeof code === 'string' && UNCONFIRMED.has(code));
  }

  get #publish(): Publisher {
    this.#publisher ??= this.connection.createPublisher({ confirm: true, maxAttempts: 1 });
    return this.#publisher;
  }

  /** Publish and wait for the broker's confirm (see {@link Broker.timed} for the bound). */
  send(envelope: Envelope, body: Buffer): Promise<void> {
    envelope.durable = true;
    envelope.contentType = CONTENT_TYPE;
    return this.#publish.send(envelope, body).catch((error: unknown) => this.#resend(envelope, body, error));
  }

  /**
   * A quorum queue that has just been declared (or is electing a leader)
   * rejects publishes for a moment (`NACK`, "message rejected by server"):
   * nothing was stored, so publish again, a few times with backoff.
   */
  async #resend(envelope: Envelope, body: Buffer, error: unknown): Promise<void> {
    const nacked = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === 'NACK';
    try {
      if (!nacked(error)) throw error;
      // The first publish was attempt 1: 50 ms, then doubling, NACK_RETRIES attempts in all.
      await sleep(50);
      await retrying(() => this.#publish.send(envelope, body), {
        retryable: nacked,
        backoff: { initialMs: 100, maxAttempts: NACK_RETRIES - 1 },
      });
    } catch (e) {
      throw this.mapError(e, `a publish to ${envelope.routingKey ?? envelope.exchange}`, true);
    }
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
    if (this.#refused !== undefined) {
      work.catch(() => undefined);
      return Promise.reject(this.#refused);
    }
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
      entry.fail(this.unavailable(new Error(`no publisher confirm within ${this.#o.enqueueTimeoutMs} ms`), true));
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

  /**
   * Declare the delay chain's exchanges from the 1 ms tier up to `top`, each
   * bound on to the next smaller one (whose existence its binding and its tier
   * queue's dead-lettering need), bottom up.
   */
  #ensureTierExchanges(top: number): Promise<void> {
    const t = this.#topology;
    return this.#once(`tier exchanges up to ${top}`, async (channel) => {
      await this.#declareExchanges(channel);
      for (let ms = 1; ms <= top; ms *= 2) {
        await channel.exchangeDeclare({ exchange: t.tierExchange(ms), type: 'headers', durable: true });
        await channel.exchangeBind({
          destination: t.afterTier(ms),
          source: t.tierExchange(ms),
          routingKey: '',
          arguments: t.tierBinding(ms, 0),
        });
      }
    });
  }

  /** Declare tier queue `ms` and bind it to its exchange (whose chain must exist). */
  #ensureTier(ms: number): Promise<void> {
    const t = this.#topology;
    const name = t.tierQueue(ms);
    return this.#once(name, async (channel) => {
      await channel.queueDeclare({ queue: name, durable: true, arguments: t.tierArguments(ms) });
      const bind = { queue: name, exchange: t.tierExchange(ms), routingKey: '', arguments: t.tierBinding(ms, 1) };
      await channel.queueBind(bind);
    });
  }

  /** Put a job where it waits until `runAt`: its work queue if due, else the delay chain for the time left. */
  place(target: string, queue: string, job: Encodable, extra?: Record<string, unknown>): Promise<void> {
    // The hot path (declared, due now) stays synchronous up to the publish.
    if (!this.#ready.has(target))
      return this.ensureWork(target, queue).then(() => this.place(target, queue, job, extra));
    const body = encode(job, extra);
    const left = job.runAt - Date.now();
    if (left <= 0) return this.send({ routingKey: target, messageId: job.id }, body);
    return this.#delay(target, job.id, body, left);
  }

  /** Publish a job into the delay chain, to come out into `target` in `left` ms (see topology.ts). */
  async #delay(target: string, id: string, body: Buffer, left: number): Promise<void> {
    const { top, tiers, headers } = delayRoute(left);
    await this.#ensureTierExchanges(top);
    await Promise.all(tiers.map((ms) => this.#ensureTier(ms)));
    await this.send(
      { exchange: this.#topology.tierExchange(top), routingKey: target, headers: { ...headers }, messageId: id },
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
