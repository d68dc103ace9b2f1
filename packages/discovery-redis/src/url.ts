/**
 * Parsing of `redis://` and `rediss://` URLs into ioredis options plus the
 * shardwork options that may ride along in the query string.
 *
 * @module
 */

import { isIP } from 'node:net';
import { InvalidOptionsError } from '@shardwork/core';
import type { RedisOptions } from 'ioredis';

/** What a URL contributes to the options. */
export interface ParsedRedisUrl {
  /** Connection options: host, port, db, username, password, tls. */
  readonly redis: RedisOptions;
  /** Query parameters that map onto shardwork options. */
  readonly prefix?: string;
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly pollIntervalMs?: number;
}

const numericParams = ['commandTimeoutMs', 'connectTimeoutMs', 'pollIntervalMs'] as const;
type NumericParam = (typeof numericParams)[number];

/** The URL with its password replaced, safe for error messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^:@/?#]*:)[^@/?#]*@/, '$1***@');
}

/**
 * Parse `redis[s]://[[username][:password]@]host[:port][/db][?prefix=…&commandTimeoutMs=…&connectTimeoutMs=…&pollIntervalMs=…]`.
 * Host defaults to `127.0.0.1`, port to 6379, db to 0. `rediss://` turns on TLS
 * with SNI set to the host name. Unknown query parameters are rejected so that
 * a typo does not go unnoticed.
 */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  const shown = redactUrl(url);
  const fail = (expectation: string): never => {
    throw new InvalidOptionsError('url', shown, expectation);
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('a URL such as "redis://127.0.0.1:6379" or "rediss://user:password@host:6380/0?prefix=sw:"');
  }
  const protocol = parsed.protocol.toLowerCase();
  if (protocol !== 'redis:' && protocol !== 'rediss:') fail('a redis:// or rediss:// URL');
  if (parsed.hash !== '') fail('no #fragment');

  const host = parsed.hostname === '' ? '127.0.0.1' : parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  let port = 6379;
  if (parsed.port !== '') port = Number(parsed.port);

  const path = parsed.pathname.replace(/^\/+/, '').replace(/\/+$/, '');
  let db = 0;
  if (path !== '') {
    if (!/^\d{1,5}$/.test(path)) fail(`a database number as the path, e.g. "/0" (got path "/${path}")`);
    db = Number(path);
  }

  const redis: RedisOptions = { host, port, db };
  if (parsed.username !== '') redis.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') redis.password = decodeURIComponent(parsed.password);
  if (protocol === 'rediss:') redis.tls = isIP(host) === 0 ? { servername: host } : {};

  const result: { -readonly [K in keyof ParsedRedisUrl]: ParsedRedisUrl[K] } = { redis };
  for (const [name, value] of parsed.searchParams) {
    if (name === 'prefix') {
      result.prefix = value;
    } else if ((numericParams as readonly string[]).includes(name)) {
      if (!/^\d+$/.test(value)) fail(`"${name}" to be a whole number of milliseconds (got "${value}")`);
      result[name as NumericParam] = Number(value);
    } else {
      fail(`only the query parameters prefix, ${numericParams.join(', ')} (got "${name}")`);
    }
  }
  return result;
}
