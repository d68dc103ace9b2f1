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

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShardworkError, sleep } from '@shardwork/core';
import { EtcdDiscovery, type EtcdDiscoveryOptions } from '@shardwork/discovery-etcd';
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

const DEFAULT_BIN = '/usr/bin/etcd';

function etcdBinary(): string {
  const bin = process.env.SHARDWORK_ETCD_BIN ?? DEFAULT_BIN;
  try {
    accessSync(bin, constants.X_OK);
  } catch (cause) {
    throw new ShardworkError(
      'BACKEND_BINARY_MISSING',
      `etcd binary not found or not executable at ${bin}. Install it with \`apt-get install -y etcd-server\` ` +
        '(Debian/Ubuntu, etcd 3.4) or point SHARDWORK_ETCD_BIN at an etcd 3.4+ binary.',
      { cause },
    );
  }
  return bin;
}

export { freePort } from './ports.js';

interface MemberState {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  dataDir: string;
  /** `--initial-cluster` and `--initial-cluster-state` of its first start on `dataDir`. */
  initialCluster: string;
  initialState: 'new' | 'existing';
  /** Removed from the cluster by {@link EtcdCluster.removeMember} (and not added back). */
  removed: boolean;
  process: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  log: string[];
}

/** An HTTP(S) request to a member's client port; resolves with the parsed JSON body. */
function requestJson(
  url: string,
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined,
  method: 'GET' | 'POST',
  body?: object,
  headers: Record<string, string> = {},
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const options = { method, timeout: 1000, headers: { 'content-type': 'application/json', ...headers } };
    const onResponse = (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    };
    // The harness does not verify the server's certificate, so that a member
    // with a broken one (expired, other CA) can be started and checked for
    // the tests that need it.
    const req =
      tls === undefined
        ? httpRequest(url, options, onResponse)
        : httpsRequest(url, { ...options, ...tls, rejectUnauthorized: false }, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 1 s`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
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
  const members: MemberState[] = [];
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
  const peerUrl = (m: MemberState) => `${scheme}://127.0.0.1:${m.peerPort}`;
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      clientPort: await uniquePort(),
      peerPort: await uniquePort(),
      dataDir: await mkdtemp(join(tmpdir(), `sw-etcd-${i}-`)),
      initialCluster: '',
      initialState: 'new',
      removed: false,
      process: undefined,
      exited: undefined,
      log: [],
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${peerUrl(m)}`).join(',');
  for (const m of members) m.initialCluster = initialCluster;
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('ETCD_')) env[key] = value;
  // etcd 3.4 refuses to run on architectures other than amd64 (and ppc64le) without this.
  if (process.arch !== 'x64') env.ETCD_UNSUPPORTED_ARCH = process.arch === 'arm64' ? 'arm64' : process.arch;

  const tlsArgs = (): string[] => {
    if (tls === undefined) return [];
    const args = ['--cert-file', tls.cert, '--key-file', tls.key];
    args.push('--peer-cert-file', tls.cert, '--peer-key-file', tls.key, '--peer-trusted-ca-file', tls.ca);
    args.push('--peer-client-cert-auth');
    // etcd 3.4 requires client certificates whenever --trusted-ca-file is set.
    if (tls.clientCertAuth === true) args.push('--client-cert-auth', '--trusted-ca-file', tls.ca);
    return args;
  };

  const spawnMember = (m: MemberState): void => {
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      `${scheme}://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls',
      `${scheme}://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls',
      peerUrl(m),
      '--initial-advertise-peer-urls',
      peerUrl(m),
      // Read only on the first start on a data directory.
      '--initial-cluster',
      m.initialCluster,
      '--initial-cluster-token',
      token,
      '--initial-cluster-state',
      m.initialState,
      '--heartbeat-interval',
      '10',
      '--election-timeout',
      '100',
      '--logger',
      'zap',
      '--log-level',
      'warn',
      ...tlsArgs(),
      ...extraArgs,
    ];
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    m.log = [];
    const collect = (chunk: Buffer) => {
      m.log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (m.log.length > 200) m.log.splice(0, m.log.length - 200);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    m.process = child;
    m.exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (error) => {
        m.log.push(String(error));
        resolve();
      });
    });
  };

  const isUp = (m: MemberState) =>
    m.process !== undefined && m.process.exitCode === null && m.process.signalCode === null;

  const clientUrl = (m: MemberState, path: string) => `${scheme}://127.0.0.1:${m.clientPort}${path}`;

  const healthy = async (m: MemberState): Promise<boolean> => {
    try {
      const body = (await requestJson(clientUrl(m, '/health'), harnessTls, 'GET')) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  };

  const waitHealthy = async (list: MemberState[], timeoutMs = 20_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (const m of list) {
      for (;;) {
        if (!isUp(m)) throw new Error(`etcd member ${m.name} exited during start-up:\n${m.log.slice(-20).join('\n')}`);
        if (await healthy(m)) break;
        if (Date.now() > deadline) {
          throw new Error(`etcd member ${m.name} not healthy after ${timeoutMs} ms:\n${m.log.slice(-20).join('\n')}`);
        }
        await sleep(50);
      }
    }
  };

  const killMember = async (m: MemberState, signal: NodeJS.Signals): Promise<void> => {
    const child = m.process;
    if (child === undefined || !isUp(m)) return;
    child.kill('SIGCONT'); // a stopped process cannot act on SIGTERM
    child.kill(signal);
    const exited = m.exited ?? Promise.resolve();
    const timedOut = await Promise.race([exited.then(() => false), sleep(3000).then(() => true)]);
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  const member = (index: number): MemberState => {
    const m = members[index];
    if (m === undefined) throw new RangeError(`no etcd member ${index} (cluster of ${members.length})`);
    return m;
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(members.map((m) => killMember(m, 'SIGKILL')));
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

  for (const m of members) spawnMember(m);
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

  /**
   * A call to etcd's JSON gateway on the first live member that answers, as
   * root when authentication is on. The gateway rather than the etcd3 client:
   * member ids are 64-bit, and the JSON carries them as strings, whereas the
   * protobuf runtime may decode them into lossy numbers under the test runner.
   */
  const gateway = async (path: string, body: object, avoid?: MemberState): Promise<unknown> => {
    let last: unknown;
    for (const m of members) {
      if (!isUp(m) || m.removed || m === avoid) continue;
      try {
        let headers: Record<string, string> = {};
        if (rootAuth !== undefined) {
          const auth = (await requestJson(clientUrl(m, '/v3/auth/authenticate'), harnessTls, 'POST', {
            name: rootAuth.username,
            password: rootAuth.password,
          })) as { token?: string };
          if (auth.token === undefined) throw new Error(`authentication as root failed: ${JSON.stringify(auth)}`);
          headers = { authorization: auth.token };
        }
        const reply = (await requestJson(clientUrl(m, path), harnessTls, 'POST', body, headers)) as {
          error?: string;
          message?: string;
        };
        if (reply.error !== undefined || reply.message !== undefined) {
          throw new Error(`${path} on ${m.name}: ${reply.message ?? reply.error}`);
        }
        return reply;
      } catch (error) {
        last = error;
      }
    }
    throw last ?? new Error('no live etcd member');
  };

  /**
   * A membership change through {@link gateway}, retried while etcd calls the
   * cluster unhealthy: with its strict reconfiguration check it refuses one
   * until every member has been connected for 5 s (so also right after start).
   */
  const reconfigure = async (path: string, body: object, avoid: MemberState): Promise<void> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await gateway(path, body, avoid);
        return;
      } catch (error) {
        if (!/unhealthy cluster/.test(String(error)) || Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  };

  /** `MemberList`: etcd's id of each member in the cluster, by peer URL. */
  const listMembers = async (): Promise<Map<string, string>> => {
    const res = (await gateway('/v3/cluster/member/list', { linearizable: true })) as {
      members?: { ID: string; peerURLs?: string[] }[];
    };
    const byPeer = new Map<string, string>();
    for (const info of res.members ?? []) for (const url of info.peerURLs ?? []) byPeer.set(url, info.ID);
    return byPeer;
  };

  return {
    endpoints,
    url: `${tls === undefined ? 'etcd' : 'etcds'}://${endpoints.join(',')}${tlsQuery === '' ? '' : `?${tlsQuery}`}`,
    tlsQuery,
    scheme: tls === undefined ? 'etcd' : 'etcds',
    options: { endpoints, ...(discoveryTls === undefined ? {} : { tls: discoveryTls }) },
    stop,
    async restart(restartOptions = {}) {
      const live = members.filter((m) => !m.removed);
      await Promise.all(live.map((m) => killMember(m, restartOptions.signal ?? 'SIGTERM')));
      for (const m of live) spawnMember(m);
      await waitHealthy(live);
    },
    async kill(index, signal = 'SIGKILL') {
      await killMember(member(index), signal);
    },
    async start(index) {
      const m = member(index);
      if (isUp(m)) return;
      spawnMember(m);
      await waitHealthy([m]);
    },
    async leaderIndex() {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        for (const [index, m] of members.entries()) {
          if (!isUp(m) || m.removed) continue;
          try {
            // The JSON gateway of etcd 3.4 (`/v3/maintenance/status`) answers without a client library.
            const body = (await requestJson(clientUrl(m, '/v3/maintenance/status'), harnessTls, 'POST', {})) as {
              header?: { member_id?: string };
              leader?: string;
            };
            if (body.leader !== undefined && body.leader !== '0' && body.leader === body.header?.member_id) {
              return index;
            }
          } catch {
            // member unreachable: try the next one
          }
        }
        await sleep(50);
      }
      throw new Error('no etcd leader within 10 s');
    },
    signal(index, signal) {
      member(index).process?.kill(signal);
    },
    logs(index = 0) {
      return member(index).log.join('\n');
    },
    admin,
    async memberIds() {
      const byPeer = await listMembers();
      const ids = new Map<number, string>();
      for (const [index, m] of members.entries()) {
        const id = byPeer.get(peerUrl(m));
        if (id !== undefined) ids.set(index, id);
      }
      return ids;
    },
    async removeMember(index) {
      const m = member(index);
      if (m.removed) throw new Error(`etcd member ${m.name} is already removed`);
      const id = (await listMembers()).get(peerUrl(m));
      if (id === undefined) throw new Error(`etcd member ${m.name} is not in the cluster`);
      // Asked of another member: the one removed stops by itself and may not answer.
      await reconfigure('/v3/cluster/member/remove', { ID: id }, m);
      m.removed = true;
      // A removed member stops by itself once it learns of its removal; do not wait for that.
      await killMember(m, 'SIGKILL');
    },
    async addMember(index) {
      const m = member(index);
      if (!m.removed) throw new Error(`etcd member ${m.name} is in the cluster: remove it first`);
      await killMember(m, 'SIGKILL');
      await reconfigure('/v3/cluster/member/add', { peerURLs: [peerUrl(m)] }, m);
      m.removed = false;
      await rm(m.dataDir, { recursive: true, force: true });
      m.dataDir = await mkdtemp(join(tmpdir(), `sw-etcd-${index}-`));
      m.initialCluster = members
        .filter((other) => !other.removed)
        .map((other) => `${other.name}=${peerUrl(other)}`)
        .join(',');
      m.initialState = 'existing';
      spawnMember(m);
      await waitHealthy([m]);
    },
  };
}
