/**
 * Secure etcd deployments against real etcd processes: TLS with certificates
 * made by openssl (server-side TLS, and client certificates required), a
 * per-service user whose role covers exactly the documented prefix (by
 * password, and by the client certificate's common name), passwords with URL
 * special characters, and every way TLS can be set up wrong. Each failure
 * must reject `start()` of a Worker at once with an error that names the
 * cause — never a retry loop until `startTimeoutMs` — and `startTimeoutMs`
 * must hold against a server that accepts connections and never answers.
 */

import {
  BackendRefusedError,
  type DiscoveryEvent,
  DiscoveryUnavailableError,
  InvalidOptionsError,
  StartTimeoutError,
  Worker,
  type WorkerOptions,
} from '@shardwork/core';
import { explainTlsError } from '@shardwork/core/backend';
import { memberInfo, releaseOne, uniqueService } from '@shardwork/core/testing';
import {
  discoveryFromUrl,
  EtcdAuthError,
  EtcdDiscovery,
  EtcdPermissionError,
  EtcdTlsError,
  parseEtcdUrl,
} from '@shardwork/discovery-etcd';
import {
  type EtcdClient,
  type EtcdCluster,
  makeCerts,
  type SilentServer,
  sleep,
  startEtcd,
  startSilentServer,
  type TestCerts,
  until,
} from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const SHARDS = 4;
const ROOT_PASSWORD = 'root-pw';
/** Every character that has a meaning in a URL's authority, plus a space. */
const SPECIAL_PASSWORD = 'p@ss:w/rd%#?x y+&=';

let certs: TestCerts;
beforeAll(async () => {
  certs = await makeCerts();
});
afterAll(async () => {
  await certs?.remove();
});

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close().catch(() => undefined);
});

/** A Worker that the test's cleanup stops. */
function worker(discovery: string | EtcdDiscovery, service: string, options: Partial<WorkerOptions> = {}): Worker {
  const w = new Worker({
    service,
    shards: SHARDS,
    discovery,
    leaseTtlMs: 2000,
    startTimeoutMs: 20_000,
    handler: () => undefined,
    ...options,
  });
  w.on('error', () => undefined);
  closing.push(() => w.stop());
  return w;
}

/** Start a worker that must fail; the error and how long start() took. */
async function failedStart(
  discovery: string | EtcdDiscovery,
  options: Partial<WorkerOptions> = {},
): Promise<{ error: Error; ms: number }> {
  const w = worker(discovery, options.service ?? uniqueService('refused'), options);
  const began = performance.now();
  const error = await w.start().then(
    () => {
      throw new Error('start() succeeded');
    },
    (e: unknown) => e as Error,
  );
  expect(w.state).toBe('stopped');
  return { error, ms: performance.now() - began };
}

function track(discovery: EtcdDiscovery): EtcdDiscovery {
  closing.push(() => discovery.close());
  return discovery;
}

/** Every key under `prefix` (admin view). */
async function keysUnder(admin: EtcdClient, prefix: string): Promise<string[]> {
  return (await admin.getAll().prefix(prefix).keys()).sort();
}

/** Role `role` with readwrite on the prefix of one service, granted to `user` (created with `password`). */
async function serviceUser(admin: EtcdClient, service: string, user: string, password: string): Promise<void> {
  const role = await admin.role(`shardwork-${service}`).create();
  await role.grant({ permission: 'Readwrite', range: admin.range({ prefix: `sw/${service}/` }) });
  await admin.user(user).create(password);
  await admin.user(user).addRole(`shardwork-${service}`);
}

/** The URL of `etcd` with `userinfo@` and more query parameters. */
function urlOf(etcd: EtcdCluster, userinfo = '', query = ''): string {
  const params = [etcd.tlsQuery, query].filter((q) => q !== '').join('&');
  return `${etcd.scheme}://${userinfo === '' ? '' : `${userinfo}@`}${etcd.endpoints.join(',')}${params === '' ? '' : `?${params}`}`;
}

