/**
 * The Redis discovery backend: one {@link RedisDiscovery} is a command
 * connection (plus a subscriber connection once somebody watches) to one Redis
 * server. Every operation is one Lua script from `./lua` that first reaps
 * expired members by the server's clock, so correctness never depends on
 * client clocks or on somebody running a cleanup job.
 *
 * @module
 */

import type { ConnectionOptions } from 'node:tls';
import {
  type ClaimResult,
  type Discovery,
  type DiscoveryEvent,
  type DiscoveryListener,
  DiscoveryUnavailableError,
  InvalidOptionsError,
  InvalidRecordError,
  LeaseExpiredError,
  type MemberInfo,
  type Registration,
  type Snapshot,
} from '@shardwork/core';
import type { Redis, RedisOptions } from 'ioredis';
import { RedisConnection, reconnectDelay } from './connection.js';
import { type RedisServiceKeys, serviceKeys } from './keys.js';
import { parsePositiveInteger, parseReap, parseSnapshot, UnexpectedReplyError } from './records.js';
import { type ScriptName, script } from './scripts.js';
import { parseRedisUrl, redactUrl } from './url.js';

/** Options of {@link RedisDiscovery}. Give at most one of `url`/`redis` (they combine) or `client`. */
export interface RedisDiscoveryOptions {
  /**
   * `redis://[[username][:password]@]host[:port][/db][?prefix=…]`, or `rediss://…`
   * for TLS. The query may also set `commandTimeoutMs`, `connectTimeoutMs` and
   * `pollIntervalMs`; explicit options win over the URL.
   * @defaultValue `redis://127.0.0.1:6379` when neither `redis` nor `client` is given
   */
  readonly url?: string;
  /**
   * ioredis options (host, port, tls, sentinels, …), applied over what `url`
   * says. The fail-fast settings (`enableOfflineQueue: false`,
   * `maxRetriesPerRequest: 0`, no resending after a reconnect) are always
   * enforced; `keyPrefix` is rejected (use `prefix`).
   * @defaultValue `{}`
   */
  readonly redis?: RedisOptions;
  /**
   * An existing ioredis connection to use for commands. It is not closed by
   * {@link RedisDiscovery.close}, and its own settings apply: for fail-fast
   * behaviour create it with `enableOfflineQueue: false` and
   * `maxRetriesPerRequest: 0`. Watching opens a `duplicate()` of it.
   * @defaultValue none: a connection is created from `url`/`redis`
   */
  readonly client?: Redis;
  /**
   * Prefix of every key and channel.
   * @defaultValue `"sw:"`
   */
  readonly prefix?: string;
  /**
   * TLS: `true` or Node TLS options (`ca`, `cert`, `key`, `servername`, …).
   * A `rediss://` URL turns it on as well.
   * @defaultValue `false` (`true` for `rediss://`)
   */
  readonly tls?: boolean | ConnectionOptions;
  /**
   * ACL user name (overrides the URL's).
   * @defaultValue the URL's, else none (the `default` user)
   */
  readonly username?: string;
  /**
   * Password (overrides the URL's).
   * @defaultValue the URL's, else none
   */
  readonly password?: string;
  /**
   * Database number (overrides the URL's path).
   * @defaultValue the URL's, else 0
   */
  readonly db?: number;
  /**
   * Longest wait for the reply of one call; then it rejects with
   * `DiscoveryUnavailableError` and a connection that stays silent that long is
   * replaced. Keep it below a third of the lease TTL so a slow heartbeat fails
   * while a retry can still succeed. (A heartbeat that reaches Redis after the
   * lease ran out still fails there: the scripts check expiry by server time.)
   * @defaultValue 1000
   */
  readonly commandTimeoutMs?: number;
  /**
   * Longest wait for a connection before a call rejects with
   * `DiscoveryUnavailableError`. A refused connection fails at once.
   * @defaultValue 2000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How often a watched service's revision is polled, to cover lost pub/sub
   * messages. Expiry of a watched member is detected by a timer at its expiry
   * independently of this.
   * @defaultValue 2000
   */
  readonly pollIntervalMs?: number;
}

