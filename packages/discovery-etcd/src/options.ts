/**
 * Options of the etcd backend, their one compile step, and the URL form.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import type { Etcd3 } from 'etcd3';

/** TLS material for `etcds://` or {@link EtcdDiscoveryOptions.tls}, as PEM buffers. */
export interface EtcdTlsOptions {
  /**
   * CA certificate(s) that sign the server certificates.
   * @defaultValue the system's root certificates
   */
  readonly rootCertificate?: Buffer;
  /**
   * Client private key, for servers that require client certificates.
   * @defaultValue none
   */
  readonly privateKey?: Buffer;
  /**
   * Client certificate chain matching {@link EtcdTlsOptions.privateKey}.
   * @defaultValue none
   */
  readonly certChain?: Buffer;
}

/** User name and password for etcd's authentication. */
export interface EtcdAuthOptions {
  /** etcd user name. */
  readonly username: string;
  /** Its password. */
  readonly password: string;
}

/** Options of {@link EtcdDiscovery}. Every duration is in milliseconds. */
export interface EtcdDiscoveryOptions {
  /**
   * Client endpoints of the cluster: an array or a comma-separated list of
   * `host:port` (port defaults to 2379) or `http(s)://host:port`. Give every
   * member so that calls move on when one is down.
   * @defaultValue `['127.0.0.1:2379']`
   */
  readonly endpoints?: string | readonly string[];
  /**
   * Talk TLS to etcd: `true` for the system's root certificates, or the
   * certificates to use. Implied by `https://` endpoints.
   * @defaultValue `false`
   */
  readonly tls?: boolean | EtcdTlsOptions;
  /**
   * User and password when etcd has authentication enabled.
   * @defaultValue none
   */
  readonly auth?: EtcdAuthOptions;
  /**
   * Key prefix of every shardwork key (`<prefix>/<service>/…`), without a
   * trailing slash. Use it to keep several installations apart.
   * @defaultValue `'sw'`
   */
  readonly prefix?: string;
  /**
   * Deadline of calls made before the first successful call (connection set-up,
   * TLS handshake, authentication) and of every authentication exchange.
   * @defaultValue 5000
   */
  readonly dialTimeoutMs?: number;
  /**
   * Deadline of every call once connected, including each lease renewal. A
   * frozen connection fails the call with `DiscoveryUnavailableError` after this.
   * @defaultValue 2000
   */
  readonly callTimeoutMs?: number;
  /**
   * Interval of gRPC keepalive pings on connections with open streams (the
   * watch), so that a silently dead connection is noticed. etcd rejects pings
   * more frequent than its `--grpc-keepalive-min-time` (5 s by default) and
   * then closes the connection: lower this only together with that server flag.
   * @defaultValue 5000
   */
  readonly keepaliveTimeMs?: number;
  /**
   * How long a keepalive ping may stay unanswered before the connection is
   * considered dead.
   * @defaultValue 2000
   */
  readonly keepaliveTimeoutMs?: number;
  /**
   * The server's `--max-txn-ops` (operations per transaction). `claimMany`
   * and `releaseMany` split a batch into transactions of at most
   * `maxTxnOps - 2` shards, so a server running with a lower limit needs it
   * here. At least 4.
   * @defaultValue 128 (etcd's default)
   */
  readonly maxTxnOps?: number;
  /**
   * An existing etcd3 client to use instead of creating one. It is not closed
   * by {@link EtcdDiscovery.close}, and its own retry and circuit-breaker
   * policies apply; `endpoints`, `tls`, `auth` and the keepalive options must
   * then be left out.
   * @defaultValue a client created from the options above
   */
  readonly client?: Etcd3;
}

/** {@link EtcdDiscoveryOptions} after validation, with every default filled in. */
export interface CompiledEtcdOptions {
  /** Endpoints with scheme, `http://h:p` or `https://h:p`; empty when a client was given. */
  readonly endpoints: readonly string[];
  readonly tls: false | EtcdTlsOptions;
  readonly auth: EtcdAuthOptions | undefined;
  readonly prefix: string;
  readonly dialTimeoutMs: number;
  readonly callTimeoutMs: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly maxTxnOps: number;
  readonly client: Etcd3 | undefined;
}

const DEFAULTS = {
  endpoints: ['127.0.0.1:2379'],
  prefix: 'sw',
  dialTimeoutMs: 5000,
  callTimeoutMs: 2000,
  keepaliveTimeMs: 5000,
  keepaliveTimeoutMs: 2000,
  maxTxnOps: 128,
} as const;

/** The smallest `maxTxnOps` accepted: a batch transaction needs room for at least two shards. */
const MIN_TXN_OPS = 4;

const KNOWN_OPTIONS = new Set([
  'endpoints',
  'tls',
  'auth',
  'prefix',
  'dialTimeoutMs',
  'callTimeoutMs',
  'keepaliveTimeMs',
  'keepaliveTimeoutMs',
  'maxTxnOps',
  'client',
]);

