/**
 * Options of the RabbitMQ job adapter and {@link compileAmqpJobOptions}, the one
 * place that validates them: the URL (`amqp[s]://user:password@host:port/vhost?…`),
 * its query parameters, and the explicit options, which win over the URL.
 *
 * @module
 */

import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { type Discovery, InvalidOptionsError, parseDiscoveryUrl, redactUrl, unencodedUserinfo } from '@shardwork/core';
import { checkQueueList } from '@shardwork/jobs/adapter';

/** Options of the RabbitMQ job adapter (`createJobQueue('amqp://…', { adapter: { … } })` or `new AmqpJobAdapter(…)`). */
export interface AmqpJobOptions {
  /**
   * `amqp[s]://[user[:password]@]host[:port][/vhost]`; user, password and vhost
   * are percent-decoded (`%2F` is the vhost `/`). The query may carry
   * `prefix`, `partitions`, `heartbeat`, `deliveryLimit`, `leaseTtlMs`,
   * `connectTimeoutMs` and `discovery` (a percent-encoded discovery URL).
   * Unknown parameters are refused.
   * @defaultValue `amqp://guest:guest@127.0.0.1:5672`
   */
  readonly url?: string;
  /** User name (over the URL's). */
  readonly username?: string;
  /** Password (over the URL's). */
  readonly password?: string;
  /** Virtual host (over the URL's). @defaultValue `/` */
  readonly vhost?: string;
  /** TLS: `true` or Node TLS options (CA, client certificate); `amqps://` turns it on. */
  readonly tls?: boolean | TlsOptions;
  /**
   * Heartbeat in seconds: a broker that does not hear from this process for
   * about twice this long closes its connection and hands its unacknowledged
   * jobs to other consumers (a paused process, a cut network).
   * @defaultValue 10
   */
  readonly heartbeat?: number;
  /**
   * Prefix of every queue and exchange name (letters, digits, `_`, `-`, `.`; at most 50).
   * @defaultValue `"swj"`
   */
  readonly prefix?: string;
  /**
   * Partitioned mode: each job queue is split into this many partition queues,
   * a job goes to `hash(key) mod partitions` (keyless jobs anywhere), and the
   * partition queues are handed to the consumer replicas by a core `Worker`.
   * Needed for `ordered` handlers. `0`: one queue per handler, all consumers compete.
   * @defaultValue 0
   */
  readonly partitions?: number;
  /**
   * Partitioned mode: where the replicas coordinate, a discovery URL or instance.
   * Required with `partitions`.
   */
  readonly discovery?: string | Discovery;
  /** Partitioned mode: lease TTL of a consumer replica. @defaultValue 10000 */
  readonly leaseTtlMs?: number;
  /** Partitioned mode: how long a partition moved to another replica lets its running jobs finish. @defaultValue 10000 */
  readonly revokeTimeoutMs?: number;
  /**
   * Deliveries of one message before the broker gives up on it and moves it to
   * the dead queue (`x-delivery-limit` of the quorum queues). Deliveries are
   * counted by the broker: a consumer that crashes, or a stop that puts a
   * running job back, uses one. Failed attempts are counted by `maxFails`.
   * @defaultValue 20
   */
  readonly deliveryLimit?: number;
  /**
   * Queues this process consumes.
   * @defaultValue the queues of the registered handlers and periodic jobs
   */
  readonly queues?: readonly string[];
  /** How long `start()` waits for the broker. @defaultValue 30000 */
  readonly startTimeoutMs?: number;
  /** How long `perform` waits for an unreachable broker before it rejects with `QueueUnavailableError`. @defaultValue 5000 */
  readonly enqueueTimeoutMs?: number;
  /** Longest wait for one connection attempt. @defaultValue 5000 */
  readonly connectTimeoutMs?: number;
}

/** Options after {@link compileAmqpJobOptions}. */
export interface CompiledAmqpJobOptions {
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  readonly tls: boolean | TlsOptions;
  readonly heartbeat: number;
  readonly prefix: string;
  readonly partitions: number;
  readonly discovery: string | Discovery | undefined;
  readonly leaseTtlMs: number;
  readonly revokeTimeoutMs: number;
  readonly deliveryLimit: number;
  readonly queues: readonly string[] | undefined;
  readonly startTimeoutMs: number;
  readonly enqueueTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Where we connect, without secrets: `amqp://host:port/vhost`. */
  readonly target: string;
}

const URL_PARAMS = [
  'prefix',
  'partitions',
  'heartbeat',
  'deliveryLimit',
  'leaseTtlMs',
  'connectTimeoutMs',
  'discovery',
] as const;
type UrlParam = (typeof URL_PARAMS)[number];

