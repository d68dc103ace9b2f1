/**
 * Parsing of Redis URLs into ioredis options plus the shardwork options that
 * may ride along in the query string. Three topologies, each with a TLS form:
 *
 * - `redis://` / `rediss://`: one server (a primary, or a managed endpoint);
 * - `redis+cluster://` / `rediss+cluster://`: Redis Cluster, any number of
 *   seed nodes `h1:p1,h2:p2`;
 * - `redis+sentinel://` / `rediss+sentinel://`: the primary named by the path,
 *   found through the listed sentinels.
 *
 * @module
 */

import { isIP } from 'node:net';
import { InvalidOptionsError, redactUrl, unencodedUserinfo } from '@shardwork/core';
import { readTlsFiles } from '@shardwork/core/backend';
import type { RedisOptions } from 'ioredis';

/** How the URL reaches Redis. */
export type RedisTopology = 'single' | 'cluster' | 'sentinel';

/** A `host:port` of a seed node or sentinel. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** What a URL contributes to the options. */
export interface ParsedRedisUrl {
  /** Which kind of deployment the scheme names. */
  readonly topology: RedisTopology;
  /**
   * Connection options: host, port, db, username, password, tls; for
   * Sentinel also `sentinels`, `name` and the sentinels' credentials. For a
   * cluster these are the options of every node connection.
   */
  readonly redis: RedisOptions;
  /** Seed nodes of a cluster (empty otherwise). */
  readonly nodes: readonly RedisNode[];
  /** Query parameters that map onto shardwork options. */
  readonly prefix?: string;
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly pollIntervalMs?: number;
  readonly syncReplicas?: number;
}

const numericParams = ['commandTimeoutMs', 'connectTimeoutMs', 'pollIntervalMs', 'syncReplicas'] as const;
type NumericParam = (typeof numericParams)[number];
const tlsParams = ['ca', 'cert', 'key'] as const;
const sentinelParams = ['sentinelUsername', 'sentinelPassword'] as const;

/**
 * Query parameters of a package that reads Redis URLs of its own (the job
 * adapter), so that an unknown parameter is refused with that package's list.
 */
export interface RedisUrlParams {
  /** Parameters the caller reads itself: listed as allowed, skipped here. */
  readonly own?: readonly string[];
  /** Parameters of this parser the caller does not take: refused. */
  readonly without?: readonly string[];
}

/** The schemes {@link parseRedisUrl} reads, and what each means. */
export const REDIS_SCHEMES: Readonly<Record<string, { topology: RedisTopology; tls: boolean }>> = {
  redis: { topology: 'single', tls: false },
  rediss: { topology: 'single', tls: true },
  'redis+cluster': { topology: 'cluster', tls: false },
  'rediss+cluster': { topology: 'cluster', tls: true },
  'redis+sentinel': { topology: 'sentinel', tls: false },
  'rediss+sentinel': { topology: 'sentinel', tls: true },
};

/** The URL with its password (and any `sentinelPassword`) replaced, safe for error messages and logs: core's. */
export { redactUrl };

const EXAMPLE =
  'a URL such as "redis://127.0.0.1:6379", "rediss://user:password@host:6380/0?prefix=sw:", ' +
  '"redis+cluster://h1:6379,h2:6379" or "redis+sentinel://s1:26379,s2:26379/mymaster"';

function decode(part: string, what: string, fail: (expectation: string) => never): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return fail(`a percent-encoded ${what} (encode special characters, e.g. "@" as %40, ":" as %3A)`);
  }
}

function parseNodes(list: string, defaultPort: number, fail: (expectation: string) => never): RedisNode[] {
  const nodes: RedisNode[] = [];
  for (const raw of list.split(',')) {
    const item = raw.trim();
    if (item === '') {
      if (list.trim() === '') break;
      fail('a comma-separated list of host:port without empty entries');
    }
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(item);
    if (match === null) fail(`host or host:port entries, which "${item}" is not`);
    const host = (match?.[1] ?? match?.[2] ?? '').toLowerCase();
    const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
    if (port < 1 || port > 65535) fail(`a port from 1 to 65535, which ${port} is not`);
    nodes.push({ host, port });
  }
  return nodes;
}

/**
 * Parse a Redis URL (see the module documentation for the schemes):
 *
 * `scheme://[[username][:password]@]host[:port][,host[:port]…][/path][?query]`
 *
 * - single server: host defaults to `127.0.0.1`, port to 6379, the path is the
 *   database number (default 0);
 * - cluster: every host is a seed node, no path (a cluster has database 0 only);
 * - sentinel: the hosts are sentinels (port defaults to 26379), the path is
 *   `/<primary name>[/<db>]`; `sentinelUsername`/`sentinelPassword` in the
 *   query authenticate to the sentinels, the URL's user and password to Redis.
 *
 * User and password are percent-decoded. The query may set `prefix`,
 * `commandTimeoutMs`, `connectTimeoutMs`, `pollIntervalMs`, `syncReplicas`
 * and, with a TLS scheme, `ca`, `cert` and `key`: paths of PEM files, read and
 * checked here. Unknown parameters are rejected so that a typo does not go
 * unnoticed.
 *
 * @throws InvalidOptionsError naming what is wrong; the password never appears in it.
 */
