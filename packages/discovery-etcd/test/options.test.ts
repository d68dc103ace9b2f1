import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDiscovery, InvalidOptionsError, UnknownProtocolError } from '@shardwork/core';
import {
  compileEtcdOptions,
  discoveryFromUrl,
  EtcdDiscovery,
  leaseTtlSeconds,
  parseEtcdUrl,
  redactUrl,
  serviceKeys,
} from '@shardwork/discovery-etcd';
import { makeCerts, type TestCerts } from '@shardwork/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

function invalid(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error('expected InvalidOptionsError');
}

describe('parseEtcdUrl', () => {
  it('reads one endpoint with the default port', () => {
    expect(parseEtcdUrl('etcd://10.0.0.1')).toEqual({ endpoints: ['10.0.0.1'], tls: false });
    expect(compileEtcdOptions(parseEtcdUrl('etcd://10.0.0.1')).endpoints).toEqual(['http://10.0.0.1:2379']);
  });

  it('reads several endpoints, auth, prefix and timeouts', () => {
    const options = parseEtcdUrl(
      'etcd://app:p%40ss%3Aword@h1:2379,h2:2380,[::1]:2381/?prefix=prod/sw&callTimeoutMs=1500&dialTimeoutMs=3000',
    );
    expect(options).toEqual({
      endpoints: ['h1:2379', 'h2:2380', '[::1]:2381'],
      tls: false,
      auth: { username: 'app', password: 'p@ss:word' },
      prefix: 'prod/sw',
      callTimeoutMs: 1500,
      dialTimeoutMs: 3000,
    });
    const compiled = compileEtcdOptions(options);
    expect(compiled.endpoints).toEqual(['http://h1:2379', 'http://h2:2380', 'http://[::1]:2381']);
    expect(compiled.prefix).toBe('prod/sw');
    expect(compileEtcdOptions(parseEtcdUrl('etcd://h1?maxTxnOps=64')).maxTxnOps).toBe(64);
  });

  it('turns TLS on for etcds://', () => {
    const compiled = compileEtcdOptions(parseEtcdUrl('etcds://etcd-0.internal:2379,etcd-1.internal:2379'));
    expect(compiled.tls).toEqual({});
    expect(compiled.endpoints).toEqual(['https://etcd-0.internal:2379', 'https://etcd-1.internal:2379']);
  });

  it('accepts the scheme in any case', () => {
    expect(parseEtcdUrl('ETCD://h:1').endpoints).toEqual(['h:1']);
  });

  it('rejects malformed URLs, naming the problem and hiding the password', () => {
    expect(invalid(() => parseEtcdUrl('redis://h:6379')).message).toMatch(/etcd:\/\//);
    expect(invalid(() => parseEtcdUrl('etcd://')).message).toMatch(/at least one host/);
    expect(invalid(() => parseEtcdUrl('etcd://h:2379/some/path')).message).toMatch(/prefix=/);
    expect(invalid(() => parseEtcdUrl('etcd://h:2379?prefx=a')).option).toBe('discovery?prefx');
    expect(invalid(() => parseEtcdUrl('etcd://h:2379?callTimeoutMs=soon')).option).toBe('callTimeoutMs');
    const error = invalid(() => parseEtcdUrl('etcd://u:secret@h:2379/x'));
    expect(error.message).not.toContain('secret');
    expect(redactUrl('etcds://u:secret@h:1,h2:2')).toBe('etcds://u:***@h:1,h2:2');
    expect(() => compileEtcdOptions(parseEtcdUrl('etcd://h:99999'))).toThrow(InvalidOptionsError);
    expect(() => compileEtcdOptions(parseEtcdUrl('etcd://h1:2379,,h2:2379'))).toThrow(InvalidOptionsError);
  });

  it('creates a discovery without connecting', async () => {
    const discovery = discoveryFromUrl('etcd://127.0.0.1:1,127.0.0.1:2?prefix=x/y/');
    expect(discovery).toBeInstanceOf(EtcdDiscovery);
    expect(discovery.kind).toBe('etcd');
    expect(discovery.prefix).toBe('x/y');
    await discovery.close();
  });
});

describe('compileEtcdOptions', () => {
  it('fills defaults', () => {
    expect(compileEtcdOptions({})).toEqual({
      endpoints: ['http://127.0.0.1:2379'],
      tls: false,
      auth: undefined,
      prefix: 'sw',
      dialTimeoutMs: 5000,
      callTimeoutMs: 2000,
      keepaliveTimeMs: 5000,
      keepaliveTimeoutMs: 2000,
      maxTxnOps: 128,
      client: undefined,
    });
  });

  it('accepts endpoints as a list or a comma-separated string, with or without scheme', () => {
    expect(compileEtcdOptions({ endpoints: 'a:1, b' }).endpoints).toEqual(['http://a:1', 'http://b:2379']);
    expect(compileEtcdOptions({ endpoints: ['https://a:1', 'b:2'] }).endpoints).toEqual(['https://a:1', 'https://b:2']);
  });

  it('rejects each bad option with its name', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ endpoints: [] }, 'endpoints'],
      [{ endpoints: 42 }, 'endpoints'],
      [{ endpoints: ['a b'] }, 'endpoints[0]'],
      [{ endpoints: ['http://a:1'], tls: true }, 'endpoints[0]'],
      [{ prefix: '' }, 'prefix'],
      [{ prefix: '/' }, 'prefix'],
      [{ prefix: 3 }, 'prefix'],
      [{ callTimeoutMs: 0 }, 'callTimeoutMs'],
      [{ dialTimeoutMs: 1.5 }, 'dialTimeoutMs'],
      [{ keepaliveTimeMs: 10 }, 'keepaliveTimeMs'],
      [{ keepaliveTimeoutMs: Number.NaN }, 'keepaliveTimeoutMs'],
      [{ maxTxnOps: 3 }, 'maxTxnOps'],
      [{ maxTxnOps: 64.5 }, 'maxTxnOps'],
      [{ auth: { username: '', password: 'x' } }, 'auth.username'],
      [{ auth: { username: 'u' } }, 'auth.password'],
      [{ tls: 'yes' }, 'tls'],
      [{ tls: { rootCertificate: 'pem text' } }, 'tls.rootCertificate'],
      [{ tls: { privateKey: Buffer.from('k') } }, 'tls'],
      [{ client: {} }, 'client'],
      [{ endpont: 'a' }, 'endpont'],
    ];
    for (const [options, option] of cases) {
      expect(invalid(() => compileEtcdOptions(options)).option, JSON.stringify(options)).toBe(option);
      expect(() => new EtcdDiscovery(options)).toThrow(InvalidOptionsError);
    }
  });

  it('takes an existing client, and refuses connection options beside it', () => {
    const client = new Etcd3({ hosts: '127.0.0.1:1' });
    try {
      expect(compileEtcdOptions({ client, prefix: 'p' }).client).toBe(client);
      expect(invalid(() => compileEtcdOptions({ client, endpoints: ['a'] })).option).toBe('endpoints');
      expect(invalid(() => compileEtcdOptions({ client, auth: { username: 'u', password: 'p' } })).option).toBe('auth');
    } finally {
      client.close();
    }
  });
});