function duration(options: EtcdDiscoveryOptions, name: keyof typeof DEFAULTS & `${string}Ms`, min: number): number {
  const value: unknown = options[name];
  if (value === undefined) return DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || !Number.isInteger(value)) {
    throw new InvalidOptionsError(name, value, `an integer number of milliseconds >= ${min}`);
  }
  return value;
}

function txnOps(options: EtcdDiscoveryOptions): number {
  const value: unknown = options.maxTxnOps;
  if (value === undefined) return DEFAULTS.maxTxnOps;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < MIN_TXN_OPS) {
    throw new InvalidOptionsError('maxTxnOps', value, `an integer >= ${MIN_TXN_OPS} (the server's --max-txn-ops)`);
  }
  return value;
}

/**
 * Normalize one endpoint to `scheme://host:port`. Accepts `host`, `host:port`,
 * `[v6]:port` and `http(s)://host:port`.
 */
function normalizeEndpoint(raw: string, tls: boolean, option: string): string {
  const text = raw.trim();
  const match = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s/:[\]@?#,]+)(?::(\d{1,5}))?\/?$/.exec(text);
  if (match === null) {
    throw new InvalidOptionsError(option, raw, 'endpoints such as "10.0.0.1:2379" or "https://etcd-0:2379"');
  }
  const [, scheme, host, portText] = match;
  const port = portText === undefined ? 2379 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidOptionsError(option, raw, 'a port between 1 and 65535');
  }
  const secure = scheme === undefined ? tls : scheme === 'https';
  if (secure !== tls) {
    throw new InvalidOptionsError(
      option,
      raw,
      tls ? 'https:// endpoints (or none) when TLS is on' : 'no https:// endpoint unless every endpoint uses TLS',
    );
  }
  return `${secure ? 'https' : 'http'}://${host}:${port}`;
}

/** Validate options and fill defaults. Throws `InvalidOptionsError` naming the first bad option. */
export function compileEtcdOptions(options: EtcdDiscoveryOptions = {}): CompiledEtcdOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('options', options, 'an object');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key))
      throw new InvalidOptionsError(key, (options as Record<string, unknown>)[key], 'a known option');
  }

  const prefixValue: unknown = options.prefix ?? DEFAULTS.prefix;
  if (typeof prefixValue !== 'string') throw new InvalidOptionsError('prefix', prefixValue, 'a string');
  const prefix = prefixValue.replace(/\/+$/, '');
  if (prefix === '' || /[\s\0]/.test(prefix)) {
    throw new InvalidOptionsError(
      'prefix',
      prefixValue,
      'a non-empty key prefix without spaces, e.g. "sw" or "apps/sw"',
    );
  }

  const dialTimeoutMs = duration(options, 'dialTimeoutMs', 1);
  const callTimeoutMs = duration(options, 'callTimeoutMs', 1);
  const keepaliveTimeMs = duration(options, 'keepaliveTimeMs', 100);
  const keepaliveTimeoutMs = duration(options, 'keepaliveTimeoutMs', 100);
  const maxTxnOps = txnOps(options);

  const client = options.client;
  if (client !== undefined) {
    if (typeof client !== 'object' || client === null || typeof (client as Partial<Etcd3>).lease !== 'function') {
      throw new InvalidOptionsError('client', client, 'an Etcd3 client from the etcd3 package');
    }
    for (const key of ['endpoints', 'tls', 'auth', 'keepaliveTimeMs', 'keepaliveTimeoutMs'] as const) {
      if (options[key] !== undefined) {
        throw new InvalidOptionsError(key, options[key], 'to be left out when an existing client is given');
      }
    }
    return {
      endpoints: [],
      tls: false,
      auth: undefined,
      prefix,
      dialTimeoutMs,
      callTimeoutMs,
      keepaliveTimeMs,
      keepaliveTimeoutMs,
      maxTxnOps,
      client,
    };
  }

  const rawEndpoints: unknown = options.endpoints ?? DEFAULTS.endpoints;
  let list: string[];
  if (typeof rawEndpoints === 'string') list = rawEndpoints.split(',');
  else if (Array.isArray(rawEndpoints) && rawEndpoints.every((e) => typeof e === 'string')) list = [...rawEndpoints];
  else
    throw new InvalidOptionsError(
      'endpoints',
      rawEndpoints,
      'an array of "host:port" strings or a comma-separated list',
    );
  list = list.map((e) => e.trim());
  if (list.length === 0 || list.some((e) => e === '')) {
    throw new InvalidOptionsError('endpoints', rawEndpoints, 'at least one endpoint and no empty entries');
  }

  const tlsValue: unknown = options.tls;
  let tls: false | EtcdTlsOptions;
  if (tlsValue === undefined) {
    tls = list.some((e) => e.startsWith('https://')) ? {} : false;
  } else if (typeof tlsValue === 'boolean') {
    tls = tlsValue ? {} : false;
  } else if (typeof tlsValue === 'object' && tlsValue !== null) {
    const t = tlsValue as Record<string, unknown>;
    for (const key of Object.keys(t)) {
      if (!['rootCertificate', 'privateKey', 'certChain'].includes(key)) {
        throw new InvalidOptionsError(`tls.${key}`, t[key], 'one of rootCertificate, privateKey, certChain');
      }
      if (t[key] !== undefined && !Buffer.isBuffer(t[key])) {
        throw new InvalidOptionsError(`tls.${key}`, t[key], 'a Buffer with PEM data');
      }
    }
    if ((t.privateKey === undefined) !== (t.certChain === undefined)) {
      throw new InvalidOptionsError('tls', '(buffers)', 'privateKey and certChain together, or neither');
    }
    tls = tlsValue as EtcdTlsOptions;
  } else {
    throw new InvalidOptionsError('tls', tlsValue, 'a boolean or { rootCertificate?, privateKey?, certChain? }');
  }
  const endpoints = list.map((e, i) => normalizeEndpoint(e, tls !== false, `endpoints[${i}]`));

  let auth: EtcdAuthOptions | undefined;
  const authValue: unknown = options.auth;
  if (authValue !== undefined) {
    const a = authValue as Partial<Record<string, unknown>>;
    if (typeof authValue !== 'object' || authValue === null) {
      throw new InvalidOptionsError('auth', authValue, 'an object { username, password }');
    }
    if (typeof a.username !== 'string' || a.username === '') {
      throw new InvalidOptionsError('auth.username', a.username, 'a non-empty string');
    }
    if (typeof a.password !== 'string') throw new InvalidOptionsError('auth.password', '(hidden)', 'a string');
    auth = { username: a.username, password: a.password };
  }

  return {
    endpoints,
    tls,
    auth,
    prefix,
    dialTimeoutMs,
    callTimeoutMs,
    keepaliveTimeMs,
    keepaliveTimeoutMs,
    maxTxnOps,
    client: undefined,
  };
}