/** {@link RedisDiscoveryOptions} validated, defaults filled. */
export interface CompiledRedisOptions {
  /** Options for a connection this instance owns, or the caller's client. */
  readonly connection:
    | { readonly kind: 'owned'; readonly options: RedisOptions }
    | { readonly kind: 'external'; readonly client: Redis };
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly pollIntervalMs: number;
  /** Where we connect, without secrets, for messages. */
  readonly target: string;
}

const DEFAULTS = { prefix: 'sw:', commandTimeoutMs: 1000, connectTimeoutMs: 2000, pollIntervalMs: 2000 } as const;

function checkDuration(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionsError(option, value, `a whole number of milliseconds >= ${min}`);
  }
  return value;
}

/**
 * Validate options and fill defaults; every later step reads only the result.
 * @throws InvalidOptionsError on the first option that is wrong.
 */
export function compileOptions(options: RedisDiscoveryOptions): CompiledRedisOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('options', options, 'an object');
  }
  const { client } = options;
  if (client !== undefined) {
    const clash = (['url', 'redis', 'tls', 'username', 'password', 'db'] as const).find(
      (k) => options[k] !== undefined,
    );
    if (clash !== undefined) {
      throw new InvalidOptionsError(clash, options[clash], 'not to be combined with "client" (configure the client)');
    }
    if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
      throw new InvalidOptionsError('client', client, 'an ioredis Redis instance');
    }
    if (client.options?.keyPrefix) {
      throw new InvalidOptionsError('client.options.keyPrefix', client.options.keyPrefix, 'unset (use "prefix")');
    }
  }
  if (options.url !== undefined && typeof options.url !== 'string') {
    throw new InvalidOptionsError('url', options.url, 'a redis:// or rediss:// URL');
  }
  const fromUrl = options.url === undefined ? undefined : parseRedisUrl(options.url);
  if (options.redis !== undefined && (typeof options.redis !== 'object' || options.redis === null)) {
    throw new InvalidOptionsError('redis', options.redis, 'an object of ioredis options');
  }
  if (options.redis?.keyPrefix) {
    throw new InvalidOptionsError('redis.keyPrefix', options.redis.keyPrefix, 'unset (use "prefix")');
  }

  const prefix = options.prefix ?? fromUrl?.prefix ?? DEFAULTS.prefix;
  if (typeof prefix !== 'string') throw new InvalidOptionsError('prefix', prefix, 'a string');
  const commandTimeoutMs = checkDuration(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? fromUrl?.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
    1,
  );
  const connectTimeoutMs = checkDuration(
    'connectTimeoutMs',
    options.connectTimeoutMs ?? fromUrl?.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    1,
  );
  const pollIntervalMs = checkDuration(
    'pollIntervalMs',
    options.pollIntervalMs ?? fromUrl?.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    10,
  );

  if (client !== undefined) {
    const { host, port } = client.options ?? {};
    return {
      connection: { kind: 'external', client },
      prefix,
      commandTimeoutMs,
      connectTimeoutMs,
      pollIntervalMs,
      target: `${host ?? '?'}:${port ?? '?'} (caller's client)`,
    };
  }

  if (options.tls !== undefined && typeof options.tls !== 'boolean' && typeof options.tls !== 'object') {
    throw new InvalidOptionsError('tls', options.tls, 'a boolean or TLS connection options');
  }
  for (const key of ['username', 'password'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'string') {
      throw new InvalidOptionsError(key, key === 'password' ? '***' : options[key], 'a string');
    }
  }
  if (options.db !== undefined && (!Number.isSafeInteger(options.db) || options.db < 0)) {
    throw new InvalidOptionsError('db', options.db, 'a non-negative integer');
  }

  const base: RedisOptions = fromUrl?.redis ?? (options.redis === undefined ? { host: '127.0.0.1', port: 6379 } : {});
  const merged: RedisOptions = { ...base, ...options.redis };
  if (options.username !== undefined) merged.username = options.username;
  if (options.password !== undefined) merged.password = options.password;
  if (options.db !== undefined) merged.db = options.db;
  if (options.tls === true) merged.tls = { ...merged.tls };
  else if (options.tls === false) delete merged.tls;
  else if (options.tls !== undefined) merged.tls = { ...merged.tls, ...options.tls };

  const connectionOptions: RedisOptions = {
    retryStrategy: reconnectDelay,
    ...merged,
    // Fail fast: a call either reaches Redis now or fails; nothing is queued
    // while disconnected or resent after a reconnect (a late claim or heartbeat
    // would act on state the caller has already given up on).
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    connectTimeout: merged.connectTimeout ?? connectTimeoutMs,
    // A socket that sends nothing back for this long is dead or stalled: drop it and reconnect.
    socketTimeout: merged.socketTimeout ?? commandTimeoutMs,
  };
  const target =
    options.url !== undefined
      ? redactUrl(options.url)
      : `${merged.tls ? 'rediss' : 'redis'}://${merged.host ?? '127.0.0.1'}:${merged.port ?? 6379}/${merged.db ?? 0}`;
  return {
    connection: { kind: 'owned', options: connectionOptions },
    prefix,
    commandTimeoutMs,
    connectTimeoutMs,
    pollIntervalMs,
    target,
  };
}

