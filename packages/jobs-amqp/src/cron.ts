/**
 * {@link CronLeader}: periodic jobs enqueued once per tick by one consumer
 * process at a time, with nothing but RabbitMQ.
 *
 * - **Who enqueues.** Every consuming process subscribes to the quorum queue
 *   `p.cron.lock` with `x-single-active-consumer`: the broker delivers to one
 *   subscriber only, and that subscriber holds a token message unacknowledged
 *   for as long as it leads. When its channel closes (kill -9, a cut network,
 *   missed heartbeats of a paused process), the broker hands the token to the
 *   next subscriber; no timer of ours is involved. Each process publishes one
 *   token when it starts; the leader keeps one and acknowledges the rest. The
 *   token is renewed every few minutes (the broker's delivery acknowledgement
 *   timeout would otherwise close the channel after 30 minutes).
 * - **Which ticks.** The shared `TickPump` of `@shardwork/jobs`, one per
 *   periodic job and term of leadership, with this leader's cursor (the newest
 *   tick recorded in `p.cron.last.<name>`, read when it takes over) and its
 *   "since" (when it took over): ticks that fell while nobody led are caught up
 *   per `catchUp`, and every tick while it leads is enqueued once, late if the
 *   process was paused or the broker unreachable at the tick (a write that
 *   failed is sent again with the next tick).
 * - **Once per tick.** A tick's job is published to the exchange `p.cron`,
 *   which routes it to its work queue *and* to `p.cron.last.<name>` (a queue
 *   that keeps only its newest message): one publish, one confirm, so the
 *   record of the newest enqueued tick and the job cannot part. And it is
 *   published on the channel that holds the token, in confirm mode: while that
 *   channel is open the token is this process's, and once it has closed a
 *   publish on it fails instead of waiting for the next connection, so a
 *   leader that lost the token cannot enqueue a tick after its successor read
 *   the cursor. A write whose confirm does not come in time may or may not be
 *   stored: the leader gives the token up (closes that channel) rather than
 *   guess, and whoever leads next reads what was stored.
 *
 * @module
 */

import { startTicker, type Ticker } from '@shardwork/core';
import { retrying } from '@shardwork/core/backend';
import {
  type CompiledPeriodic,
  type JobRecord,
  type TickPlan,
  TickPump,
  type TickWriteResult,
} from '@shardwork/jobs/adapter';
import { nanoid } from 'nanoid';
import type { Channel, Connection, Envelope } from 'rabbitmq-client';
import { type Delivery, QueueConsumer } from './consumer.js';
import { encodeRecord } from './message.js';
import { TICK_HEADER, type Topology } from './topology.js';

/** How often the leader swaps its token for a fresh one. */
const TOKEN_RENEW_MS = 5 * 60_000;

/** What the leader needs from the adapter. */
export interface CronHost {
  readonly connection: Connection;
  readonly topology: Topology;
  readonly periodics: readonly CompiledPeriodic[];
  /** The work queue a periodic job's ticks go to. */
  target(periodic: CompiledPeriodic): string;
  /** Declare the work queue (and its dead queue) of a target on a channel. */
  declareTarget(channel: Channel, target: string, periodic: CompiledPeriodic): Promise<void>;
  /** The job of one tick. */
  tickRecord(periodic: CompiledPeriodic, tick: number): JobRecord;
  /** A tick's job was enqueued (the broker confirmed it). */
  enqueued(record: JobRecord): void;
  /** Publish and wait for the broker's confirm (the adapter's publisher; for tokens). */
  send(envelope: Envelope, body: Buffer): Promise<void>;
  /** Longest wait for the confirm of a tick's publish. */
  readonly writeTimeoutMs: number;
  reportError(error: unknown): void;
}

/** One term of leadership: from a token's delivery to the close of its channel. */
interface Term {
  /** The channel the token came on: every tick of the term is published on it. */
  readonly channel: Channel;
  /** When this process took the schedule over. */
  readonly since: number;
  readonly pumps: TickPump[];
  readonly tickers: Ticker[];
  /** Newest tick confirmed per periodic job in this term: a plan sent again after a partial failure skips them. */
  readonly sent: Map<string, number>;
  confirming: Promise<void> | undefined;
  over: boolean;
}

