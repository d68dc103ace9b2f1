/**
 * One fail-fast ioredis connection, shared by every shardwork package that
 * talks to Redis (discovery, the job adapter): connect on first use within
 * `connectTimeoutMs`, bound every script call by `commandTimeoutMs`, map
 * connection and transient reply errors to the caller's "unavailable" error,
 * open a subscriber duplicate, close within a bound.
 *
 * @module
 */

import { ShardworkError } from '@shardwork/core';
import { Redis } from 'ioredis';
import type { CompiledRedisOptions } from './options.js';
import { type LoadedScript, runScript } from './scripts.js';

/** Redis reply errors after which a later retry can succeed (failover, loading, busy script). */
export const TRANSIENT_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MOVED|ASK)\b/;

/** Reconnect backoff: 50 ms doubling up to 1 s, with jitter so clients do not reconnect in lockstep. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(1000, 50 * 2 ** Math.min(attempt - 1, 5));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Builds the error a caller reports when Redis cannot be reached. */
export type UnavailableFactory = (detail: string, cause?: unknown) => Error;

/** See the module documentation. */
export class RedisConnection {
  /** The command connection (owned, or the caller's client). */
  readonly client: Redis;
  readonly #options: CompiledRedisOptions;
  readonly #owned: boolean;
  readonly #unavailable: UnavailableFactory;
  readonly #subscribers: Redis[] = [];
  #connecting: { promise: Promise<Redis>; reject: (error: Error) => void } | undefined;
  #lastError: Error | undefined;
  #closed = false;

  /**
   * @param options - compiled connection options (`compileOptions` of this package).
   * @param unavailable - the error to report for an outage, e.g. `DiscoveryUnavailableError`.
   */
  constructor(options: CompiledRedisOptions, unavailable: UnavailableFactory) {
    this.#options = options;
    this.#unavailable = unavailable;
    const { connection } = options;
    if (connection.kind === 'external') {
      this.client = connection.client;
      this.#owned = false;
    } else {
      this.client = new Redis(connection.options);
      this.#owned = true;
      // Without a listener ioredis prints every failed reconnect; calls report
      // the last error in their unavailable error instead.
      this.client.on('error', (error: Error) => {
        this.#lastError = error;
      });
    }
  }

  /** Whether {@link RedisConnection.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The command connection once ready; waits at most `connectTimeoutMs`, fails on the first connection error. */
  ready(): Promise<Redis> {
    if (this.#closed) return Promise.reject(this.#unavailable('connection closed'));
    const redis = this.client;
    if (redis.status === 'ready') return Promise.resolve(redis);
    if (redis.status === 'end') {
      return Promise.reject(this.#unavailable('connection ended', this.#lastError));
    }
    if (this.#connecting !== undefined) return this.#connecting.promise;
    if (redis.status === 'wait') redis.connect().catch(() => undefined);
    let reject: (error: Error) => void = () => undefined;
    const promise = new Promise<Redis>((resolve, rejectPromise) => {
      const settle = (error: Error | undefined): void => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
        redis.off('end', onEnd);
        this.#connecting = undefined;
        if (error === undefined) resolve(redis);
        else rejectPromise(error);
      };
      const onReady = (): void => settle(undefined);
      const onError = (error: Error): void => settle(this.#unavailable(`cannot connect: ${error.message}`, error));
      const onEnd = (): void => settle(this.#unavailable('connection ended', this.#lastError));
      const timer = setTimeout(() => {
        const last = this.#lastError === undefined ? '' : ` (last error: ${this.#lastError.message})`;
        settle(this.#unavailable(`not connected within ${this.#options.connectTimeoutMs} ms${last}`, this.#lastError));
      }, this.#options.connectTimeoutMs);
      redis.once('ready', onReady);
      redis.on('error', onError);
      redis.once('end', onEnd);
      reject = settle;
    });
    this.#connecting = { promise, reject };
    return promise;
  }

  /** Run one script, bounded by `commandTimeoutMs` (or `timeoutMs`), with errors mapped. */
  async run(
    loaded: LoadedScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    timeoutMs = this.#options.commandTimeoutMs,
  ): Promise<unknown> {
    const redis = await this.ready();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.#unavailable(`no reply within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([runScript(redis, loaded, keys, args), timeout]);
    } catch (error) {
      throw this.mapError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connection errors and transient replies become the unavailable error; other replies pass as they are. */
  mapError(error: unknown): unknown {
    if (error instanceof ShardworkError) return error;
    if (!(error instanceof Error)) return this.#unavailable(String(error), error);
    if (error.name === 'ReplyError') {
      // Other reply errors (NOPERM, WRONGTYPE, a script error) are configuration
      // or data problems that retrying does not fix: pass them on as they are.
      return TRANSIENT_REPLY.test(error.message) ? this.#unavailable(error.message, error) : error;
    }
    // Connection closed, stream not writeable, max retries, socket timeout, ECONNREFUSED…
    return this.#unavailable(error.message, error);
  }

  /**
   * A new subscriber connection (a duplicate keeps host, TLS and credentials),
   * fail-fast, reconnecting on its own; closed with this connection. It does
   * not resubscribe by itself: subscribe again on every `ready`.
   */
  subscriber(): Redis {
    const sub = this.client.duplicate({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      retryStrategy: reconnectDelay,
      socketTimeout: undefined,
      connectTimeout: this.#options.connectTimeoutMs,
    });
    sub.on('error', () => undefined); // reconnects on its own; callers cover the gap
    this.#subscribers.push(sub);
    return sub;
  }

  /** Close the subscribers and, if owned, the command connection; at most about 1 s. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connecting?.reject(this.#unavailable('connection closed'));
    const closing: Promise<unknown>[] = [];
    const end = (redis: Redis): void => {
      // Only an open socket emits 'end' after disconnect(); one that is waiting
      // to reconnect just stops waiting. The timer bounds close() regardless.
      if (redis.status === 'connect' || redis.status === 'connecting' || redis.status === 'ready') {
        closing.push(
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            redis.once('end', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
        );
      }
      if (redis.status !== 'end') redis.disconnect();
    };
    for (const sub of this.#subscribers) end(sub);
    if (this.#owned) end(this.client);
    await Promise.all(closing);
  }
}