describe('etcd over TLS with password users limited to one service', () => {
  let etcd: EtcdCluster;
  let admin: EtcdClient;
  const service = uniqueService('tls-a');
  const other = uniqueService('tls-b');
  beforeAll(async () => {
    etcd = await startEtcd({ tls: { ca: certs.ca, ...certs.server }, auth: { rootPassword: ROOT_PASSWORD } });
    admin = etcd.admin();
    await serviceUser(admin, service, 'app-a', 'a-pw');
    await admin.user('special').create(SPECIAL_PASSWORD);
    await admin.user('special').addRole(`shardwork-${service}`);
  });
  afterAll(async () => {
    admin?.close();
    await etcd?.stop();
  });

  it('runs a service over etcds://…?ca= for a user whose role covers only that service', async () => {
    const w = worker(urlOf(etcd, 'app-a:a-pw'), service);
    await w.start();
    await until(() => w.status().shards.length === SHARDS, 10_000, 'the only worker owns every shard');
    const keys = await keysUnder(admin, '');
    // Only the service's own prefix was written: meta, the member, its claims.
    expect(keys.every((k) => k.startsWith(`sw/${service}/`))).toBe(true);
    expect(keys).toContain(`sw/${service}/meta`);
    expect(keys.filter((k) => k.startsWith(`sw/${service}/claims/`))).toHaveLength(SHARDS);
    // Watch, version and lease times (what operating tools read) work within the prefix too.
    const d = track(discoveryFromUrl(urlOf(etcd, 'app-a:a-pw')));
    expect((await d.snapshot(service)).members).toHaveLength(1);
    expect(await d.version(service)).toMatch(/^\d+:\d+$/);
    expect([...(await d.leaseTimes(service)).values()][0]).toBeGreaterThan(0);
    await w.stop();
    // stop() revoked the lease, which needs write permission on every key bound to it.
    expect(await keysUnder(admin, `sw/${service}/`)).toEqual([`sw/${service}/meta`]);

    // The calls a stop with slow handlers makes: drain, release (which writes `released`), unregister.
    await d.snapshot(service);
    const events: DiscoveryEvent[] = [];
    const unwatch = d.watch(service, (e) => events.push(e));
    closing.push(async () => unwatch());
    await sleep(200);
    const m = memberInfo();
    await d.register(service, m, 2000);
    await until(() => events.some((e) => e.type === 'change'), 5000, 'the watch announces the new member');
    const [claim] = (await d.claimMany(service, m.id, [0, 1])).results;
    expect(claim?.ok).toBe(true);
    await d.renew(service, m.id);
    await d.drain(service, m.id);
    expect(await releaseOne(d, service, m.id, 0, claim?.ok === true ? claim.token : 0)).toBe(true);
    await d.unregister(service, m.id);
    expect(await keysUnder(admin, `sw/${service}/`)).toEqual([`sw/${service}/meta`, `sw/${service}/released`]);
  });

  it("refuses another service's keys at once: permission denied naming the prefix, not retried", async () => {
    const url = urlOf(etcd, 'app-a:a-pw');
    const { error, ms } = await failedStart(url, { service: other });
    expect(error).toBeInstanceOf(EtcdPermissionError);
    expect(error).toBeInstanceOf(BackendRefusedError);
    expect((error as EtcdPermissionError).retryable).toBe(false);
    expect(error.message).toContain('permission denied');
    expect(error.message).toContain(`sw/${other}/meta`);
    expect(error.message).toContain(`readwrite on the prefix "sw/${other}/"`);
    expect(error.message).toContain('user "app-a"');
    expect(ms).toBeLessThan(3000);

    const d = track(discoveryFromUrl(url));
    const read = await d.snapshot(other).catch((e: unknown) => e);
    expect(read).toBeInstanceOf(EtcdPermissionError);
    expect((read as EtcdPermissionError).scope).toEqual({
      key: `sw/${other}/`,
      prefix: true,
      permission: 'read',
      grant: `sw/${other}/`,
    });
    const register = await d.register(other, memberInfo(), 2000).catch((e: unknown) => e);
    expect(register).toBeInstanceOf(EtcdPermissionError);
    expect((register as Error).message).toMatch(new RegExp(`permission denied on the key "sw/${other}/members/`));
    // Listing services reads the whole prefix: a per-service user may not.
    const services = await d.services().catch((e: unknown) => e);
    expect(services).toBeInstanceOf(EtcdPermissionError);
    expect((services as Error).message).toContain('read on the prefix "sw/"');
    expect(await keysUnder(admin, `sw/${other}/`)).toEqual([]);
  });

  it('lets an operating tool with read on the whole prefix list and watch every service, and write nothing', async () => {
    const role = await admin.role('shardwork-ops').create();
    await role.grant({ permission: 'Read', range: admin.range({ prefix: 'sw/' }) });
    await admin.user('ops').create('ops-pw');
    await admin.user('ops').addRole('shardwork-ops');
    const w = worker(urlOf(etcd, 'app-a:a-pw'), service);
    await w.start();
    const ops = track(discoveryFromUrl(urlOf(etcd, 'ops:ops-pw')));
    expect(await ops.services()).toContain(service);
    const snap = await ops.snapshot(service);
    expect(snap.members).toHaveLength(1);
    expect(await ops.version(service)).toBe(snap.version);
    expect([...(await ops.leaseTimes(service)).keys()]).toEqual([snap.members[0]?.id]);
    const events: DiscoveryEvent[] = [];
    const unwatch = ops.watch(service, (e) => events.push(e));
    closing.push(async () => unwatch());
    await sleep(200);
    await w.stop();
    await until(() => events.some((e) => e.type === 'change'), 5000, 'the watch announces the member leaving');
    const write = await ops.ensureGroup(other, { shardCount: 2, leaseTtlMs: 2000 }).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(EtcdPermissionError);
    expect((write as Error).message).toContain(`readwrite on the prefix "sw/${other}/"`);
  });

  it('decodes a percent-encoded password with @:/%#? and connects with it; a wrong one fails at once', async () => {
    const encoded = encodeURIComponent(SPECIAL_PASSWORD);
    expect(encoded).toMatch(/%40.*%3A.*%2F.*%25.*%23.*%3F/);
    const url = urlOf(etcd, `special:${encoded}`);
    expect(parseEtcdUrl(url).auth).toEqual({ username: 'special', password: SPECIAL_PASSWORD });
    const d = track(discoveryFromUrl(url));
    await d.ensureGroup(service, { shardCount: SHARDS, leaseTtlMs: 2000 });
    expect((await d.snapshot(service)).members).toEqual([]);

    const { error, ms } = await failedStart(urlOf(etcd, 'special:wrong'), { service });
    expect(error).toBeInstanceOf(EtcdAuthError);
    expect(error.message).toContain('user "special": wrong user name or password');
    expect(error.message).not.toContain('wrong@');
    expect(ms).toBeLessThan(3000);
    const anonymous = await failedStart(urlOf(etcd), { service });
    expect(anonymous.error).toBeInstanceOf(EtcdAuthError);
    expect(anonymous.error.message).toContain('names no user');
  });

  it('fails start() at once with the TLS cause when the CA is wrong, missing, or TLS is off', async () => {
    const host = etcd.endpoints.join(',');
    const notSigned = explainTlsError({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }) as string;
    expect(notSigned).toContain('not signed by a trusted CA');
    for (const [url, words] of [
      [`etcds://app-a:a-pw@${host}?ca=${encodeURIComponent(certs.otherCa)}`, notSigned],
      // etcds:// without ?ca=: the system's roots, which do not hold the test CA.
      [`etcds://app-a:a-pw@${host}`, notSigned],
      [`etcd://app-a:a-pw@${host}`, 'the server expects TLS on this port'],
    ] as const) {
      const { error, ms } = await failedStart(url, { service });
      expect(error, url).toBeInstanceOf(EtcdTlsError);
      expect(error.message).toContain(words);
      expect(error.message).toContain(etcd.endpoints[0]);
      expect(ms).toBeLessThan(3000);
    }
    // The discovery's own first call fails the same way.
    const d = track(new EtcdDiscovery({ endpoints: etcd.endpoints, tls: { caFile: certs.otherCa } }));
    await expect(d.snapshot(service)).rejects.toThrow(notSigned);
  });
});

