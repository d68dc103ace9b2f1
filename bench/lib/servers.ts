/**
 * Private backend servers for the bench (loopback only, from test/support) and
 * their server-side counters: Redis `INFO`, etcd's Prometheus `/metrics` on
 * the client URL, PostgreSQL's `pg_stat_database` and `/proc`.
 *
 * @module
 */

import { readdirSync, readFileSync } from 'node:fs';

/** Cumulative server-side counters at one moment. */
export interface ServerCounters {
  /** Requests sent by clients (Redis: commands a client sends itself; etcd: gRPC messages received). */
  readonly requests: number;
  /** The same, per command (Redis) or per gRPC method (etcd). */
  readonly byMethod: Readonly<Record<string, number>>;
  /** Redis: every command including those run inside Lua scripts. */
  readonly allCommands?: number;
  /** Server CPU time, user + system, ms. */
  readonly cpuMs: number;
  /** Server resident memory, bytes. */
  readonly rssBytes: number;
}

/** A running server. */
export interface BenchServer {
  readonly backend: 'redis' | 'etcd' | 'postgres';
  /** Discovery URL. */
  readonly url: string;
  /** Server version. */
  readonly version: string;
  counters(): Promise<ServerCounters>;
  stop(): Promise<void>;
}

/** Commands a Redis client sends itself (everything else in commandstats ran inside a script). */
const REDIS_CLIENT_COMMANDS =
  /^(evalsha|eval|evalsha_ro|eval_ro|fcall|subscribe|unsubscribe|psubscribe|punsubscribe|ping|hello|auth|select|quit|client\|.*|script\|.*|command.*)$/;

function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Start a private redis-server (@shardwork/testkit). */
export async function startRedis(): Promise<BenchServer> {
  const { startRedisServer } = await import('@shardwork/testkit');
  const server = await startRedisServer();
  const info = async (...sections: string[]): Promise<Map<string, string>> =>
    parseInfo(await server.command('INFO', ...sections));
  const version = (await info('server')).get('redis_version') ?? '?';
  return {
    backend: 'redis',
    url: server.url,
    version,
    async counters() {
      const fields = await info('commandstats', 'cpu', 'memory');
      const byMethod: Record<string, number> = {};
      let requests = 0;
      let allCommands = 0;
      for (const [key, value] of fields) {
        if (!key.startsWith('cmdstat_')) continue;
        const command = key.slice('cmdstat_'.length);
        if (command === 'info') continue; // the bench's own probes
        const calls = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0);
        allCommands += calls;
        if (REDIS_CLIENT_COMMANDS.test(command)) {
          byMethod[command] = calls;
          requests += calls;
        }
      }
      const cpuSeconds = Number(fields.get('used_cpu_user') ?? 0) + Number(fields.get('used_cpu_sys') ?? 0);
      return {
        requests,
        byMethod,
        allCommands,
        cpuMs: cpuSeconds * 1000,
        rssBytes: Number(fields.get('used_memory_rss') ?? 0),
      };
    },
    stop: () => server.stop(),
  };
}

/** Parse one Prometheus sample line into name, labels and value. */
function parseSample(line: string): { name: string; labels: Record<string, string>; value: number } | undefined {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
  if (match === null) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of (match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[pair[1] as string] = pair[2] as string;
  return { name: match[1] as string, labels, value: Number(match[4]) };
}

/** Start a private one-member etcd (@shardwork/testkit). */
export async function startEtcdServer(): Promise<BenchServer> {
  const { startEtcd } = await import('@shardwork/testkit');
  const cluster = await startEtcd();
  const endpoint = cluster.endpoints[0] as string;
  const versionReply = (await (await fetch(`http://${endpoint}/version`)).json()) as { etcdserver?: string };
  return {
    backend: 'etcd',
    url: cluster.url,
    version: versionReply.etcdserver ?? '?',
    async counters() {
      const text = await (await fetch(`http://${endpoint}/metrics`)).text();
      const byMethod: Record<string, number> = {};
      let requests = 0;
      let cpuMs = 0;
      let rssBytes = 0;
      for (const line of text.split('\n')) {
        if (line.startsWith('#')) continue;
        const sample = parseSample(line);
        if (sample === undefined) continue;
        if (sample.name === 'grpc_server_msg_received_total') {
          const method = `${(sample.labels.grpc_service ?? '').replace(/^etcdserverpb\./, '')}.${sample.labels.grpc_method ?? '?'}`;
          byMethod[method] = (byMethod[method] ?? 0) + sample.value;
          requests += sample.value;
        } else if (sample.name === 'process_cpu_seconds_total') {
          cpuMs = sample.value * 1000;
        } else if (sample.name === 'process_resident_memory_bytes') {
          rssBytes = sample.value;
        }
      }
      return { requests, byMethod, cpuMs, rssBytes };
    },
    stop: () => cluster.stop(),
  };
}

/** CPU ms (user + system) of a process and its live children, from /proc (clock ticks of 10 ms). */
function cpuOfTree(root: number): { cpuMs: number; rssBytes: number } {
  let cpuMs = 0;
  let rssBytes = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) !== root && Number(fields[1]) !== root) continue;
      cpuMs += (Number(fields[11]) + Number(fields[12])) * 10;
      rssBytes += Number(fields[21]) * 4096;
    } catch {
      // Exited meanwhile.
    }
  }
  return { cpuMs, rssBytes };
}

/** Start a private PostgreSQL (@shardwork/testkit); requests are the transactions it committed or rolled back. */
export async function startPostgresBench(): Promise<BenchServer> {
  const { startPostgres } = await import('@shardwork/testkit');
  // Every replica holds a LISTEN connection and a small pool: 200 replicas need more than the default 100.
  const server = await startPostgres({ settings: { max_connections: '1000' } });
  const [row] = await server.query<{ version: string }>(`SELECT current_setting('server_version') AS version`);
  return {
    backend: 'postgres',
    url: server.url,
    version: row?.version ?? '?',
    async counters() {
      const [row] = await server.query<{ commits: string; rollbacks: string }>(
        `SELECT xact_commit AS commits, xact_rollback AS rollbacks FROM pg_stat_database WHERE datname = 'postgres'`,
      );
      const commits = Number(row?.commits ?? 0);
      const rollbacks = Number(row?.rollbacks ?? 0);
      return {
        requests: commits + rollbacks,
        byMethod: { commit: commits, rollback: rollbacks },
        ...cpuOfTree(server.pid ?? 0),
      };
    },
    stop: () => server.stop(),
  };
}

/** Start the server of a backend. */
export function startServer(backend: 'redis' | 'etcd' | 'postgres'): Promise<BenchServer> {
  if (backend === 'postgres') return startPostgresBench();
  return backend === 'redis' ? startRedis() : startEtcdServer();
}
