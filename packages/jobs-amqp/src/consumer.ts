/**
 * {@link QueueConsumer}: one consumer on one queue, on a channel of its own,
 * that survives the broker. When its channel closes (a broker restart, a cut
 * connection, a consumer cancelled by the broker because its queue moved or
 * was deleted), the deliveries of that channel are aborted (the broker gives
 * them to another consumer), and it subscribes again with backoff, declaring
 * its queue first.
 *
 * rabbitmq-client's own `Consumer` waits for every running handler before it
 * subscribes again and cannot tell a handler that its channel is gone; a job
 * consumer needs both, so this one is ours. After this process was paused
 * (pause.ts), it hands nothing over until a round trip proves its channel
 * still open: the broker may have closed the connection and given the
 * deliveries still in the socket to another consumer.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { errorMessage, sleep } from '@shardwork/core';
import { backoffDelays } from '@shardwork/core/backend';
import type { AsyncMessage, Channel, Connection } from 'rabbitmq-client';
import { pausedSince, watchPauses } from './pause.js';

/** Subscribing again after a lost channel: 100 ms doubling to 5 s. */
const RESUBSCRIBE = backoffDelays({ initialMs: 100, maxMs: 5000 });

/** One message as the consumer hands it over. */
export interface Delivery {
  readonly message: AsyncMessage;
  /** The channel it came on (closed once {@link Delivery.lost} aborts). */
  readonly channel: Channel;
  /**
   * Aborts when the channel it came on closes (the broker redelivers the
   * message elsewhere) or when the consumer's `abort` signal does.
   */
  readonly lost: AbortSignal;
  /** Acknowledge (no-op once the channel is gone). */
  ack(): void;
  /** Put back (no-op once the channel is gone: the broker puts it back itself). */
  requeue(): void;
  /**
   * Whether this process may have been paused since its channel was last
   * proven open: the broker may have closed the connection and given the
   * delivery to another consumer. Then await {@link Delivery.alive} before
   * acting on it (see pause.ts).
   */
  stale(): boolean;
  /** Resolves whether its channel is still open, by a round trip on it (shared by concurrent callers). */
  alive(): Promise<boolean>;
}

/** What a consumer needs. */
export interface QueueConsumerOptions {
  readonly queue: string;
  /** Unacknowledged messages the broker may push ahead (`basic.qos`). */
  readonly prefetch: number;
  /** Declare the queue (and what it needs) on the channel before each subscription. */
  readonly declare: (channel: Channel) => Promise<void>;
  readonly onMessage: (delivery: Delivery) => void;
  /** Aborts every delivery's {@link Delivery.lost} too (one combined signal per channel, not one per message). */
  readonly abort?: AbortSignal;
  readonly onError: (error: unknown) => void;
  /** Called each time its channel closes while it should be consuming. */
  readonly onLost?: () => void;
}