describe('lease TTL', () => {
  it('rounds up to whole seconds, at least one', () => {
    expect(leaseTtlSeconds(1)).toBe(1);
    expect(leaseTtlSeconds(999)).toBe(1);
    expect(leaseTtlSeconds(1000)).toBe(1);
    expect(leaseTtlSeconds(1001)).toBe(2);
    expect(leaseTtlSeconds(1500)).toBe(2);
    expect(leaseTtlSeconds(30_000)).toBe(30);
  });
});

describe('keys', () => {
  it('lays keys out under prefix/service and escapes slashes', () => {
    const keys = serviceKeys('sw', 'billing-sync');
    expect(keys.root).toBe('sw/billing-sync/');
    expect(keys.meta).toBe('sw/billing-sync/meta');
    expect(keys.member('m-1')).toBe('sw/billing-sync/members/m-1');
    expect(keys.claim(7)).toBe('sw/billing-sync/claims/7');
    expect(serviceKeys('sw', 'a/b').root).toBe('sw/a%2Fb/');
  });
});

describe('TLS files and bad input', () => {
  let certs: TestCerts;
  beforeAll(async () => {
    certs = await makeCerts();
  });
  afterAll(async () => {
    await certs?.remove();
  });

  it('reads tls.caFile, certFile and keyFile into the buffers; buffers still work', async () => {
    const client = await certs.client('app');
    const compiled = compileEtcdOptions({
      endpoints: ['h:2379'],
      tls: { caFile: certs.ca, certFile: client.cert, keyFile: client.key },
    });
    expect(compiled.endpoints).toEqual(['https://h:2379']);
    expect(compiled.tls).toEqual({
      rootCertificate: readFileSync(certs.ca),
      certChain: readFileSync(client.cert),
      privateKey: readFileSync(client.key),
    });
    const buffers = { rootCertificate: readFileSync(certs.ca) };
    expect(compileEtcdOptions({ tls: buffers }).tls).toEqual(buffers);
    expect(compileEtcdOptions({ tls: { caFile: certs.ca } }).endpoints).toEqual(['https://127.0.0.1:2379']);
  });

  it('takes ?ca=, ?cert= and ?key= on etcds:// URLs', async () => {
    const client = await certs.client('app');
    const query = new URLSearchParams({ ca: certs.ca, cert: client.cert, key: client.key });
    const options = parseEtcdUrl(`etcds://h1:2379,h2:2379?${query}&prefix=p`);
    expect(options).toEqual({
      endpoints: ['h1:2379', 'h2:2379'],
      tls: { caFile: certs.ca, certFile: client.cert, keyFile: client.key },
      prefix: 'p',
    });
    expect(compileEtcdOptions(options).tls).toEqual({
      rootCertificate: readFileSync(certs.ca),
      certChain: readFileSync(client.cert),
      privateKey: readFileSync(client.key),
    });
    // Raw slashes in the query are fine too.
    expect(parseEtcdUrl(`etcds://h?ca=${certs.ca}`).tls).toEqual({ caFile: certs.ca });
  });

  it('names the option and the file of a missing, unreadable, expired or mismatched file', async () => {
    const missing = join(certs.dir, 'missing.pem');
    const notPem = join(certs.dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const expired = await certs.client('old', { expired: true });
    const a = await certs.client('a');
    const b = await certs.client('b');
    const cases: [() => unknown, string, RegExp][] = [
      [() => compileEtcdOptions({ tls: { caFile: missing } }), 'tls.caFile', /no such file/],
      [() => compileEtcdOptions({ tls: { caFile: notPem } }), 'tls.caFile', /a PEM file/],
      [() => compileEtcdOptions({ tls: { certFile: expired.cert, keyFile: expired.key } }), 'tls.certFile', /expired/],
      [() => compileEtcdOptions({ tls: { certFile: a.cert, keyFile: b.key } }), 'tls.keyFile', /does not match/],
      [() => compileEtcdOptions({ tls: { certFile: a.cert } }), 'tls.keyFile', /together/],
      [() => parseEtcdUrl(`etcds://h?ca=${encodeURIComponent(missing)}`), 'url.ca', /no such file/],
      [() => parseEtcdUrl(`etcds://h?cert=${a.cert}&key=${b.key}`), 'url.key', /does not match/],
      [() => discoveryFromUrl(`etcds://h?cert=${expired.cert}&key=${expired.key}`), 'url.cert', /expired/],
    ];
    for (const [run, option, why] of cases) {
      const error = invalid(run);
      expect(error.option, option).toBe(option);
      expect(error.message).toMatch(why);
    }
    expect(invalid(() => compileEtcdOptions({ tls: { caFile: missing } })).message).toContain(missing);
    expect(invalid(() => parseEtcdUrl(`etcds://h?cert=${a.cert}&key=${b.key}`)).message).toContain(b.key);
    expect(
      invalid(() => compileEtcdOptions({ tls: { caFile: certs.ca, rootCertificate: readFileSync(certs.ca) } })).option,
    ).toBe('tls.caFile');
    expect(invalid(() => compileEtcdOptions({ tls: { caFile: '' } })).option).toBe('tls.caFile');
    expect(invalid(() => compileEtcdOptions({ tls: { ca: certs.ca } as never })).option).toBe('tls.ca');
  });

  it('rejects an unknown scheme, an unknown or repeated parameter, and TLS files without etcds://', async () => {
    expect(invalid(() => parseEtcdUrl('etcdx://h:2379')).message).toMatch(/etcd:\/\/ or etcds:\/\//);
    expect(invalid(() => parseEtcdUrl('https://h:2379')).option).toBe('discovery');
    const unknown = await createDiscovery('etcdx://h:2379').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(UnknownProtocolError);
    expect((unknown as Error).message).toContain('etcds://');
    const param = invalid(() => parseEtcdUrl('etcds://h?cafile=/x.pem'));
    expect(param.option).toBe('discovery?cafile');
    expect(param.message).toMatch(/ca, cert, key/);
    expect(invalid(() => parseEtcdUrl('etcd://h?prefix=a&prefix=b')).option).toBe('discovery?prefix');
    const plain = invalid(() => parseEtcdUrl(`etcd://h?ca=${certs.ca}`));
    expect(plain.option).toBe('discovery?ca');
    expect(plain.message).toContain('etcds://');
  });

  it('decodes percent-encoded user names and passwords with @ : / % # ? and hides them in errors', () => {
    const password = 'p@ss:w/rd%#?x y+&=';
    const url = `etcd://${encodeURIComponent('us@r:1')}:${encodeURIComponent(password)}@h:2379`;
    expect(parseEtcdUrl(url).auth).toEqual({ username: 'us@r:1', password });
    expect(compileEtcdOptions(parseEtcdUrl(url)).auth).toEqual({ username: 'us@r:1', password });
    // An unencoded "@" in the password still splits at the last one.
    expect(parseEtcdUrl('etcd://u:p@ss@h').auth).toEqual({ username: 'u', password: 'p@ss' });
    expect(redactUrl(url)).toBe(`etcd://${encodeURIComponent('us@r:1')}:***@h:2379`);
    const bad = invalid(() => parseEtcdUrl('etcd://u:sec%zzret@h:2379'));
    expect(bad.message).toMatch(/percent-encoded/);
    expect(bad.message).not.toContain('sec');
    const path = invalid(() => parseEtcdUrl(`etcd://u:${encodeURIComponent(password)}@h:2379/x`));
    expect(path.message).not.toContain(encodeURIComponent(password));
  });
});
