/**
 * Real etcd servers for tests: one member or a three-member cluster on
 * loopback, each with a temporary data directory and free ports, over plain
 * http or TLS (client and peer URLs), optionally with authentication on.
 *
 * ```ts
 * const etcd = await startEtcd();            // or startEtcd({ members: 3 })
 * const discovery = discoveryFromUrl(etcd.url);
 * await etcd.restart();                      // same data dir, same ports
 * await etcd.stop();                         // kills and removes the data dirs
 *
 * const certs = await makeCerts();
 * const secure = await startEtcd({
 *   members: 3,
 *   tls: { ca: certs.ca, ...certs.server, clientCertAuth: true },
 *   auth: { rootPassword: 'root-pw' },
 * });
 * secure.url;                                // etcds://127.0.0.1:p1,…?ca=…&cert=…&key=…
 * const admin = secure.admin();              // an etcd3 client logged in as root
 * await secure.removeMember(1);              // memberRemove, process gone
 * await secure.addMember(1);                 // memberAdd, same ports, fresh data dir
 * ```
 *
 * Uses Debian's `/usr/bin/etcd` (package `etcd-server`, etcd 3.4), or the binary
 * named by `SHARDWORK_ETCD_BIN`. Heartbeat 10 ms and election timeout 100 ms so
 * that 1 s leases are allowed and a leader is elected within a fraction of a second.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdDiscovery, type EtcdDiscoveryOptions } from '@shardwork/discovery-etcd';
import { EtcdGateway } from './etcd-gateway.js';
import { EtcdMember, etcdBinary, etcdEnv, waitHealthy } from './etcd-member.js';
import { freePort } from './ports.js';

/** The etcd3 client an {@link EtcdDiscovery} holds (the harness reaches etcd3 only through it). */
export type EtcdClient = EtcdDiscovery['client'];

/** TLS of a test etcd: its certificate (also its peer certificate) and the CA it trusts. */
export interface EtcdServerTls {
  /** CA that signed the server's certificate and, with `clientCertAuth`, the clients' (PEM path). */
  readonly ca: string;
  /** Server certificate (PEM path); needs serverAuth and clientAuth usage, since peers show it too. */
  readonly cert: string;
  /** Its private key (PEM path). */
  readonly key: string;
  /**
   * `--client-cert-auth`: clients must show a certificate signed by `ca`; with
   * authentication on, etcd takes the user name from its common name.
   * @defaultValue false
   */
  readonly clientCertAuth?: boolean;
}

/** A running etcd (one member or a cluster) started by {@link startEtcd}. */
export interface EtcdCluster {
  /** Client endpoints, `127.0.0.1:port`, one per member slot (a removed member's stays listed). */
  readonly endpoints: string[];
  /**
   * `etcd://127.0.0.1:p1,127.0.0.1:p2,…` with every member; with TLS
   * `etcds://…?ca=…` (and `&cert=…&key=…`, the server's certificate, under
   * client-cert auth), so that it connects as it is.
   */
  readonly url: string;
  /** The URL query that carries the TLS files (`ca=…[&cert=…&key=…]`); empty without TLS. */
  readonly tlsQuery: string;
  /** `etcds` with TLS, else `etcd`. */
  readonly scheme: 'etcd' | 'etcds';
  /** Options for an {@link EtcdDiscovery} that reaches every member (TLS files included; no auth). */
  readonly options: EtcdDiscoveryOptions;
  /** Kill every member and remove the data directories. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stop every member and start it again on the same ports and data directory
   * (SIGTERM by default; `{ signal: 'SIGKILL' }` for a crash).
   */
  restart(options?: { signal?: NodeJS.Signals }): Promise<void>;
  /** Kill member `index` (SIGKILL by default) and wait for it to exit. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Start member `index` again on its data directory (after {@link EtcdCluster.kill}). */
  start(index: number): Promise<void>;
  /** Index of the current leader among the members (waits up to 10 s for one). */
  leaderIndex(): Promise<number>;
  /** Send a signal to member `index` without waiting (e.g. SIGSTOP / SIGCONT). */
  signal(index: number, signal: NodeJS.Signals): void;
  /** The last lines etcd printed, for failure messages. */
  logs(index?: number): string;
  /**
   * A new etcd3 client with every right: TLS as the harness (the server's
   * certificate as client certificate) and, with authentication on, logged in
   * as `root`. The caller closes it.
   */
  admin(): EtcdClient;
  /** Remove member `index` from the cluster (`MemberRemove` on another member), then stop its process. */
  removeMember(index: number): Promise<void>;
  /**
   * Add a removed member back (`MemberAdd` with its old peer URL) and start it
   * on its old ports with a fresh data directory and `--initial-cluster-state
   * existing`; resolves once it is healthy.
   */
  addMember(index: number): Promise<void>;
  /** etcd's member ids of the members that are in the cluster now, by index. */
  memberIds(): Promise<Map<number, string>>;
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** Members of the cluster. @defaultValue 1 */
  readonly members?: 1 | 3;
  /** Extra command line flags for every member. @defaultValue [] */
  readonly extraArgs?: readonly string[];
  /** Serve client and peer URLs over TLS (`https://`). @defaultValue plain http */
  readonly tls?: EtcdServerTls;
  /**
   * Turn authentication on after start: create user `root` with this password
   * and role `root`, then `AuthEnable`. @defaultValue off
   */
  readonly auth?: { readonly rootPassword: string };
}

