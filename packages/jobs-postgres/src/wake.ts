/**
 * Wake-ups of a consumer process: one connection of its own `LISTEN`s on the
 * schema's wake channel (storing a ready job notifies `<queue>|<partition>`,
 * delivered when the storing transaction commits) and wakes the idle
 * consumer of that partition, so a job starts without waiting for an idle
 * re-check. A connection that fails (a server restart, a cut) is made again
 * with backoff, and then every consumer is woken once: notifications sent
 * while it was away are lost, and a wake-up makes each consumer look.
 *
 * @module
 */

import { backoffDelays } from '@shardwork/core/backend';
import pg from 'pg';
import { wakeChannel } from './enqueue.js';

/** Called with the queue and partition of a wake-up, or `undefined` for "everyone look" (after a reconnect). */
export type WakeListener = (queue: string | undefined, partition: number | undefined) => void;

/** Options of {@link WakeSubscriber}. */
export interface WakeSubscriberOptions {
  /** Connection settings of the listening client (its own connection, never a pooled one). */
  readonly connection: pg.ClientConfig;
  readonly schema: string;
  readonly onWake: WakeListener;
  /** A connection failed (reported once per outage, not per retry). */
  readonly onError?: (error: unknown) => void;
}

/** See the module documentation. */
export class WakeSubscriber {
  readonly #o: WakeSubscriberOptions;
  #client: pg.Client | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #listening: Promise<void> | undefined;
  /** Failed connections since the last one that listened. */
  #failures = 0;

  constructor(options: WakeSubscriberOptions) {
    this.#o = options;
  }

  /** Connect and `LISTEN`; resolves once listening (rejects if the first connection fails; later ones retry). */
  start(): Promise<void> {
    this.#listening ??= this.#connect();
    return this.#listening;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#o.connection);
    this.#client = client;
    client.on('notification', (n) => {
      if (n.channel !== wakeChannel(this.#o.schema) || n.payload === undefined) return;
      const bar = n.payload.lastIndexOf('|');
      const partition = Number(n.payload.slice(bar + 1));
      if (bar <= 0 || !Number.isInteger(partition)) return;
      this.#o.onWake(n.payload.slice(0, bar), partition);
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('the wake-up connection ended')));
    await client.connect();
    await client.query(`LISTEN ${wakeChannel(this.#o.schema)}`);
    this.#failures = 0;
  }

  /** The connection is gone: make another, with backoff, then wake everyone once. */
  #lost(client: pg.Client, error: unknown): void {
    if (this.#closed || client !== this.#client) return;
    this.#client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.#failures === 0) this.#o.onError?.(error);
    this.#failures++;
    const delay = backoffDelays({ initialMs: 100, maxMs: 2000 })(this.#failures, error) ?? 2000;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#connect().then(
        () => this.#o.onWake(undefined, undefined),
        (next: unknown) => {
          // Unless its 'error' event already did.
          const failed = this.#client;
          if (failed !== undefined) this.#lost(failed, next);
        },
      );
    }, delay);
    this.#timer.unref();
  }

  /** Stop listening and close the connection. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
