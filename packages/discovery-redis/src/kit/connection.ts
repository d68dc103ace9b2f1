/**
 * One fail-fast ioredis connection, shared by every shardwork package that
 * talks to Redis (discovery, the job adapter): connect on first use within
 * `connectTimeoutMs`, bound every script call by `commandTimeoutMs`, map
 * connection and transient reply errors to the caller's "unavailable" error,
 * open a subscriber duplicate, close within a bound.
 *
 * @module
 */

import { BackendRefusedError, ShardworkError } from '@shardwork/core';
import { explainTlsError } from '@shardwork/core/backend';
import { Cluster, Redis } from 'ioredis';
import type { CompiledRedisConnection, RedisClient } from './connection-options.js';
import { FAIL_FAST, reconnectDelay, TRANSIENT_REPLY } from './fail-fast.js';
import { type LoadedScript, runScript } from './lua.js';

/**
 * Builds the error a caller reports when Redis cannot be reached. `ambiguous`
 * is true when a command was sent and its reply never came, so it may have run.
 */
export type UnavailableFactory = (detail: string, cause?: unknown, ambiguous?: boolean) => Error;

/** ioredis errors of a command that was never written to the socket (no connection, offline queue off). */
const NOT_SENT = /Stream isn't writeable|enableOfflineQueue|MaxRetriesPerRequest|Connection in subscriber mode/;

/**
 * The {@link BackendRefusedError} for a refusal that retrying does not fix
 * (wrong credentials, an ACL without a needed command, key or channel, a TLS
 * certificate either side rejects), or `undefined` for any other error.
 * @param target - where we connect, without secrets.
 */
export function redisRefusal(error: unknown, target: string): BackendRefusedError | undefined {
  if (error instanceof BackendRefusedError) return error;
  const backend = `Redis at ${target}`;
  // A cluster that cannot load its slots reports the last node's error beside its own.
  const nodeError = (error as { lastNodeError?: unknown } | undefined)?.lastNodeError;
  const tls = explainTlsError(error) ?? explainTlsError(nodeError);
  if (tls !== undefined) return new BackendRefusedError(backend, 'tls', tls, error);
  // A transaction with a refused command fails as EXECABORT, carrying the refusal among its previous errors.
  const previous = (error as { previousErrors?: unknown[] } | undefined)?.previousErrors ?? [];
  for (const e of [error, nodeError, ...previous]) {
    const message = e instanceof Error ? e.message : '';
    if (/^(WRONGPASS|NOAUTH)\b/.test(message)) {
      return new BackendRefusedError(
        backend,
        'auth',
        `${message} (check the user name and password; in a URL, percent-encode special characters such as @ : / as %40 %3A %2F)`,
        error,
      );
    }
    if (/^ERR DB index is out of range\b/.test(message)) {
      return new BackendRefusedError(
        backend,
        'config',
        `${message}: the server has no such database (16 by default, 0–15; see its "databases" setting): fix the /<db> of the URL`,
        error,
      );
    }
    if (/^NOPERM\b/.test(message)) {
      return new BackendRefusedError(
        backend,
        'permission',
        `${message} (the ACL user lacks a command, key or channel that shardwork needs; the package README lists the exact ACL)`,
        error,
      );
    }
  }
  return undefined;
}

/** See the module documentation. */
export class RedisConnection {
  /** The command connection (owned, or the caller's client): one server, Sentinel-managed, or a cluster. */
  readonly client: RedisClient;
  readonly #options: CompiledRedisConnection;
  readonly #owned: boolean;
  readonly #unavailable: UnavailableFactory;
  readonly #subscribers: RedisClient[] = [];
  #connecting: { promise: Promise<RedisClient>; reject: (error: Error) => void } | undefined;
  #lastError: Error | undefined;
  #lastSentinelError: Error | undefined;
  /** A refusal no reconnect fixes (a database the server does not have): every call fails with it. */
  #refused: BackendRefusedError | undefined;
  #closed = false;