export function parseRedisUrl(url: string, callerParams: RedisUrlParams = {}): ParsedRedisUrl {
  const shown = redactUrl(url);
  const own = callerParams.own ?? [];
  const without = callerParams.without ?? [];
  const fail = (expectation: string): never => {
    throw new InvalidOptionsError('url', shown, expectation);
  };
  const unencoded = unencodedUserinfo(url);
  if (unencoded !== undefined) fail(unencoded);
  // User info runs to the last "@" before the path: an unencoded "@" in a password is read as part of it.
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(?:([^/?#]*)@)?([^@/?#]*)(\/[^?#]*)?(?:\?([^#]*))?(#.*)?$/.exec(
    url.trim(),
  );
  if (match === null) return fail(EXAMPLE);
  const [, rawScheme = '', credentials, hostList = '', rawPath = '', query = '', fragment] = match;
  const scheme = REDIS_SCHEMES[rawScheme.toLowerCase()];
  if (scheme === undefined) {
    return fail(`one of the schemes ${Object.keys(REDIS_SCHEMES).join(', ')}, which "${rawScheme}://" is not`);
  }
  if (fragment !== undefined) fail('no #fragment');
  const { topology } = scheme;

  const redis: RedisOptions = {};
  if (credentials !== undefined) {
    const colon = credentials.indexOf(':');
    const user = colon === -1 ? credentials : credentials.slice(0, colon);
    if (user !== '') redis.username = decode(user, 'user name', fail);
    if (colon !== -1 && colon < credentials.length - 1) {
      redis.password = decode(credentials.slice(colon + 1), 'password', fail);
    }
  }

  const nodes = parseNodes(hostList, topology === 'sentinel' ? 26379 : 6379, fail);
  const segments = rawPath
    .split('/')
    .filter((s) => s !== '')
    .map((s) => decode(s, 'path', fail));
  const dbFrom = (segment: string | undefined): number => {
    if (segment === undefined) return 0;
    if (!/^\d{1,5}$/.test(segment)) fail(`a database number as the path, e.g. "/0", which "${rawPath}" is not`);
    return Number(segment);
  };
  let clusterNodes: RedisNode[] = [];
  if (topology === 'single') {
    if (nodes.length > 1) fail('one host (for several, use redis+cluster:// or redis+sentinel://)');
    if (segments.length > 1) fail(`a database number as the path, e.g. "/0", which "${rawPath}" is not`);
    const node = nodes[0];
    redis.host = node?.host ?? '127.0.0.1';
    redis.port = node?.port ?? 6379;
    redis.db = dbFrom(segments[0]);
  } else if (topology === 'cluster') {
    if (nodes.length === 0) fail('at least one seed node, e.g. "redis+cluster://h1:6379,h2:6379"');
    if (segments.length > 0) fail('no path: a cluster has database 0 only');
    clusterNodes = nodes;
  } else {
    if (nodes.length === 0) fail('at least one sentinel, e.g. "redis+sentinel://s1:26379,s2:26379/mymaster"');
    const [name, db, ...rest] = segments;
    if (name === undefined || rest.length > 0) {
      fail(
        `the primary's name as the path, and optionally a database: "/mymaster" or "/mymaster/0", which "${rawPath}" is not`,
      );
    }
    redis.sentinels = nodes.map((n) => ({ ...n }));
    redis.name = name;
    redis.db = dbFrom(db);
  }

  const result: { -readonly [K in keyof ParsedRedisUrl]: ParsedRedisUrl[K] } = {
    topology,
    redis,
    nodes: clusterNodes,
  };
  const files: { ca?: string; cert?: string; key?: string } = {};
  const params = new URLSearchParams(query);
  for (const [name, value] of params) {
    if (params.getAll(name).length > 1) fail(`each query parameter once, but "${name}" is given twice`);
    if (own.includes(name)) continue; // the caller's own, read by the caller
    if (name === 'prefix') {
      result.prefix = value;
    } else if ((numericParams as readonly string[]).includes(name) && !without.includes(name)) {
      if (!/^\d+$/.test(value)) fail(`"${name}" to be a whole number, which "${value}" is not`);
      result[name as NumericParam] = Number(value);
    } else if ((tlsParams as readonly string[]).includes(name)) {
      if (!scheme.tls) fail(`"${name}" only with a TLS scheme (rediss://, rediss+cluster://, rediss+sentinel://)`);
      files[name as (typeof tlsParams)[number]] = value;
    } else if ((sentinelParams as readonly string[]).includes(name) && topology === 'sentinel') {
      if (name === 'sentinelUsername') redis.sentinelUsername = value;
      else redis.sentinelPassword = value;
    } else {
      const allowed = [
        'prefix',
        ...own,
        ...numericParams.filter((p) => !without.includes(p)),
        ...(scheme.tls ? tlsParams : []),
        ...(topology === 'sentinel' ? sentinelParams : []),
      ];
      fail(`only the query parameters ${allowed.join(', ')}; "${name}" is none of them`);
    }
  }

  if (scheme.tls) {
    const material = readTlsFiles('url', files);
    const host = topology === 'single' ? (redis.host ?? '') : '';
    // SNI takes a host name, never an address.
    const tls = { ...material, ...(host !== '' && isIP(host) === 0 ? { servername: host } : {}) };
    redis.tls = tls;
    if (topology === 'sentinel') {
      redis.enableTLSForSentinelMode = true;
      redis.sentinelTLS = { ...material };
    }
  }
  return result;
}
