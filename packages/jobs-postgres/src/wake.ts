/**
 * Wake-ups of a consumer process: one connection of its own `LISTEN`s on the
 * schema's wake channel and hands each message on, parsed ({@link WakeMessage}):
 * storing a ready job notifies `<queue>|<partition>` (delivered when the
 * storing transaction commits) and wakes the idle consumer of that partition,
 * so a job starts without waiting for an idle re-check; `<queue>|*` wakes
 * every partition of a queue (unpaused, a concurrency slot freed),
 * `<queue>|done|<outcome>` hands a finished job's outcome to its waiters, and
 * `<queue>|cancel|<id>` aborts a running job wherever it runs. A connection that fails (a server restart, a cut) is made again
 * with backoff, and then every consumer is woken once: notifications sent
 * while it was away are lost, and a wake-up makes each consumer look.
 *
 * @module
 */

import { backoffDelays } from '@shardwork/core/backend';
import pg from 'pg';
import { wakeChannel } from './sql.js';

/** One message of the wake channel; `{ type: 'all' }` without a queue means "everyone look" (after a reconnect). */
export type WakeMessage =
  | { readonly type: 'ready'; readonly queue: string; readonly partition: number }
  | { readonly type: 'all'; readonly queue: string | undefined }
  | { readonly type: 'done'; readonly queue: string; readonly outcome: DoneNotice }
  | { readonly type: 'cancel'; readonly queue: string; readonly id: string };

/** A finished job's outcome as its notice carries it (`big`: too long to send; read it back). */
export interface DoneNotice {
  readonly id: string;
  readonly state: 'completed' | 'dead' | 'cancelled';
  readonly result?: unknown;
  readonly error?: unknown;
  readonly big?: boolean;
}

/** Called with each message. */
export type WakeListener = (message: WakeMessage) => void;

/** The message of a payload, `undefined` for one that is not ours. */
export function parseWake(payload: string): WakeMessage | undefined {
  const bar = payload.indexOf('|');
  if (bar <= 0) return undefined;
  const queue = payload.slice(0, bar);
  const rest = payload.slice(bar + 1);
  if (/^\d+$/.test(rest)) return { type: 'ready', queue, partition: Number(rest) };
  if (rest === '*') return { type: 'all', queue };
  if (rest.startsWith('done|')) {
    try {
      const outcome = JSON.parse(rest.slice(5)) as DoneNotice;
      if (typeof outcome?.id === 'string') return { type: 'done', queue, outcome };
    } catch {
      // Not ours.
    }
    return undefined;
  }
  if (rest.startsWith('cancel|') && rest.length > 7) return { type: 'cancel', queue, id: rest.slice(7) };
  return undefined;
}

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
      const message = parseWake(n.payload);
      if (message !== undefined) this.#o.onWake(message);
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
        () => this.#o.onWake({ type: 'all', queue: undefined }),
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
