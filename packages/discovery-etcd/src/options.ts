/**
 * Options of the etcd backend and their one compile step (the URL form is in
 * `url.ts`).
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';
import { readTlsFiles } from '@shardwork/core/backend';
import type { Etcd3 } from 'etcd3';

/**
 * TLS material for {@link EtcdDiscoveryOptions.tls}: PEM files (read and
 * checked when the options are compiled: present, PEM, not expired, key
 * matching the certificate) or PEM buffers. Give a file or a buffer of each
 * kind, not both.
 */
export interface EtcdTlsOptions {
  /**
   * Path of the CA certificate(s) (PEM) that sign the server certificates.
   * @defaultValue the system's root certificates
   */
  readonly caFile?: string;
  /**
   * Path of the client certificate chain (PEM), for servers that require
   * client certificates (`--client-cert-auth`). Needs {@link EtcdTlsOptions.keyFile}.
   * @defaultValue none
   */
  readonly certFile?: string;
  /**
   * Path of the unencrypted private key (PEM) of {@link EtcdTlsOptions.certFile}.
   * @defaultValue none
   */
  readonly keyFile?: string;
  /**
   * CA certificate(s) that sign the server certificates, as PEM data.
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

/** TLS material after {@link compileEtcdOptions}: files read into buffers. */
export interface CompiledEtcdTls {
  /** CA certificate(s); absent: the system's roots. */
  readonly rootCertificate?: Buffer;
  /** Client private key. */
  readonly privateKey?: Buffer;
  /** Client certificate chain. */
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
   * certificates to use (files or buffers). Implied by `https://` endpoints.
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
   * `maxTxnOps - 2` shards (claims: 1000 at most, one per token slot), so a
   * server running with a lower limit needs it here. At least 4.
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
  readonly tls: false | CompiledEtcdTls;
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

const TLS_FIELDS = ['caFile', 'certFile', 'keyFile', 'rootCertificate', 'privateKey', 'certChain'] as const;

function compileTls(value: unknown, endpoints: readonly string[]): false | CompiledEtcdTls {
  if (value === undefined) return endpoints.some((e) => e.startsWith('https://')) ? {} : false;
  if (typeof value === 'boolean') return value ? {} : false;
  if (typeof value !== 'object' || value === null) {
    throw new InvalidOptionsError('tls', value, 'a boolean or { caFile?, certFile?, keyFile? } (or PEM buffers)');
  }
  const t = value as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (!(TLS_FIELDS as readonly string[]).includes(key)) {
      throw new InvalidOptionsError(`tls.${key}`, t[key], `one of ${TLS_FIELDS.join(', ')}`);
    }
    const buffer = key === 'rootCertificate' || key === 'privateKey' || key === 'certChain';
    if (t[key] !== undefined && (buffer ? !Buffer.isBuffer(t[key]) : typeof t[key] !== 'string' || t[key] === '')) {
      throw new InvalidOptionsError(`tls.${key}`, t[key], buffer ? 'a Buffer with PEM data' : 'a path to a PEM file');
    }
  }
  for (const [file, buffer] of [
    ['caFile', 'rootCertificate'],
    ['certFile', 'certChain'],
    ['keyFile', 'privateKey'],
  ] as const) {
    if (t[file] !== undefined && t[buffer] !== undefined) {
      throw new InvalidOptionsError(`tls.${file}`, t[file], `either tls.${file} or tls.${buffer}, not both`);
    }
  }
  const files = readTlsFiles(
    'tls',
    {
      ...(t.caFile === undefined ? {} : { ca: t.caFile as string }),
      ...(t.certFile === undefined ? {} : { cert: t.certFile as string }),
      ...(t.keyFile === undefined ? {} : { key: t.keyFile as string }),
    },
    { names: { ca: 'caFile', cert: 'certFile', key: 'keyFile' } },
  );
  const tls: { rootCertificate?: Buffer; privateKey?: Buffer; certChain?: Buffer } = {};
  const rootCertificate = files.ca ?? (t.rootCertificate as Buffer | undefined);
  const certChain = files.cert ?? (t.certChain as Buffer | undefined);
  const privateKey = files.key ?? (t.privateKey as Buffer | undefined);
  if ((privateKey === undefined) !== (certChain === undefined)) {
    throw new InvalidOptionsError('tls', '(certificates)', 'a client certificate and its key together, or neither');
  }
  if (rootCertificate !== undefined) tls.rootCertificate = rootCertificate;
  if (certChain !== undefined) tls.certChain = certChain;
  if (privateKey !== undefined) tls.privateKey = privateKey;
  return tls;
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

  const tls = compileTls(options.tls, list);
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