describe('etcd with client certificates: the user is the certificate common name', () => {
  let etcd: EtcdCluster;
  let admin: EtcdClient;
  const service = uniqueService('cn-a');
  const other = uniqueService('cn-b');
  beforeAll(async () => {
    etcd = await startEtcd({
      tls: { ca: certs.ca, ...certs.server, clientCertAuth: true },
      auth: { rootPassword: ROOT_PASSWORD },
    });
    admin = etcd.admin();
    // etcd 3.4 wants a password for every user; under client-cert auth it is never used.
    await serviceUser(admin, service, 'app-cn', 'unused-pw');
  });
  afterAll(async () => {
    admin?.close();
    await etcd?.stop();
  });

  /** `etcds://…?ca=…&cert=…&key=…` with the client certificate of `cn`. */
  async function urlFor(cn: string, options?: { foreign?: boolean }): Promise<string> {
    const client = await certs.client(cn, options);
    const query = new URLSearchParams({ ca: certs.ca, cert: client.cert, key: client.key });
    return `etcds://${etcd.endpoints.join(',')}?${query}`;
  }

  it("runs its own service and is refused on another's, as the user named by its CN", async () => {
    const url = await urlFor('app-cn');
    const w = worker(url, service);
    await w.start();
    await until(() => w.status().shards.length === SHARDS, 10_000, 'the only worker owns every shard');
    expect(await keysUnder(admin, `sw/${service}/claims/`)).toHaveLength(SHARDS);

    const { error, ms } = await failedStart(url, { service: other });
    expect(error).toBeInstanceOf(EtcdPermissionError);
    expect((error as EtcdPermissionError).user).toBe('app-cn');
    expect(error.message).toContain(`permission denied on the key "sw/${other}/meta" for user "app-cn"`);
    expect(ms).toBeLessThan(3000);
    await w.stop();
  });

  it('refuses a certificate whose CN is no user with a role on the prefix', async () => {
    const { error, ms } = await failedStart(await urlFor('nobody'), { service });
    expect(error).toBeInstanceOf(EtcdPermissionError);
    expect((error as EtcdPermissionError).user).toBe('nobody');
    expect(error.message).toContain('for user "nobody"');
    expect(ms).toBeLessThan(3000);
  });

  it('fails start() at once without a client certificate, or with one from another CA', async () => {
    const required = explainTlsError({ code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' }) as string;
    expect(required).toContain('requires a client certificate');
    const withoutCert = `etcds://root:${ROOT_PASSWORD}@${etcd.endpoints.join(',')}?ca=${encodeURIComponent(certs.ca)}`;
    for (const url of [withoutCert, await urlFor('app-cn', { foreign: true })]) {
      const { error, ms } = await failedStart(url, { service });
      expect(error, url).toBeInstanceOf(EtcdTlsError);
      expect(error.message).toContain(required);
      expect(ms).toBeLessThan(3000);
    }
    // An expired client certificate never leaves the process: the options name it.
    const expired = await certs.client('app-cn', { expired: true });
    const query = new URLSearchParams({ ca: certs.ca, cert: expired.cert, key: expired.key });
    const error = (() => {
      try {
        discoveryFromUrl(`etcds://${etcd.endpoints[0]}?${query}`);
      } catch (e) {
        return e as InvalidOptionsError;
      }
      throw new Error('expected InvalidOptionsError');
    })();
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.option).toBe('url.cert');
    expect(error.message).toContain(expired.cert);
    expect(error.message).toContain('expired');
  });
});

describe('etcd TLS set-ups that cannot work', () => {
  it('names an expired server certificate, and a port that does not speak TLS, at once', async () => {
    const expired = await startEtcd({ tls: { ca: certs.ca, ...certs.expiredServer } });
    const plain = await startEtcd();
    closing.push(
      () => expired.stop(),
      () => plain.stop(),
    );
    for (const [etcd, words] of [
      [expired, explainTlsError({ code: 'CERT_HAS_EXPIRED' }) as string],
      [plain, explainTlsError({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }) as string],
    ] as const) {
      const url = `etcds://${etcd.endpoints[0]}?ca=${encodeURIComponent(certs.ca)}`;
      const { error, ms } = await failedStart(url);
      expect(error, url).toBeInstanceOf(EtcdTlsError);
      expect(error.message).toContain(words);
      expect(ms).toBeLessThan(3000);
    }
    expect(explainTlsError({ code: 'CERT_HAS_EXPIRED' })).toContain('has expired');
  });
});

describe('startTimeoutMs against a server that accepts connections and never answers', () => {
  let silent: SilentServer;
  let port: number;
  beforeAll(async () => {
    silent = await startSilentServer();
    port = silent.port;
  });
  afterAll(async () => {
    await silent?.close();
  });

  // etcd's dialTimeoutMs (5 s by default) used to bound the first attempt, overrunning a 3 s limit to 5 s.
  it.each(['etcd', 'etcds'])('holds for %s:// with the default dialTimeoutMs', async (scheme) => {
    const query = scheme === 'etcds' ? `?ca=${encodeURIComponent(certs.ca)}` : '';
    const { error, ms } = await failedStart(`${scheme}://127.0.0.1:${port}${query}`, { startTimeoutMs: 3000 });
    expect(error).toBeInstanceOf(StartTimeoutError);
    expect(error.message).toContain('within 3000 ms');
    expect(error.message).toContain('etcd');
    expect(ms).toBeGreaterThanOrEqual(2900);
    expect(ms).toBeLessThan(3000 + 1500);
  });

  it('names the endpoint once a call has timed out', async () => {
    const { error, ms } = await failedStart(`etcd://127.0.0.1:${port}?dialTimeoutMs=1000`, { startTimeoutMs: 3000 });
    expect(error).toBeInstanceOf(StartTimeoutError);
    expect((error as StartTimeoutError).cause).toBeInstanceOf(DiscoveryUnavailableError);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toContain('DEADLINE_EXCEEDED');
    expect(ms).toBeLessThan(3000 + 1500);
  });
});