  /**
   * @param options - compiled connection options (`compileOptions` of this package).
   * @param unavailable - the error to report for an outage, e.g. `DiscoveryUnavailableError`.
   */
  constructor(options: CompiledRedisConnection, unavailable: UnavailableFactory) {
    this.#options = options;
    this.#unavailable = unavailable;
    const { connection } = options;
    if (connection.kind === 'external') {
      this.client = connection.client;
      this.#owned = false;
    } else {
      this.client =
        connection.kind === 'cluster'
          ? new Cluster(
              connection.nodes.map((n) => ({ ...n })),
              connection.options,
            )
          : new Redis(connection.options);
      this.#owned = true;
      this.#revive(this.client);
      // Without a listener ioredis prints every failed reconnect; calls report
      // the last error in their unavailable error instead.
      this.client.on('error', (error: Error) => {
        this.#lastError = error;
        // ioredis carries on in database 0 when its SELECT fails: never use that connection.
        const refused = redisRefusal(error, options.target);
        if (refused?.reason === 'config') {
          this.#refused = refused;
          this.client.disconnect(false);
        }
      });
      // What each sentinel said when it named no usable primary (ioredis's own error omits it).
      this.client.on('sentinelError', (error: Error) => {
        this.#lastSentinelError = error;
      });
    }
  }

  /** Whether {@link RedisConnection.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether this is a Redis Cluster connection. */
  get isCluster(): boolean {
    return this.client instanceof Cluster;
  }

  /**
   * The connections to every primary: the cluster's masters, or the one
   * connection. For commands that must visit every node, such as `SCAN`.
   */
  async primaries(): Promise<Redis[]> {
    const client = await this.ready();
    return client instanceof Cluster ? client.nodes('master') : [client];
  }