/** A URL with its password replaced by `***`, for messages. */
export const redactAmqpUrl: (url: string) => string = redactUrl;

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(option, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

function text(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidOptionsError(option, value, 'a string');
  return value;
}

interface ParsedUrl {
  readonly tls: boolean;
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  readonly params: Partial<Record<UrlParam, string>>;
}

function parseUrl(url: string): ParsedUrl {
  const shown = redactAmqpUrl(url);
  const unencoded = unencodedUserinfo(url);
  if (unencoded !== undefined) {
    throw new InvalidOptionsError('url', shown, unencoded.replace('redis://', 'amqp://').replace(':6379', ':5672'));
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidOptionsError('url', shown, 'a URL such as "amqp://user:password@127.0.0.1:5672/vhost"');
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new InvalidOptionsError('url', shown, 'an amqp:// or amqps:// URL');
  }
  const params: Partial<Record<UrlParam, string>> = {};
  for (const [name, value] of parsed.searchParams) {
    if (!(URL_PARAMS as readonly string[]).includes(name)) {
      throw new InvalidOptionsError(
        'url',
        shown,
        `known query parameters only (${URL_PARAMS.join(', ')}); got "${name}"`,
      );
    }
    params[name as UrlParam] = value;
  }
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new InvalidOptionsError('url', shown, `a percent-encoded ${what}`);
    }
  };
  const tls = parsed.protocol === 'amqps:';
  const path = parsed.pathname.replace(/^\//, '');
  return {
    tls,
    hostname: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port === '' ? (tls ? 5671 : 5672) : Number(parsed.port),
    username: parsed.username === '' ? 'guest' : decode(parsed.username, 'user name'),
    password: parsed.password === '' && parsed.username === '' ? 'guest' : decode(parsed.password, 'password'),
    vhost: path === '' ? '/' : decode(path, 'virtual host'),
    params,
  };
}

/** Validate options and fill defaults. Throws `InvalidOptionsError` naming the option. */
export function compileAmqpJobOptions(options: AmqpJobOptions): CompiledAmqpJobOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options', options, 'an object');
  const url = text('url', options.url) ?? 'amqp://guest:guest@127.0.0.1:5672';
  const fromUrl = parseUrl(url);
  const numberFromUrl = (name: UrlParam): number | undefined => {
    const raw = fromUrl.params[name];
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw)) throw new InvalidOptionsError(name, raw, 'a whole number in the URL');
    return Number(raw);
  };
  const prefix = options.prefix ?? fromUrl.params.prefix ?? 'swj';
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.-]{1,50}$/.test(prefix) || prefix.startsWith('amq.')) {
    throw new InvalidOptionsError('prefix', prefix, '1–50 letters, digits, "_", "-" or "." (not starting with "amq.")');
  }
  const queues = checkQueueList(options.queues);
  const discovery = options.discovery ?? fromUrl.params.discovery;
  if (typeof discovery === 'string') parseDiscoveryUrl(discovery);
  else if (discovery !== undefined && typeof (discovery as Discovery)?.snapshot !== 'function') {
    throw new InvalidOptionsError('discovery', discovery, 'a discovery URL or a Discovery instance');
  }
  const partitions = integer('partitions', options.partitions ?? numberFromUrl('partitions') ?? 0, 0, 1024);
  if (partitions > 0 && discovery === undefined) {
    throw new InvalidOptionsError(
      'discovery',
      discovery,
      'a discovery URL or instance in partitioned mode (the replicas share out the partition queues through it)',
    );
  }
  const tls = options.tls ?? fromUrl.tls;
  if (typeof tls !== 'boolean' && (typeof tls !== 'object' || tls === null)) {
    throw new InvalidOptionsError('tls', tls, 'true, false or Node TLS options');
  }
  const hostname = fromUrl.hostname;
  const vhost = text('vhost', options.vhost) ?? fromUrl.vhost;
  return {
    hostname,
    port: integer('port', fromUrl.port, 1, 65535),
    username: text('username', options.username) ?? fromUrl.username,
    password: text('password', options.password) ?? fromUrl.password,
    vhost,
    tls,
    heartbeat: integer('heartbeat', options.heartbeat ?? numberFromUrl('heartbeat') ?? 10, 0, 3600),
    prefix,
    partitions,
    discovery,
    leaseTtlMs: integer('leaseTtlMs', options.leaseTtlMs ?? numberFromUrl('leaseTtlMs') ?? 10_000, 500, 3_600_000),
    revokeTimeoutMs: integer('revokeTimeoutMs', options.revokeTimeoutMs ?? 10_000, 0, 3_600_000),
    deliveryLimit: integer(
      'deliveryLimit',
      options.deliveryLimit ?? numberFromUrl('deliveryLimit') ?? 20,
      1,
      1_000_000,
    ),
    queues,
    startTimeoutMs: integer('startTimeoutMs', options.startTimeoutMs ?? 30_000, 0, 3_600_000),
    enqueueTimeoutMs: integer('enqueueTimeoutMs', options.enqueueTimeoutMs ?? 5000, 0, 3_600_000),
    connectTimeoutMs: integer(
      'connectTimeoutMs',
      options.connectTimeoutMs ?? numberFromUrl('connectTimeoutMs') ?? 5000,
      100,
      600_000,
    ),
    target: `${tls === false ? 'amqp' : 'amqps'}://${hostname.includes(':') ? `[${hostname}]` : hostname}:${fromUrl.port}/${encodeURIComponent(vhost)}`,
  };
}
