/**
 * {@link CronLeader}: periodic jobs enqueued once per tick by one consumer
 * process at a time, with nothing but RabbitMQ.
 *
 * - **Who enqueues.** Every consuming process subscribes to the quorum queue
 *   `p.cron.lock` with `x-single-active-consumer`: the broker delivers to one
 *   subscriber only, and that subscriber holds a token message unacknowledged
 *   for as long as it leads. When its connection dies (kill -9, a cut network,
 *   missed heartbeats of a paused process), the broker hands the token to the
 *   next subscriber; no timer of ours is involved. Each process publishes one
 *   token when it starts; the leader keeps one and acknowledges the rest. The
 *   token is renewed every few minutes (the broker's delivery acknowledgement
 *   timeout would otherwise close the channel after 30 minutes).
 * - **Once per tick.** A tick's job is published to the exchange `p.cron`,
 *   which routes it to its work queue *and* to `p.cron.last.<name>` (a queue
 *   that keeps only its newest message): one publish, one confirm, so the
 *   record of the newest enqueued tick and the job cannot part. A new leader
 *   reads that record and enqueues the ticks it missed by the periodic job's
 *   `catchUp` policy.
 *
 * @module
 */

import { startTicker, type Ticker, ticksBetween } from '@shardwork/core';
import type { CompiledPeriodic } from '@shardwork/jobs';
import { nanoid } from 'nanoid';
import type { Channel, Connection, Envelope } from 'rabbitmq-client';
import { type Delivery, QueueConsumer } from './consumer.js';
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
  /** Publish the jobs of these ticks through the cron exchange (resolves on the broker's confirm). */
  publishTicks(periodic: CompiledPeriodic, ticks: readonly number[]): Promise<void>;
  /** Publish and wait for the broker's confirm (the adapter's publisher: its deadline and its retry of a nack). */
  send(envelope: Envelope, body: Buffer): Promise<void>;
  reportError(error: unknown): void;
}

/** See the module documentation. */
export class CronLeader {
  readonly #host: CronHost;
  readonly #consumer: QueueConsumer;
  #tokens: Delivery[] = [];
  #tickers: Ticker[] = [];
  #renew: ReturnType<typeof setInterval> | undefined;
  #term = 0;
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
    if (this.#tickers.length === 0 && this.#renew === undefined) void this.#lead();
  }

  async #lead(): Promise<void> {
    const term = ++this.#term;
    this.#renew = setInterval(() => {
      this.#publishToken().catch((error: unknown) => this.#host.reportError(error));
    }, TOKEN_RENEW_MS);
    for (const periodic of this.#host.periodics) {
      if (term !== this.#term || !this.leading) return;
      try {
        await this.#catchUp(periodic);
      } catch (error) {
        this.#host.reportError(error);
      }
      if (term !== this.#term || !this.leading) return;
      this.#tickers.push(
        startTicker(periodic.schedule, (at) => {
          if (term !== this.#term || !this.leading) return;
          this.#host.publishTicks(periodic, [at.getTime()]).catch((error: unknown) => this.#host.reportError(error));
        }),
      );
    }
  }

  /** Ticks nobody enqueued since the newest recorded one, by the periodic job's policy. */
  async #catchUp(periodic: CompiledPeriodic): Promise<void> {
    const last = await this.#lastTick(periodic);
    if (last === undefined) return;
    const now = Date.now();
    if (periodic.catchUp === 'skip') {
      const newest = ticksBetween(periodic.schedule, new Date(last), new Date(now), 1000).pop();
      // Recorded as the newest tick, without a job.
      if (newest !== undefined) {
        const tick = newest.getTime();
        await this.#host.send(
          {
            routingKey: this.#host.topology.cronLast(periodic.name),
            headers: { [TICK_HEADER]: tick },
            messageId: `skip-${tick}`,
          },
          Buffer.from('{}'),
        );
      }
      return;
    }
    const from = new Date(Math.max(last, now - periodic.horizonMs));
    const missed = ticksBetween(periodic.schedule, from, new Date(now), 1000).map((d) => d.getTime());
    const ticks = periodic.catchUp === 'once' ? missed.slice(-1) : missed;
    if (ticks.length > 0) await this.#host.publishTicks(periodic, ticks);
  }

  /** The newest recorded tick: read, then put back, the one message of the last-tick queue. */
  async #lastTick(periodic: CompiledPeriodic): Promise<number | undefined> {
    const channel = await this.#host.connection.acquire();
    try {
      const message = await channel.basicGet({ queue: this.#host.topology.cronLast(periodic.name), noAck: false });
      if (message === undefined) return undefined;
      channel.basicNack({ deliveryTag: message.deliveryTag, requeue: true });
      const tick = Number(message.headers?.[TICK_HEADER]);
      return Number.isSafeInteger(tick) ? tick : undefined;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  #resign(): void {
    this.#term++;
    for (const ticker of this.#tickers.splice(0)) ticker.stop();
    if (this.#renew !== undefined) clearInterval(this.#renew);
    this.#renew = undefined;
  }

  /** Stop enqueueing and give the token back (the next subscriber leads at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#resign();
    for (const token of this.#tokens.splice(0)) token.requeue();
    await this.#consumer.close();
  }
}