export { freePort } from './ports.js';

/** The flags that serve client and peer URLs over TLS with `tls`; none without. */
function tlsArgs(tls: EtcdServerTls | undefined): string[] {
  if (tls === undefined) return [];
  const args = ['--cert-file', tls.cert, '--key-file', tls.key];
  args.push('--peer-cert-file', tls.cert, '--peer-key-file', tls.key, '--peer-trusted-ca-file', tls.ca);
  args.push('--peer-client-cert-auth');
  // etcd 3.4 requires client certificates whenever --trusted-ca-file is set.
  if (tls.clientCertAuth === true) args.push('--client-cert-auth', '--trusted-ca-file', tls.ca);
  return args;
}

/** Start etcd on loopback with fresh data directories; resolves once every member is healthy. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const bin = etcdBinary();
  const count = options.members ?? 1;
  const extraArgs = options.extraArgs ?? [];
  const tls = options.tls;
  const scheme = tls === undefined ? 'http' : 'https';
  // Under client-cert auth the harness shows the server's own certificate (it
  // has clientAuth usage) as its client certificate; otherwise none, since
  // etcd verifies any certificate shown, and the tests also start servers
  // with broken ones.
  const harnessTls =
    tls === undefined
      ? undefined
      : tls.clientCertAuth === true
        ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) }
        : { ca: readFileSync(tls.ca) };
  const token = `sw-test-${process.pid}-${Date.now().toString(36)}`;
  const config = {
    bin,
    env: etcdEnv(),
    scheme,
    token,
    extraArgs: [...tlsArgs(tls), ...extraArgs],
    harnessTls,
  } as const;
  const members: EtcdMember[] = [];
  const used = new Set<number>();
  const uniquePort = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!used.has(port)) {
        used.add(port);
        return port;
      }
    }
  };
  for (let i = 0; i < count; i++) {
    const clientPort = await uniquePort();
    const peerPort = await uniquePort();
    const dataDir = await mkdtemp(join(tmpdir(), `sw-etcd-${i}-`));
    members.push(new EtcdMember(config, `m${i}`, clientPort, peerPort, dataDir));
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  for (const m of members) m.initialCluster = initialCluster;

  const member = (index: number): EtcdMember => {
    const m = members[index];
    if (m === undefined) throw new RangeError(`no etcd member ${index} (cluster of ${members.length})`);
    return m;
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(members.map((m) => m.kill('SIGKILL')));
    await Promise.all(members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
  };

  const endpoints = members.map((m) => `127.0.0.1:${m.clientPort}`);
  const query = new URLSearchParams();
  if (tls !== undefined) {
    query.set('ca', tls.ca);
    if (tls.clientCertAuth === true) {
      query.set('cert', tls.cert);
      query.set('key', tls.key);
    }
  }
  const tlsQuery = query.toString();
  const discoveryTls = tls === undefined ? undefined : { caFile: tls.ca, certFile: tls.cert, keyFile: tls.key };
  const clientOptions = (auth?: { username: string; password: string }): EtcdDiscoveryOptions => ({
    endpoints: members.filter((m) => !m.removed).map((m) => `127.0.0.1:${m.clientPort}`),
    ...(discoveryTls === undefined ? {} : { tls: discoveryTls }),
    ...(auth === undefined ? {} : { auth }),
  });
  const rootAuth = options.auth === undefined ? undefined : { username: 'root', password: options.auth.rootPassword };
  const admin = (): EtcdClient => new EtcdDiscovery(clientOptions(rootAuth)).client;

  for (const m of members) m.spawn();
  try {
    await waitHealthy(members);
    if (rootAuth !== undefined) {
      const client = new EtcdDiscovery(clientOptions()).client;
      try {
        await client.role('root').create();
        await client.user('root').create(rootAuth.password);
        await client.user('root').addRole('root');
        await client.auth.authEnable();
      } finally {
        client.close();
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }

  const gateway = new EtcdGateway(members, harnessTls, rootAuth);

  return {
    endpoints,
    url: `${tls === undefined ? 'etcd' : 'etcds'}://${endpoints.join(',')}${tlsQuery === '' ? '' : `?${tlsQuery}`}`,
    tlsQuery,
    scheme: tls === undefined ? 'etcd' : 'etcds',
    options: { endpoints, ...(discoveryTls === undefined ? {} : { tls: discoveryTls }) },
    stop,
    async restart(restartOptions = {}) {
      const live = members.filter((m) => !m.removed);
      await Promise.all(live.map((m) => m.kill(restartOptions.signal ?? 'SIGTERM')));
      for (const m of live) m.spawn();
      await waitHealthy(live);
    },
    async kill(index, signal = 'SIGKILL') {
      await member(index).kill(signal);
    },
    async start(index) {
      const m = member(index);
      if (m.up) return;
      m.spawn();
      await waitHealthy([m]);
    },
    leaderIndex: () => gateway.leaderIndex(),
    signal(index, signal) {
      member(index).signal(signal);
    },
    logs(index = 0) {
      return member(index).log.join('\n');
    },
    admin,
    async memberIds() {
      const byPeer = await gateway.listMembers();
      const ids = new Map<number, string>();
      for (const [index, m] of members.entries()) {
        const id = byPeer.get(m.peerUrl);
        if (id !== undefined) ids.set(index, id);
      }
      return ids;
    },
    async removeMember(index) {
      const m = member(index);
      if (m.removed) throw new Error(`etcd member ${m.name} is already removed`);
      const id = (await gateway.listMembers()).get(m.peerUrl);
      if (id === undefined) throw new Error(`etcd member ${m.name} is not in the cluster`);
      // Asked of another member: the one removed stops by itself and may not answer.
      await gateway.reconfigure('/v3/cluster/member/remove', { ID: id }, m);
      m.removed = true;
      // A removed member stops by itself once it learns of its removal; do not wait for that.
      await m.kill('SIGKILL');
    },
    async addMember(index) {
      const m = member(index);
      if (!m.removed) throw new Error(`etcd member ${m.name} is in the cluster: remove it first`);
      await m.kill('SIGKILL');
      await gateway.reconfigure('/v3/cluster/member/add', { peerURLs: [m.peerUrl] }, m);
      m.removed = false;
      await rm(m.dataDir, { recursive: true, force: true });
      m.dataDir = await mkdtemp(join(tmpdir(), `sw-etcd-${index}-`));
      m.initialCluster = members
        .filter((other) => !other.removed)
        .map((other) => `${other.name}=${other.peerUrl}`)
        .join(',');
      m.initialState = 'existing';
      m.spawn();
      await waitHealthy([m]);
    },
  };
}
