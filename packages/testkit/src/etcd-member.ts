/**
 * One member of a test etcd: its ports, data directory and process, started
 * with the flags every member of its cluster shares, and stopped or checked
 * for health by the harness.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { ShardworkError, sleep } from '@shardwork/core';
import { type HarnessTls, requestJson } from './etcd-http.js';

const DEFAULT_BIN = '/usr/bin/etcd';

/** The etcd binary to run: `SHARDWORK_ETCD_BIN`, else Debian's; throws if it cannot be run. */
export function etcdBinary(): string {
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

/** The environment of a member: this process's, without `ETCD_*` settings that would override the flags. */
export function etcdEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('ETCD_')) env[key] = value;
  // etcd 3.4 refuses to run on architectures other than amd64 (and ppc64le) without this.
  if (process.arch !== 'x64') env.ETCD_UNSUPPORTED_ARCH = process.arch === 'arm64' ? 'arm64' : process.arch;
  return env;
}

/** What every member of one cluster shares. */
export interface EtcdMemberConfig {
  /** The etcd binary ({@link etcdBinary}). */
  readonly bin: string;
  /** Its environment ({@link etcdEnv}). */
  readonly env: NodeJS.ProcessEnv;
  /** Of the client and peer URLs. */
  readonly scheme: 'http' | 'https';
  /** `--initial-cluster-token`. */
  readonly token: string;
  /** Flags after the harness's own: the TLS flags, then the caller's. */
  readonly extraArgs: readonly string[];
  /** What the harness shows the member when it asks for its health. */
  readonly harnessTls: HarnessTls | undefined;
}

/** A member slot of a test cluster: it keeps its name and ports when its process or data directory changes. */
export class EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  dataDir: string;
  /** `--initial-cluster` and `--initial-cluster-state` of its first start on `dataDir`. */
  initialCluster = '';
  initialState: 'new' | 'existing' = 'new';
  /** Removed from the cluster by `EtcdCluster.removeMember` (and not added back). */
  removed = false;
  readonly #config: EtcdMemberConfig;
  #process: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #log: string[] = [];

  constructor(config: EtcdMemberConfig, name: string, clientPort: number, peerPort: number, dataDir: string) {
    this.#config = config;
    this.name = name;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.dataDir = dataDir;
  }

  /** Its peer URL, as the cluster knows it. */
  get peerUrl(): string {
    return `${this.#config.scheme}://127.0.0.1:${this.peerPort}`;
  }

  /** `path` on its client port. */
  clientUrl(path: string): string {
    return `${this.#config.scheme}://127.0.0.1:${this.clientPort}${path}`;
  }

  /** Whether its process runs (a stopped one, SIGSTOP, counts as running). */
  get up(): boolean {
    return this.#process !== undefined && this.#process.exitCode === null && this.#process.signalCode === null;
  }

  /** The last lines it printed (up to 200), since its last start. */
  get log(): readonly string[] {
    return this.#log;
  }

  /** Start its process; does not wait for it to be healthy. */
  spawn(): void {
    const { bin, env, token, extraArgs } = this.#config;
    const args = [
      '--name',
      this.name,
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      this.clientUrl(''),
      '--advertise-client-urls',
      this.clientUrl(''),
      '--listen-peer-urls',
      this.peerUrl,
      '--initial-advertise-peer-urls',
      this.peerUrl,
      // Read only on the first start on a data directory.
      '--initial-cluster',
      this.initialCluster,
      '--initial-cluster-token',
      token,
      '--initial-cluster-state',
      this.initialState,
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
    this.#log = [];
    const collect = (chunk: Buffer) => {
      this.#log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.#log.length > 200) this.#log.splice(0, this.#log.length - 200);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.#process = child;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (error) => {
        this.#log.push(String(error));
        resolve();
      });
    });
  }

  /** Send `signal` to its process, if it has one, without waiting. */
  signal(signal: NodeJS.Signals): void {
    this.#process?.kill(signal);
  }

  /** Whether it answers `/health` with `true`. */
  async healthy(): Promise<boolean> {
    try {
      const body = (await requestJson(this.clientUrl('/health'), this.#config.harnessTls, 'GET')) as {
        health?: string;
      };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  /** Send `signal` and wait for the process to exit; SIGKILL after 3 s. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    if (child === undefined || !this.up) return;
    child.kill('SIGCONT'); // a stopped process cannot act on SIGTERM
    child.kill(signal);
    const exited = this.#exited ?? Promise.resolve();
    const timedOut = await Promise.race([exited.then(() => false), sleep(3000).then(() => true)]);
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/** Wait until every member in `list` is healthy; throws if one exits or is not healthy within `timeoutMs`. */
export async function waitHealthy(list: readonly EtcdMember[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const m of list) {
    for (;;) {
      if (!m.up) throw new Error(`etcd member ${m.name} exited during start-up:\n${m.log.slice(-20).join('\n')}`);
      if (await m.healthy()) break;
      if (Date.now() > deadline) {
        throw new Error(`etcd member ${m.name} not healthy after ${timeoutMs} ms:\n${m.log.slice(-20).join('\n')}`);
      }
      await sleep(50);
    }
  }
}
