/**
 * Real etcd servers for tests: one member or a three-member cluster on
 * loopback, each with a temporary data directory and free ports.
 *
 * ```ts
 * const etcd = await startEtcd();            // or startEtcd({ members: 3 })
 * const discovery = discoveryFromUrl(etcd.url);
 * await etcd.restart();                      // same data dir, same ports
 * await etcd.stop();                         // kills and removes the data dirs
 * ```
 *
 * Uses Debian's `/usr/bin/etcd` (package `etcd-server`, etcd 3.4), or the binary
 * named by `SHARDWORK_ETCD_BIN`. Heartbeat 10 ms and election timeout 100 ms so
 * that 1 s leases are allowed and a leader is elected within a fraction of a second.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShardworkError } from '@shardwork/core';
import { freePort } from './ports.js';

/** A running etcd (one member or a cluster) started by {@link startEtcd}. */
export interface EtcdCluster {
  /** Client endpoints, `127.0.0.1:port`, one per member. */
  readonly endpoints: string[];
  /** `etcd://127.0.0.1:p1,127.0.0.1:p2,…` with every member. */
  readonly url: string;
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
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** Members of the cluster. @defaultValue 1 */
  readonly members?: 1 | 3;
  /** Extra command line flags for every member. @defaultValue [] */
  readonly extraArgs?: readonly string[];
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface MemberState {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  process: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  log: string[];
}

/** Start etcd on loopback with fresh data directories; resolves once every member is healthy. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const bin = etcdBinary();
  const count = options.members ?? 1;
  const extraArgs = options.extraArgs ?? [];
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
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      clientPort: await uniquePort(),
      peerPort: await uniquePort(),
      dataDir: await mkdtemp(join(tmpdir(), `sw-etcd-${i}-`)),
      process: undefined,
      exited: undefined,
      log: [],
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('ETCD_')) env[key] = value;
  // etcd 3.4 refuses to run on architectures other than amd64 (and ppc64le) without this.
  if (process.arch !== 'x64') env.ETCD_UNSUPPORTED_ARCH = process.arch === 'arm64' ? 'arm64' : process.arch;

  const spawnMember = (m: MemberState): void => {
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      `http://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-token',
      token,
      '--initial-cluster-state',
      'new',
      '--heartbeat-interval',
      '10',
      '--election-timeout',
      '100',
      '--logger',
      'zap',
      '--log-level',
      'warn',
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

  const healthy = async (m: MemberState): Promise<boolean> => {
    try {
      const res = await fetch(`http://127.0.0.1:${m.clientPort}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: string };
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

  for (const m of members) spawnMember(m);
  try {
    await waitHealthy(members);
  } catch (error) {
    await stop();
    throw error;
  }

  const endpoints = members.map((m) => `127.0.0.1:${m.clientPort}`);
  return {
    endpoints,
    url: `etcd://${endpoints.join(',')}`,
    stop,
    async restart(restartOptions = {}) {
      await Promise.all(members.map((m) => killMember(m, restartOptions.signal ?? 'SIGTERM')));
      for (const m of members) spawnMember(m);
      await waitHealthy(members);
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
          if (!isUp(m)) continue;
          try {
            // The JSON gateway of etcd 3.4 (`/v3/maintenance/status`) answers without a client library.
            const res = await fetch(`http://127.0.0.1:${m.clientPort}/v3/maintenance/status`, {
              method: 'POST',
              body: '{}',
              signal: AbortSignal.timeout(1000),
            });
            const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
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
  };
}