const URL_PARAMS: Readonly<Record<string, 'string' | 'ms' | 'count'>> = {
  prefix: 'string',
  dialTimeoutMs: 'ms',
  callTimeoutMs: 'ms',
  keepaliveTimeMs: 'ms',
  keepaliveTimeoutMs: 'ms',
  maxTxnOps: 'count',
};

/**
 * Parse an `etcd://` or `etcds://` URL into options. Several endpoints are
 * separated by commas; `etcds://` turns TLS on (system roots); `user:pass@`
 * sets authentication (percent-encoded); the query may hold `prefix`,
 * `dialTimeoutMs`, `callTimeoutMs`, `keepaliveTimeMs`, `keepaliveTimeoutMs` and `maxTxnOps`.
 *
 * ```ts
 * parseEtcdUrl('etcds://app:s3cret@10.0.0.1:2379,10.0.0.2:2379?prefix=prod/sw');
 * ```
 */
export function parseEtcdUrl(url: string): EtcdDiscoveryOptions {
  if (typeof url !== 'string') throw new InvalidOptionsError('discovery', url, 'an etcd:// or etcds:// URL');
  const shown = redactUrl(url);
  const match = /^(etcds?):\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?(#.*)?$/i.exec(url.trim());
  if (match === null) {
    throw new InvalidOptionsError('discovery', shown, 'a URL such as "etcd://10.0.0.1:2379,10.0.0.2:2379?prefix=sw"');
  }
  const [, scheme = 'etcd', authority = '', path, query, fragment] = match;
  if (fragment !== undefined) throw new InvalidOptionsError('discovery', shown, 'no #fragment');
  if (path !== undefined && path !== '/') {
    throw new InvalidOptionsError('discovery', shown, 'no path after the endpoints (use ?prefix=… for a key prefix)');
  }
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : undefined;
  const hosts = at >= 0 ? authority.slice(at + 1) : authority;
  if (hosts === '') throw new InvalidOptionsError('discovery', shown, 'at least one host, e.g. etcd://127.0.0.1:2379');

  const options: { -readonly [K in keyof EtcdDiscoveryOptions]: EtcdDiscoveryOptions[K] } = {
    endpoints: hosts.split(','),
    tls: scheme.toLowerCase() === 'etcds',
  };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new InvalidOptionsError('discovery', shown, 'percent-encoded user name and password');
      }
    };
    options.auth = {
      username: decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo),
      password: decode(colon >= 0 ? userinfo.slice(colon + 1) : ''),
    };
  }
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    const kind = URL_PARAMS[key];
    if (kind === undefined) {
      throw new InvalidOptionsError(
        `discovery?${key}`,
        value,
        `one of the URL parameters ${Object.keys(URL_PARAMS).join(', ')}`,
      );
    }
    if (kind === 'string') {
      options.prefix = value;
    } else {
      if (!/^\d+$/.test(value)) {
        throw new InvalidOptionsError(key, value, kind === 'ms' ? 'an integer number of milliseconds' : 'an integer');
      }
      (options as Record<string, unknown>)[key] = Number(value);
    }
  }
  return options;
}

/** The URL with its password replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#]*@/i, '$1***@');
}