/** A confirm that did not come in time: the write may or may not be stored. */
class WriteTimeout extends Error {
  override readonly name = 'WriteTimeout';
}

/** See the module documentation. */
export class CronLeader {
  readonly #host: CronHost;
  readonly #consumer: QueueConsumer;
  #tokens: Delivery[] = [];
  #term: Term | undefined;
  #renew: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(host: CronHost) {
    this.#host = host;
    const t = host.topology;
    this.#consumer = new QueueConsumer(host.connection, {
      queue: t.cronLock,
      prefetch: 10,
      declare: (channel) => this.#declare(channel),
      onMessage: (delivery) => this.#onToken(delivery),
      onError: (error) => host.reportError(error),
      onLost: () => this.#resign(),
    });
  }

  /** Whether this process enqueues the ticks right now. */
  get leading(): boolean {
    return this.#tokens.length > 0;
  }

  async #declare(channel: Channel): Promise<void> {
    const t = this.#host.topology;
    await channel.exchangeDeclare({ exchange: t.cronExchange, type: 'direct', durable: true });
    await channel.queueDeclare({ queue: t.cronLock, durable: true, arguments: t.lockArguments() });
    for (const periodic of this.#host.periodics) {
      const last = t.cronLast(periodic.name);
      const target = this.#host.target(periodic);
      await channel.queueDeclare({ queue: last, durable: true, arguments: t.lastTickArguments() });
      await channel.queueBind({ queue: last, exchange: t.cronExchange, routingKey: periodic.name });
      await this.#host.declareTarget(channel, target, periodic);
      await channel.queueBind({ queue: target, exchange: t.cronExchange, routingKey: periodic.name });
    }
  }

  /** Subscribe, and put one token in (the leader keeps one and acknowledges the others). */
  async start(): Promise<void> {
    const channel = await this.#host.connection.acquire();
    try {
      await this.#declare(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
    await this.#publishToken();
    this.#consumer.start();
  }

  #publishToken(): Promise<void> {
    return this.#host.send({ routingKey: this.#host.topology.cronLock, messageId: nanoid() }, Buffer.from('token'));
  }

  #onToken(delivery: Delivery): void {
    if (this.#stopped) {
      delivery.requeue();
      return;
    }
    this.#tokens.push(delivery);
    delivery.lost.addEventListener('abort', () => {
      this.#tokens = this.#tokens.filter((d) => d !== delivery);
      if (this.#tokens.length === 0) this.#resign();
    });
    // Keep the newest token; acknowledge older ones (a renewal, or another process's start).
    while (this.#tokens.length > 1) this.#tokens.shift()?.ack();
    if (this.#term === undefined) void this.#lead(delivery.channel);
  }

  async #lead(channel: Channel): Promise<void> {
    const term: Term = {
      channel,
      since: Date.now(),
      pumps: [],
      tickers: [],
      sent: new Map(),
      confirming: undefined,
      over: false,
    };
    this.#term = term;
    this.#renew = setInterval(() => {
      this.#publishToken().catch((error: unknown) => this.#host.reportError(error));
    }, TOKEN_RENEW_MS);
    for (const periodic of this.#host.periodics) {
      const last = await this.#lastTick(periodic, term);
      if (term.over || last === false) return;
      const pump = new TickPump({
        periodic,
        cursor: { last, since: term.since },
        write: (plan) => this.#write(term, periodic, plan),
        onError: (error) => this.#host.reportError(error),
      });
      term.pumps.push(pump);
      // The ticker first: a tick that falls while the catch-up is written is sent after it.
      term.tickers.push(startTicker(periodic.schedule, (at) => void pump.fire(at.getTime())));
      void pump.fire();
    }
  }

  /**
   * The newest recorded tick: read, then put back, the one message of the
   * last-tick queue; read again while the broker refuses, as long as this
   * term lasts (`false` once it ended).
   */
  async #lastTick(periodic: CompiledPeriodic, term: Term): Promise<number | undefined | false> {
    const read = async (): Promise<number | undefined> => {
      let channel: Channel | undefined;
      try {
        channel = await this.#host.connection.acquire();
        const message = await channel.basicGet({ queue: this.#host.topology.cronLast(periodic.name), noAck: false });
        if (message === undefined) return undefined;
        channel.basicNack({ deliveryTag: message.deliveryTag, requeue: true });
        const tick = Number(message.headers?.[TICK_HEADER]);
        return Number.isSafeInteger(tick) ? tick : undefined;
      } finally {
        if (channel?.active === true) await channel.close().catch(() => undefined);
      }
    };
    try {
      return await retrying(read, {
        retryable: () => !term.over,
        backoff: { initialMs: 50, maxMs: 2000 },
        onRetry: (error, { attempt }) => attempt === 1 && this.#host.reportError(error),
      });
    } catch {
      return false; // the term ended
    }
  }

  /** Enqueue a plan's ticks (and record a skipped one) on the term's channel; see the module documentation. */
  async #write(term: Term, periodic: CompiledPeriodic, plan: TickPlan): Promise<TickWriteResult> {
    const { channel } = term;
    if (term.over || !channel.active) return 'stale';
    const host = this.#host;
    const t = host.topology;
    const name = periodic.name;
    const newest = (): number => term.sent.get(name) ?? Number.NEGATIVE_INFINITY;
    const envelope = (extra: Envelope): Envelope => ({ durable: true, contentType: 'application/json', ...extra });
    try {
      term.confirming ??= channel.confirmSelect();
      await this.#timed(term.confirming);
      if (plan.skipTo !== undefined && plan.skipTo > newest()) {
        // Recorded as the newest tick, without a job (`catchUp: 'skip'`).
        const skip = envelope({
          routingKey: t.cronLast(name),
          headers: { [TICK_HEADER]: plan.skipTo },
          messageId: `skip-${plan.skipTo}`,
        });
        await this.#timed(channel.basicPublish(skip, Buffer.from('{}')));
        term.sent.set(name, plan.skipTo);
      }
      for (const tick of plan.ticks) {
        if (tick <= newest()) continue;
        const record = host.tickRecord(periodic, tick);
        const job = envelope({
          exchange: t.cronExchange,
          routingKey: name,
          headers: { [TICK_HEADER]: tick },
          messageId: record.id,
        });
        await this.#timed(channel.basicPublish(job, encodeRecord(record)));
        term.sent.set(name, tick);
        host.enqueued(record);
        if (term.over) return 'stale';
      }
      return 'ok';
    } catch (error) {
      if (term.over || !channel.active) return 'stale';
      host.reportError(error);
      if (error instanceof WriteTimeout) {
        // Stored or not: give the token up; whoever leads next reads the cursor the broker kept.
        await channel.close().catch(() => undefined);
        return 'stale';
      }
      // Refused (nothing stored by the queue that refused it): sent again with the next tick.
      return 'failed';
    }
  }

  /** `work`, or a {@link WriteTimeout} after `writeTimeoutMs`. */
  #timed<T>(work: Promise<T>): Promise<T> {
    const ms = this.#host.writeTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WriteTimeout(`no confirm of a cron tick within ${ms} ms`)), ms);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  /** Leadership ended (or is given up): no more ticks from this term. */
  #resign(): TickPump[] {
    if (this.#renew !== undefined) clearInterval(this.#renew);
    this.#renew = undefined;
    const term = this.#term;
    this.#term = undefined;
    if (term === undefined) return [];
    term.over = true;
    for (const ticker of term.tickers.splice(0)) ticker.stop();
    const pumps = term.pumps.splice(0);
    for (const pump of pumps) void pump.stop();
    return pumps;
  }

  /** Stop enqueueing and give the token back (the next subscriber leads at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    // Writes in flight end first: the token goes back only after them.
    await Promise.all(this.#resign().map((pump) => pump.stop()));
    for (const token of this.#tokens.splice(0)) token.requeue();
    await this.#consumer.close();
  }
}