  /**
   * The command connection once ready; waits at most `connectTimeoutMs`, fails
   * on the first connection error (with {@link BackendRefusedError} when
   * retrying cannot help: TLS, credentials).
   */
  ready(): Promise<RedisClient> {
    if (this.#closed) return Promise.reject(this.#unavailable('connection closed'));
    if (this.#refused !== undefined) return Promise.reject(this.#refused);
    const redis = this.client;
    if (redis.status === 'ready') return Promise.resolve(redis);
    if (redis.status === 'end' && !this.#owned) {
      return Promise.reject(this.#unavailable('connection ended', this.#lastError));
    }
    if (this.#connecting !== undefined) return this.#connecting.promise;
    // An owned connection that ended (see #revive) connects again now.
    if (redis.status === 'wait' || redis.status === 'end') redis.connect().catch(() => undefined);
    let reject: (error: Error) => void = () => undefined;
    const promise = new Promise<RedisClient>((resolve, rejectPromise) => {
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
      const onError = (error: Error): void =>
        settle(
          redisRefusal(error, this.#options.target) ??
            this.#unavailable(
              `cannot connect: ${this.#explain(error)}${(error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? this.#tlsHint() : ''}`,
              error,
            ),
        );
      const onEnd = (): void => settle(this.#unavailable('connection ended', this.#lastError));
      const timer = setTimeout(() => {
        const last = this.#lastError === undefined ? '' : ` (last error: ${this.#explain(this.#lastError)})`;
        settle(
          this.#unavailable(
            `not connected within ${this.#options.connectTimeoutMs} ms${last}${this.#tlsHint()}`,
            this.#lastError,
          ),
        );
      }, this.#options.connectTimeoutMs);
      redis.once('ready', onReady);
      redis.on('error', onError);
      redis.once('end', onEnd);
      reject = settle;
    });
    this.#connecting = { promise, reject };
    return promise;
  }

  /** For a connection that timed out: a plain port that is sent a TLS handshake waits for more bytes, silently. */
  #tlsHint(): string {
    const { connection } = this.#options;
    const tls =
      connection.kind === 'owned'
        ? connection.options.tls !== undefined
        : connection.kind === 'cluster' && connection.options.redisOptions?.tls !== undefined;
    return tls ? '; with TLS on, a port that serves plain TCP stays silent like this: check the scheme' : '';
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
      timer = setTimeout(
        () => reject(this.#unavailable(`no reply within ${timeoutMs} ms`, undefined, true)),
        timeoutMs,
      );
    });
    try {
      const sync = this.#options.syncReplicas;
      // WAIT gets 40% of the budget, less the 100 ms granularity of Redis's timeouts (hz 10), so
      // that a missing replica is reported as such and not as a timeout, even when a NOSCRIPT
      // makes the script and its WAIT go twice.
      const waitMs = Math.max(10, Math.floor(timeoutMs * 0.4) - 100);
      const reply = await Promise.race([runScript(redis, loaded, keys, args, sync, waitMs), timeout]);
      if (sync > 0) {
        const { result, replicas } = reply as { result: unknown; replicas: number };
        if (replicas < sync) {
          throw this.#unavailable(
            `the write reached the primary but only ${replicas} of ${sync} replicas (syncReplicas) within ${waitMs} ms`,
            undefined,
            true,
          );
        }
        return result;
      }
      return reply;
    } catch (error) {
      throw this.mapError(error, true);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Refusals become {@link BackendRefusedError}, connection errors and
   * transient replies the unavailable error; other replies pass as they are.
   * @param sent - the command was handed to a ready connection: a connection
   *   error may have come after Redis ran it (the unavailable error says it is
   *   ambiguous), unless ioredis says it never wrote it.
   */
  mapError(error: unknown, sent = false): unknown {
    if (error instanceof ShardworkError) return error;
    if (!(error instanceof Error)) return this.#unavailable(String(error), error, sent);
    const refused = redisRefusal(error, this.#options.target);
    if (refused !== undefined) return refused;
    if (error.name === 'ReplyError') {
      // Other reply errors (NOPERM, WRONGTYPE, a script error) are configuration
      // or data problems that retrying does not fix: pass them on as they are.
      // A transient one (READONLY, LOADING…) is a refusal: the command did not run.
      return TRANSIENT_REPLY.test(error.message) ? this.#unavailable(error.message, error) : error;
    }
    // Connection closed, stream not writeable, max retries, socket timeout, ECONNREFUSED…
    return this.#unavailable(this.#explain(error), error, sent && !NOT_SENT.test(error.message));
  }

  /**
   * The message of a connection error, with what ioredis leaves out: "All
   * sentinels are unreachable" is also what it says when every sentinel
   * answered but none named a primary it could reach (a failover under way).
   */
  #explain(error: Error): string {
    if (!error.message.startsWith('All sentinels are unreachable') || error.message.includes('Last error')) {
      return error.message;
    }
    const sentinel = this.#lastSentinelError?.message;
    return sentinel === undefined
      ? error.message
      : `no sentinel named a primary that could be reached (a failover may be under way); last sentinel reply: ${sentinel}`;
  }

  /**
   * A new subscriber connection (a duplicate keeps host, TLS and credentials),
   * fail-fast, reconnecting on its own; closed with this connection. It does
   * not resubscribe by itself: subscribe again on every `ready`.
   */
  subscriber(): RedisClient {
    const node = {
      lazyConnect: true,
      ...FAIL_FAST,
      retryStrategy: reconnectDelay,
      socketTimeout: undefined,
      connectTimeout: this.#options.connectTimeoutMs,
    };
    const { client } = this;
    const sub =
      client instanceof Cluster
        ? client.duplicate(undefined, {
            lazyConnect: true,
            enableOfflineQueue: FAIL_FAST.enableOfflineQueue,
            redisOptions: { ...client.options.redisOptions, ...node, lazyConnect: false },
          })
        : client.duplicate(node);
    sub.on('error', () => undefined); // reconnects on its own; callers cover the gap
    this.#revive(sub);
    this.#subscribers.push(sub);
    return sub;
  }

  /**
   * Connect `redis` again when it ends while this connection is open. ioredis
   * ends a client for good when its connector fails instead of retrying: with
   * Sentinel that happens when a failover turns the connection over while it
   * connects ("Connection is closed" from the sentinel connector). Without
   * this, every later call failed with "connection ended", and a subscriber
   * stayed away until its owner's idle re-check.
   */
  #revive(redis: RedisClient): void {
    let attempt = 0;
    redis.on('ready', () => {
      attempt = 0;
    });
    redis.on('end', () => {
      if (this.#closed) return;
      const timer = setTimeout(() => {
        if (!this.#closed && this.#refused === undefined && redis.status === 'end')
          redis.connect().catch(() => undefined);
      }, reconnectDelay(++attempt));
      timer.unref();
    });
  }

  /** Close the subscribers and, if owned, the command connection; at most about 1 s. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connecting?.reject(this.#unavailable('connection closed'));
    const closing: Promise<unknown>[] = [];
    const end = (redis: RedisClient): void => {
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