/** See the module documentation. */
export class QueueConsumer {
  readonly #conn: Connection;
  readonly #o: QueueConsumerOptions;
  #channel: Channel | undefined;
  #tag: string | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #subscribed = false;
  #unsettled = 0;
  #unwatch: (() => void) | undefined;
  #firstReady: (() => void) | undefined;
  readonly #ready = new Promise<void>((resolve) => {
    this.#firstReady = resolve;
  });

  constructor(conn: Connection, options: QueueConsumerOptions) {
    this.#conn = conn;
    this.#o = options;
  }

  /** Deliveries of the current channel neither acknowledged nor put back. */
  get unsettled(): number {
    return this.#unsettled;
  }

  /** Whether it is subscribed right now. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Resolves once it was subscribed the first time. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Begin consuming (and keep at it until {@link QueueConsumer.cancel} or {@link QueueConsumer.close}). */
  start(): void {
    this.#unwatch ??= watchPauses();
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    for (let attempt = 0; !this.#stopped; ) {
      try {
        await this.#subscribe();
        attempt = 0;
        // Until the channel closes.
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (this.#channel?.active !== true) resolve();
        });
      } catch (error) {
        await this.#drop();
        if (this.#stopped) break;
        this.#o.onError(error);
      }
      if (this.#stopped) break;
      this.#o.onLost?.();
      await sleep(RESUBSCRIBE(++attempt, undefined) ?? 5000);
    }
  }

  async #subscribe(): Promise<void> {
    const channel = await this.#conn.acquire();
    this.#channel = channel;
    const closed = new AbortController();
    const lost = this.#o.abort === undefined ? closed.signal : AbortSignal.any([closed.signal, this.#o.abort]);
    setMaxListeners(0, lost);
    channel.once('close', () => {
      this.#subscribed = false;
      this.#unsettled = 0; // the broker has them back
      closed.abort(new Error(`the channel of ${this.#o.queue} closed`));
      this.#wake?.();
    });
    channel.on('error', (error: unknown) => this.#o.onError(error));
    channel.once('basic.cancel', () => {
      // The broker cancelled us (queue deleted or moved): start over on a new channel.
      this.#o.onError(new Error(`the broker cancelled the consumer of ${this.#o.queue}`));
      channel.close().catch(() => undefined);
    });
    await this.#o.declare(channel);
    await channel.basicQos({ prefetchCount: this.#o.prefetch });
    if (this.#stopped) throw new Error('stopped');
    /** When a round trip on this channel last proved it open (it was when the channel opened). */
    let provenAt = performance.now();
    let proof: Promise<boolean> | undefined;
    const stale = (): boolean => pausedSince(provenAt);
    const alive = (): Promise<boolean> => {
      proof ??= (async () => {
        const began = performance.now();
        try {
          await channel.basicQos({ prefetchCount: this.#o.prefetch });
          if (channel.active) provenAt = began;
          return channel.active;
        } catch {
          return false;
        } finally {
          proof = undefined;
        }
      })();
      return proof;
    };
    const deliver = (message: AsyncMessage): void => {
      let settled = false;
      const settle = (how: 'ack' | 'requeue'): void => {
        if (settled || !channel.active) return;
        settled = true;
        this.#unsettled--;
        try {
          if (how === 'ack') channel.basicAck({ deliveryTag: message.deliveryTag });
          else channel.basicNack({ deliveryTag: message.deliveryTag, requeue: true });
        } catch (error) {
          this.#o.onError(error);
        }
      };
      this.#o.onMessage({
        message,
        channel,
        lost,
        ack: () => settle('ack'),
        requeue: () => settle('requeue'),
        stale,
        alive,
      });
    };
    /** Deliveries that came after a pause, kept in order until a round trip proves the channel open. */
    let unproven: AsyncMessage[] | undefined;
    const { consumerTag } = await channel.basicConsume({ queue: this.#o.queue }, (message) => {
      this.#unsettled++;
      if (unproven !== undefined) {
        unproven.push(message);
        return;
      }
      if (!stale()) {
        deliver(message);
        return;
      }
      const batch = [message];
      unproven = batch;
      void alive().then((open) => {
        unproven = undefined;
        // A closed channel's deliveries are the broker's again (its close handler reset the count).
        if (open) for (const m of batch) deliver(m);
      });
    });
    this.#tag = consumerTag;
    this.#subscribed = true;
    this.#firstReady?.();
  }

  async #drop(): Promise<void> {
    const channel = this.#channel;
    this.#channel = undefined;
    this.#subscribed = false;
    if (channel?.active === true) await channel.close().catch(() => undefined);
  }

  /** Stop receiving (`basic.cancel`); deliveries already made can still be settled. */
  async cancel(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    const channel = this.#channel;
    const tag = this.#tag;
    this.#tag = undefined;
    if (channel?.active === true && tag !== undefined) {
      await channel.basicCancel({ consumerTag: tag }).catch((error: unknown) => {
        if (channel.active) this.#o.onError(new Error(`cancelling ${this.#o.queue}: ${errorMessage(error)}`));
      });
    }
  }

  /**
   * Stop subscribing again, but keep the current subscription and its
   * deliveries: for a caller that drops the connection to return them in
   * order (a cancel would let another consumer take the queue first).
   */
  hold(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /**
   * Resolves once the broker has processed every acknowledgement sent so far
   * on the current channel (a round trip on it; frames of a channel are
   * processed in order). Before a connection is dropped: a socket closed with
   * unread data may discard what was written but not yet sent.
   */
  async flush(): Promise<void> {
    const channel = this.#channel;
    if (channel?.active !== true) return;
    await channel.basicQos({ prefetchCount: this.#o.prefetch }).catch(() => undefined);
  }

  /** Close the channel: unsettled deliveries go back to the queue. */
  async close(): Promise<void> {
    await this.cancel();
    await this.#drop();
    await this.#loop;
    this.#unwatch?.();
  }
}