interface Listening {
  readonly listener: DiscoveryListener;
}

/** Watch bookkeeping for one service of this connection. */
interface WatchState {
  readonly service: string;
  readonly channel: string;
  readonly listeners: Set<Listening>;
  /** Last revision seen by a poll or message; `undefined` until the first poll. */
  revision: string | undefined;
  pollTimer: ReturnType<typeof setInterval> | undefined;
  expiryTimer: ReturnType<typeof setTimeout> | undefined;
  checking: boolean;
}

/** Time past a member's expiry before the expiry timer reaps, so it never fires a hair early. */
const EXPIRY_SLACK_MS = 5;

/**
 * A {@link Discovery} backed by Redis (standalone, or Sentinel through ioredis
 * options; the key layout is Cluster compatible, an ioredis `Cluster` client is not supported yet).
 *
 * ```ts
 * const discovery = new RedisDiscovery({ url: 'redis://127.0.0.1:6379/0?prefix=sw:' });
 * await discovery.ensureGroup('billing-sync', 8);
 * ```
 */
export class RedisDiscovery implements Discovery {
  /** Backend kind for messages. */
  readonly kind = 'redis';
  readonly #options: CompiledRedisOptions;
  readonly #connection: RedisConnection;
  #subscriber: Redis | undefined;
  #subscriberReadies = 0;
  readonly #watches = new Map<string, WatchState>();
  #closed = false;

  constructor(options: RedisDiscoveryOptions = {}) {
    this.#options = compileOptions(options);
    this.#connection = new RedisConnection(this.#options, (detail, cause) => this.#unavailable(detail, cause));
  }

  /** Key prefix in use. */
  get prefix(): string {
    return this.#options.prefix;
  }

  /** Names of the keys and the channel of `service` (for tooling and tests). */
  keys(service: string): RedisServiceKeys {
    return serviceKeys(this.#options.prefix, service);
  }

  #unavailable(detail: string, cause?: unknown): DiscoveryUnavailableError {
    return new DiscoveryUnavailableError('redis', `${this.#options.target}: ${detail}`, cause);
  }

