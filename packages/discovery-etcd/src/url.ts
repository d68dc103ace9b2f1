/**
 * The URL form of the etcd backend's options: `etcd://` and `etcds://` URLs
 * parsed into {@link EtcdDiscoveryOptions}, and redacted for messages.
 *
 * @module
 */

import { InvalidOptionsError, redactUrl, unencodedUserinfo } from '@shardwork/core';
import { readTlsFiles } from '@shardwork/core/backend';
import type { EtcdDiscoveryOptions } from './options.js';

const URL_PARAMS: Readonly<Record<string, 'string' | 'ms' | 'count' | 'file'>> = {
  prefix: 'string',
  ca: 'file',
  cert: 'file',
  key: 'file',
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
 * `dialTimeoutMs`, `callTimeoutMs`, `keepaliveTimeMs`, `keepaliveTimeoutMs`,
 * `maxTxnOps`, and with `etcds://` the PEM files `ca`, `cert` and `key`
 * (which become `tls.caFile`, `tls.certFile`, `tls.keyFile`; they are read
 * and checked here already, so that an error names the URL's parameter:
 * `url.ca`, `url.cert`, `url.key`).
 *
 * ```ts
 * parseEtcdUrl('etcds://app:s3cret@10.0.0.1:2379,10.0.0.2:2379?prefix=prod/sw');
 * parseEtcdUrl('etcds://etcd-0:2379?ca=/etc/etcd/ca.pem&cert=/etc/app/client.pem&key=/etc/app/client.key');
 * ```
 */
export function parseEtcdUrl(url: string): EtcdDiscoveryOptions {
  if (typeof url !== 'string') throw new InvalidOptionsError('discovery', url, 'an etcd:// or etcds:// URL');
  const shown = redactUrl(url);
  const unencoded = unencodedUserinfo(url);
  if (unencoded !== undefined)
    throw new InvalidOptionsError(
      'discovery',
      shown,
      unencoded.replace('redis://', 'etcd://').replace(':6379', ':2379'),
    );
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url.trim())?.[1];
  if (scheme !== undefined && !/^etcds?$/i.test(scheme)) {
    throw new InvalidOptionsError('discovery', shown, `an etcd:// or etcds:// URL, not ${scheme}://`);
  }
  const match = /^(etcds?):\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?(#.*)?$/i.exec(url.trim());
  if (match === null) {
    throw new InvalidOptionsError('discovery', shown, 'a URL such as "etcd://10.0.0.1:2379,10.0.0.2:2379?prefix=sw"');
  }
  const [, protocol = 'etcd', authority = '', path, query, fragment] = match;
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
    tls: protocol.toLowerCase() === 'etcds',
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
  const files: { ca?: string; cert?: string; key?: string } = {};
  const seen = new Set<string>();
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    const kind = URL_PARAMS[key];
    if (kind === undefined) {
      throw new InvalidOptionsError(
        `discovery?${key}`,
        value,
        `one of the URL parameters ${Object.keys(URL_PARAMS).join(', ')}`,
      );
    }
    if (seen.has(key)) throw new InvalidOptionsError(`discovery?${key}`, value, 'each URL parameter once');
    seen.add(key);
    if (kind === 'string') {
      options.prefix = value;
    } else if (kind === 'file') {
      if (options.tls !== true) {
        throw new InvalidOptionsError(`discovery?${key}`, value, 'an etcds:// URL (TLS files need TLS)');
      }
      files[key as 'ca' | 'cert' | 'key'] = value;
    } else {
      if (!/^\d+$/.test(value)) {
        throw new InvalidOptionsError(key, value, kind === 'ms' ? 'an integer number of milliseconds' : 'an integer');
      }
      (options as Record<string, unknown>)[key] = Number(value);
    }
  }
  if (Object.keys(files).length > 0) {
    // Checked here already, so that an error names the URL's parameter (url.ca, url.cert, url.key).
    readTlsFiles('url', files);
    options.tls = {
      ...(files.ca === undefined ? {} : { caFile: files.ca }),
      ...(files.cert === undefined ? {} : { certFile: files.cert }),
      ...(files.key === undefined ? {} : { keyFile: files.key }),
    };
  }
  return options;
}

/** The URL with its password replaced by `***`, for messages: core's. */
export { redactUrl };
