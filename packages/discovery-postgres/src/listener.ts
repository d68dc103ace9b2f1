/**
 * The LISTEN connection of one {@link PostgresDiscovery}: a client of its
 * own (never a pooled one: a pooled connection would carry its LISTENs to
 * whoever borrows it next), listening on the channels of the watched
 * services. When the connection fails or is cut (a server crash or restart,
 * a network cut) it reconnects with a capped backoff, LISTENs again and says
 * so (`reconnected`), since notifications sent in between are lost and the
 * watchers must re-list.
 *
 * @module
 */

import pg from 'pg';

/** What the listener tells its owner. */
export interface ListenerEvents {
  /** A notification arrived on `channel`. */
  notification(channel: string, payload: string): void;
  /** `channel` is listened to now; `reconnected`: after a lost connection (notifications may be missed). */
  live(channel: string, reconnected: boolean): void;
}

/** Backoff of reconnects: from the first to the cap, doubling. */
export const RECONNECT_MS = { first: 50, cap: 1000 } as const;

const quote = (channel: string): string => `"${channel.replaceAll('"', '""')}"`;

/** See the module documentation. */
export class Listener {
  readonly #config: pg.ClientConfig;
  readonly #events: ListenerEvents;
  /** The channels wanted. */
  readonly #wanted = new Set<string>();
  /** The channels LISTENed to on the current connection. */
  readonly #listening = new Set<string>();
  readonly #waiting = new Map<string, Set<() => void>>();
  #client: pg.Client | undefined;
  #ready = false;
  #connecting = false;
  #everConnected = false;
  #failures = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #sync: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(config: pg.ClientConfig, events: ListenerEvents) {
    this.#config = config;
    this.#events = events;
  }

  /** Listen to `channel` (connecting first if need be). */
  add(channel: string): void {
    if (this.#closed) return;
    this.#wanted.add(channel);
    if (this.#ready) this.#reconcile();
    else this.#connect();
  }

  /** Stop listening to `channel`. */
  remove(channel: string): void {
    this.#wanted.delete(channel);
    this.#release(channel);
    if (this.#ready) this.#reconcile();
  }

  /** Whether `channel` is listened to on a live connection. */
  isLive(channel: string): boolean {
    return this.#ready && this.#listening.has(channel);
  }

  /** Resolves once `channel` is live, or after `timeoutMs`. */
  whenLive(channel: string, timeoutMs: number): Promise<void> {
    if (this.isLive(channel) || !this.#wanted.has(channel) || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      let waiters = this.#waiting.get(channel);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiting.set(channel, waiters);
      }
      const done = (): void => {
        clearTimeout(timer);
        this.#waiting.get(channel)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref?.();
      waiters.add(done);
    });
  }

  /**
   * Check that the connection still answers (one `SELECT 1`, bounded by the
   * configured query timeout); a connection that does not is replaced, and
   * the watchers reset; one waiting for its next attempt tries at once. For after an outage seen by other connections: an
   * idle LISTEN connection sends nothing, so it would not notice by itself
   * that it died silently (a server restarted behind a black hole) until TCP
   * keepalive gives up, minutes later.
   */
  probe(): void {
    const client = this.#client;
    if (this.#ready && client !== undefined) {
      client.query('SELECT 1').catch(() => this.#lost(client));
      return;
    }
    // Waiting out a backoff: the server answers again, reconnect now.
    if (this.#retry !== undefined && !this.#closed) {
      clearTimeout(this.#retry);
      this.#retry = undefined;
      this.#connect();
    }
  }

  /** Close the connection; nothing is reported after this. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    for (const channel of [...this.#waiting.keys()]) this.#release(channel);
    const client = this.#client;
    this.#client = undefined;
    this.#ready = false;
    await client?.end().catch(() => undefined);
  }

  #release(channel: string): void {
    for (const done of [...(this.#waiting.get(channel) ?? [])]) done();
    this.#waiting.delete(channel);
  }

  #connect(): void {
    if (this.#connecting || this.#ready || this.#closed || this.#retry !== undefined) return;
    this.#connecting = true;
    const client = new pg.Client(this.#config);
    this.#client = client;
    client.on('notification', (message) => {
      if (this.#client === client && message.payload !== undefined) {
        this.#events.notification(message.channel, message.payload);
      }
    });
    const lost = (): void => this.#lost(client);
    client.on('error', lost);
    client.on('end', lost);
    // After a failed attempt too: a listing taken meanwhile may have missed notifications.
    const reconnected = this.#everConnected || this.#failures > 0;
    client
      .connect()
      .then(async () => {
        const channels = [...this.#wanted];
        if (channels.length > 0) await client.query(channels.map((c) => `LISTEN ${quote(c)}`).join('; '));
        if (this.#client !== client || this.#closed) return;
        this.#connecting = false;
        this.#ready = true;
        this.#everConnected = true;
        this.#failures = 0;
        this.#listening.clear();
        for (const channel of channels) this.#listening.add(channel);
        for (const channel of channels) this.#announce(channel, reconnected);
        this.#reconcile();
      })
      .catch(() => this.#lost(client));
  }

  #announce(channel: string, reconnected: boolean): void {
    this.#release(channel);
    this.#events.live(channel, reconnected);
  }

  /** The connection failed or ended: drop it and connect again after the backoff. */
  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#ready = false;
    this.#connecting = false;
    this.#listening.clear();
    client.end().catch(() => undefined);
    if (this.#closed || this.#wanted.size === 0) return;
    const delay = Math.min(RECONNECT_MS.cap, RECONNECT_MS.first * 2 ** this.#failures);
    this.#failures += 1;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect();
    }, delay);
    this.#retry.unref?.();
  }

  /** LISTEN and UNLISTEN until the current connection listens to exactly the wanted channels (serialized). */
  #reconcile(): void {
    this.#sync = this.#sync.then(async () => {
      const client = this.#client;
      if (!this.#ready || client === undefined) return;
      const add = [...this.#wanted].filter((c) => !this.#listening.has(c));
      const drop = [...this.#listening].filter((c) => !this.#wanted.has(c));
      if (add.length === 0 && drop.length === 0) return;
      const sql = [...add.map((c) => `LISTEN ${quote(c)}`), ...drop.map((c) => `UNLISTEN ${quote(c)}`)].join('; ');
      try {
        await client.query(sql);
      } catch {
        this.#lost(client);
        return;
      }
      if (this.#client !== client) return;
      for (const channel of drop) this.#listening.delete(channel);
      for (const channel of add) {
        this.#listening.add(channel);
        if (this.#wanted.has(channel)) this.#announce(channel, false);
      }
    });
  }
}