  /** Run one script for `service`, bounded by `commandTimeoutMs`, with errors mapped to the contract. */
  #run(name: ScriptName, keys: RedisServiceKeys, args: readonly (string | number)[]): Promise<unknown> {
    const loaded = script(name); // a missing .lua file is a packaging bug, not an outage: let it through
    return this.#connection.run(loaded, keys.all, [keys.events, ...args]);
  }

  async ensureGroup(service: string, shardCount: number): Promise<number> {
    if (!Number.isSafeInteger(shardCount) || shardCount < 1) {
      throw new InvalidOptionsError('shards', shardCount, 'a positive integer');
    }
    const keys = this.keys(service);
    const reply = await this.#run('ensure-group', keys, [String(shardCount)]);
    const stored = parsePositiveInteger(reply);
    if (stored === undefined)
      throw new InvalidRecordError(`${keys.meta}[shardCount]`, `not a positive integer: ${reply}`);
    return stored;
  }

  async register(service: string, member: MemberInfo, ttlMs: number): Promise<Registration> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
      throw new InvalidOptionsError('ttlMs', ttlMs, 'a whole number of milliseconds >= 1');
    }
    if (typeof member?.id !== 'string' || member.id === '') {
      throw new InvalidOptionsError('member.id', member?.id, 'a non-empty string');
    }
    const keys = this.keys(service);
    // Only the contract's fields, in a fixed order; the script prepends ttlMs and joinSeq.
    const json = JSON.stringify({
      id: member.id,
      host: member.host,
      pid: member.pid,
      startedAt: member.startedAt,
      weight: member.weight,
      labels: member.labels,
    });
    const reply = await this.#run('register', keys, [member.id, String(ttlMs), json]);
    const joinSeq = parsePositiveInteger(reply);
    if (joinSeq === undefined) throw new UnexpectedReplyError('register', reply);
    return { joinSeq };
  }

  async renew(service: string, memberId: string): Promise<void> {
    const reply = await this.#run('renew', this.keys(service), [memberId]);
    if (reply !== 1) throw new LeaseExpiredError(memberId);
  }

  async unregister(service: string, memberId: string): Promise<void> {
    await this.#run('unregister', this.keys(service), [memberId]);
  }

  async snapshot(service: string): Promise<Snapshot> {
    const keys = this.keys(service);
    const snapshot = parseSnapshot(keys, await this.#run('snapshot', keys, []));
    const watched = this.#watches.get(keys.events);
    if (watched !== undefined) {
      // Fresh expiry data for free: keep the expiry timer accurate between polls.
      const earliest = Math.min(...snapshot.members.map((m) => m.expiresInMs ?? Number.POSITIVE_INFINITY));
      this.#scheduleExpiry(watched, Number.isFinite(earliest) ? earliest : undefined);
    }
    return snapshot;
  }

  async claim(service: string, memberId: string, shard: number): Promise<ClaimResult> {
    if (!Number.isSafeInteger(shard) || shard < 0) throw new InvalidOptionsError('shard', shard, 'an integer >= 0');
    const reply = await this.#run('claim', this.keys(service), [memberId, String(shard)]);
    if (Array.isArray(reply)) {
      const [status, a, b] = reply as unknown[];
      if (status === -1) throw new LeaseExpiredError(memberId);
      if (status === 1) {
        const token = parsePositiveInteger(a);
        if (token !== undefined) return { ok: true, token };
      }
      if (status === 0 && typeof a === 'string') {
        const token = parsePositiveInteger(b);
        if (token !== undefined) return { ok: false, owner: a, token };
      }
    }
    throw new UnexpectedReplyError('claim', reply);
  }

  async release(service: string, memberId: string, shard: number, token: number): Promise<boolean> {
    if (!Number.isSafeInteger(shard) || shard < 0) throw new InvalidOptionsError('shard', shard, 'an integer >= 0');
    if (!Number.isSafeInteger(token)) throw new InvalidOptionsError('token', token, 'an integer');
    const reply = await this.#run('release', this.keys(service), [memberId, String(shard), String(token)]);
    return reply === 1;
  }

  watch(service: string, listener: DiscoveryListener): () => void {
    const { events: channel } = this.keys(service);
    if (this.#closed) return () => undefined;
    let state = this.#watches.get(channel);
    if (state === undefined) {
      const created: WatchState = {
        service,
        channel,
        listeners: new Set(),
        revision: undefined,
        pollTimer: undefined,
        expiryTimer: undefined,
        checking: false,
      };
      this.#watches.set(channel, created);
      created.pollTimer = setInterval(() => void this.#check(created), this.#options.pollIntervalMs);
      created.pollTimer.unref?.();
      this.#subscribe(created);
      // The baseline revision: every later poll compares with it, so a change
      // whose message is lost is still noticed within one poll interval.
      void this.#check(created);
      state = created;
    }
    const watched = state;
    const entry: Listening = { listener };
    watched.listeners.add(entry);
    return () => {
      if (!watched.listeners.delete(entry) || watched.listeners.size > 0) return;
      if (this.#watches.get(channel) === watched) this.#unwatchService(watched);
    };
  }

  #unwatchService(state: WatchState): void {
    this.#watches.delete(state.channel);
    clearInterval(state.pollTimer);
    clearTimeout(state.expiryTimer);
    state.pollTimer = undefined;
    state.expiryTimer = undefined;
    const sub = this.#subscriber;
    if (sub?.status === 'ready' && !this.#closed) sub.unsubscribe(state.channel).catch(() => undefined);
  }

  #notify(state: WatchState, event: DiscoveryEvent): void {
    for (const entry of [...state.listeners]) {
      // Checked per call: a listener may unsubscribe another one.
      if (!state.listeners.has(entry) || this.#closed) continue;
      try {
        entry.listener(event);
      } catch {
        // A throwing listener must not break the subscriber or the other listeners.
      }
    }
  }

  #ensureSubscriber(): Redis {
    if (this.#subscriber !== undefined) return this.#subscriber;
    // It resubscribes by itself on every ready so it knows when the subscription is live.
    const sub = this.#connection.subscriber();
    sub.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    sub.on('ready', () => void this.#onSubscriberReady(sub));
    this.#subscriber = sub;
    return sub;
  }

  #subscribe(state: WatchState): void {
    const sub = this.#ensureSubscriber();
    if (sub.status === 'ready') sub.subscribe(state.channel).catch(() => undefined);
    else if (sub.status === 'wait') sub.connect().catch(() => undefined);
    // Otherwise it is connecting: #onSubscriberReady subscribes every watched channel.
  }

  async #onSubscriberReady(sub: Redis): Promise<void> {
    const first = this.#subscriberReadies === 0;
    this.#subscriberReadies += 1;
    const channels = [...this.#watches.keys()];
    if (channels.length > 0) {
      try {
        await sub.subscribe(...channels);
      } catch {
        // Lost again already; the next ready retries.
        return;
      }
    }
    for (const state of [...this.#watches.values()]) {
      // Messages may have been missed while the subscriber was away.
      if (!first) this.#notify(state, { type: 'reset' });
      void this.#check(state);
    }
  }

  #onMessage(channel: string, revision: string): void {
    const state = this.#watches.get(channel);
    if (state === undefined || state.revision === revision) return;
    state.revision = revision;
    this.#notify(state, { type: 'change' });
  }

  /** Reap, compare the revision with the last one seen, and re-arm the expiry timer. Never rejects. */
  async #check(state: WatchState): Promise<void> {
    if (state.checking || this.#closed) return;
    state.checking = true;
    let result: ReturnType<typeof parseReap>;
    try {
      result = parseReap(await this.#run('reap', this.keys(state.service), []));
    } catch {
      return; // unreachable now: the next poll or a reconnect tries again
    } finally {
      state.checking = false;
    }
    if (this.#watches.get(state.channel) !== state) return;
    const changed = state.revision !== undefined && state.revision !== result.revision;
    state.revision = result.revision;
    if (changed) this.#notify(state, { type: 'change' });
    this.#scheduleExpiry(state, result.nextExpiryMs);
  }

  /**
   * Run a reap just after the earliest lease of a watched service runs out, so
   * an expired member is removed and announced even if nobody else writes.
   */
  #scheduleExpiry(state: WatchState, inMs: number | undefined): void {
    clearTimeout(state.expiryTimer);
    state.expiryTimer = undefined;
    if (inMs === undefined || this.#closed || this.#watches.get(state.channel) !== state) return;
    state.expiryTimer = setTimeout(() => {
      state.expiryTimer = undefined;
      void this.#check(state);
    }, inMs + EXPIRY_SLACK_MS);
    state.expiryTimer.unref?.();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of [...this.#watches.values()]) this.#unwatchService(state);
    await this.#connection.close();
  }

  /** `await using discovery = new RedisDiscovery(…)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Create a {@link RedisDiscovery} from a `redis://` or `rediss://` URL; what
 * `createDiscovery()` of `@shardwork/core` calls for those protocols.
 *
 * @example `discoveryFromUrl('rediss://worker:s3cret@redis.internal:6380/2?prefix=billing:')`
 */
export function discoveryFromUrl(url: string): RedisDiscovery {
  return new RedisDiscovery({ url });
}
