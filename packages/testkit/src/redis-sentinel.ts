/**
 * A throw-away Redis Sentinel setup for tests: one primary, its replica(s) and
 * three sentinels monitoring it as `mymaster`, all on free loopback ports,
 * with short timeouts so that a killed primary fails over in a few seconds.
 *
 * ```ts
 * const setup = await startRedisSentinel();
 * const client = new Redis({ sentinels: setup.sentinels, name: setup.name });
 * const { oldPort, newPort, ms } = await setup.failover({ how: 'kill' });
 * await setup.restartOld(); // back as a replica of newPort
 * await setup.stop();
 * ```
 *
 * Every process is a {@link startRedisServer} server (own port, own
 * directory, killed on `stop()` or when the test process exits); sentinels
 * run the same binary with `--sentinel` and a configuration file of their own.
 *
 * @module
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisTestServer, redisCommand, startRedisServer } from './redis-server.js';
import { eventually } from './wait.js';

/** Directories of setups not stopped yet, removed when the test process exits (the servers are killed by redis-server.ts). */
const directories = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  });
}

/** What {@link startRedisSentinel} builds. */
export interface RedisSentinelOptions {
  /** Replicas of the primary (the only number tested). @defaultValue 1 */
  readonly replicas?: 1;
  /** Sentinels; the quorum is a majority of them. @defaultValue 3 */
  readonly sentinels?: 3;
  /**
   * `down-after-milliseconds`: how long the primary may be silent before it is
   * considered down. Not below 2000: at the sentinels' 1 s ping period, a
   * sentinel can mark the primary it just switched to as down before its first
   * PING is answered, and fail a healthy primary over again. @defaultValue 2000
   */
  readonly downAfterMs?: number;
  /** `failover-timeout`; also how long sentinels wait before a second try when an election fails. @defaultValue 4000 */
  readonly failoverTimeoutMs?: number;
}

/** One Redis data node (primary or replica) as the harness last saw it. */
export interface RedisSentinelNode {
  /** Position in {@link RedisTestSentinel.nodes}: 0 is the first primary. */
  readonly index: number;
  readonly port: number;
  /** Process id, or `undefined` while the node is down. */
  readonly pid: number | undefined;
  /** Role after the last harness call that changed the topology. */
  readonly role: 'primary' | 'replica' | 'down';
}

/** What a failover did and how long it took. */
export interface RedisSentinelFailover {
  /** `'kill'`: SIGKILL of the primary; `'manual'`: `SENTINEL FAILOVER` (the old primary becomes a replica). */
  readonly how: 'kill' | 'manual';
  /** Port of the primary before. */
  readonly oldPort: number;
  /** Port of the primary now. */
  readonly newPort: number;
  /** Milliseconds from the kill (or the `SENTINEL FAILOVER`) until every sentinel names the new primary and it answers `ROLE` as master. */
  readonly ms: number;
}

/** A running Sentinel setup. */
export interface RedisTestSentinel {
  /** The monitored primary's name: `'mymaster'`. */
  readonly name: 'mymaster';
  /** Every sentinel as `{ host, port }`, for `new Redis({ sentinels, name })`. */
  readonly sentinels: readonly { readonly host: '127.0.0.1'; readonly port: number }[];
  /** `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster`. */
  readonly url: string;
  /** The primary and its replicas. */
  readonly nodes: readonly RedisSentinelNode[];
  /** Port of the current primary, as the first sentinel that answers reports it (`SENTINEL GET-MASTER-ADDR-BY-NAME`). */
  primaryPort(): Promise<number>;
  /**
   * Fail the primary over and resolve once every sentinel names a new primary
   * and that node answers `ROLE` as master. `'kill'` SIGKILLs the primary
   * (writes not yet replicated are lost; it stays down until
   * {@link RedisTestSentinel.restartOld}); `'manual'` runs `SENTINEL FAILOVER`,
   * then makes the old primary a replica of the new one at once (sentinels
   * would do it only after 8 s) and waits until it is in sync. Writes the old
   * primary accepted between the promotion and its demotion are lost; clients
   * still connected to it get `READONLY` errors from then on.
   */
  failover(options: { how: 'kill' | 'manual' }): Promise<RedisSentinelFailover>;
  /**
   * Start the primary killed by the last `failover({ how: 'kill' })` again on
   * its port (empty data), make it a replica of the current primary, and
   * resolve once it is in sync and every sentinel sees it up as a replica
   * (their record of its sync state may lag for up to 10 s; a failover while
   * the primary is down refreshes it within a second).
   */
  restartOld(): Promise<void>;
  /** Send one command to a data node or a sentinel by port; resolves with the raw RESP reply. */
  command(port: number, ...args: string[]): Promise<string>;
  /** Kill every process and remove every directory. Idempotent; safe after a failed test. */
  stop(): Promise<void>;
  /** Same as {@link RedisTestSentinel.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A RESP value, as much as the harness needs. */
type Resp = string | number | null | Resp[];

/** Parse one complete RESP reply, or return `undefined` if `text` stops before its end (the caller asks again). */
function parseResp(text: string): Resp | undefined {
  let at = 0;
  const line = (): string | undefined => {
    const end = text.indexOf('\r\n', at);
    if (end === -1) return undefined;
    const value = text.slice(at, end);
    at = end + 2;
    return value;
  };
  const value = (): Resp | undefined => {
    const head = line();
    if (head === undefined) return undefined;
    const rest = head.slice(1);
    switch (head[0]) {
      case '+':
        return rest;
      case '-':
        throw new Error(`Redis replied -${rest}`);
      case ':':
        return Number(rest);
      case '$': {
        const length = Number(rest);
        if (length < 0) return null;
        if (text.length < at + length + 2) return undefined;
        const payload = text.slice(at, at + length);
        at += length + 2;
        return payload;
      }
      case '*': {
        const length = Number(rest);
        if (length < 0) return null;
        const items: Resp[] = [];
        for (let i = 0; i < length; i++) {
          const item = value();
          if (item === undefined) return undefined;
          items.push(item);
        }
        return items;
      }
      default:
        throw new Error(`unexpected RESP reply ${JSON.stringify(text.slice(0, 80))}`);
    }
  };
  return value();
}

/** A flat `[k1, v1, k2, v2, …]` array reply as a map. */
function fields(reply: Resp): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(reply)) return map;
  for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), String(reply[i + 1]));
  return map;
}

function info(text: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1]?.trim();
}

/**
 * Start a primary, its replica and three sentinels on loopback and wait until
 * the replica is in sync and every sentinel knows the replica and the other
 * sentinels (so that a failover can reach its quorum at once).
 */
export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisTestSentinel> {
  const name = 'mymaster' as const;
  const replicaCount = options.replicas ?? 1;
  const sentinelCount = options.sentinels ?? 3;
  const downAfterMs = options.downAfterMs ?? 2000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 4000;
  const quorum = Math.floor(sentinelCount / 2) + 1;
  // An election that splits waits failover-timeout before the next try: allow a few tries.
  const settleMs = Math.max(30_000, 4 * failoverTimeoutMs + 10 * downAfterMs);

  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'shardwork-sentinel-'));
  directories.add(dir);
  const data: RedisTestServer[] = [];
  const sentinelServers: RedisTestServer[] = [];
  const down = new Set<number>();
  const roles: ('primary' | 'replica' | 'down')[] = [];
  let killed: number | undefined;
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const results = await Promise.allSettled([...sentinelServers, ...data].map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    directories.delete(dir);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  };

  const ask = async (port: number, args: readonly string[]): Promise<Resp> => {
    const reply = parseResp(await redisCommand(port, args, 2000));
    if (reply === undefined) throw new Error(`incomplete reply from port ${port} to ${args.join(' ')}`);
    return reply;
  };
  const indexOfPort = (port: number): number => data.findIndex((s) => s.port === port);
  const role = async (port: number): Promise<string> => {
    const reply = await ask(port, ['ROLE']);
    return Array.isArray(reply) ? String(reply[0]) : '';
  };
  const masterAddr = async (sentinelPort: number): Promise<number> => {
    const reply = await ask(sentinelPort, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name]);
    if (!Array.isArray(reply) || reply.length !== 2)
      throw new Error(`sentinel ${sentinelPort} has no address for ${name}`);
    return Number(reply[1]);
  };
  /**
   * Throw unless every sentinel names `primary`, knows the other sentinels and sees each of `replicas`
   * up, and with `synced` also in sync by its last INFO (sentinels ask replicas for INFO only every
   * 10 s while the primary is up, so a replica that has just changed may take that long).
   */
  const checkSentinels = async (primary: number, replicas: readonly number[], synced: boolean): Promise<void> => {
    for (const sentinel of sentinelServers) {
      const addr = await masterAddr(sentinel.port);
      if (addr !== primary) throw new Error(`sentinel ${sentinel.port} names ${addr} as primary, not ${primary}`);
      const master = fields(await ask(sentinel.port, ['SENTINEL', 'MASTER', name]));
      const flags = master.get('flags') ?? '';
      if (flags !== 'master') throw new Error(`sentinel ${sentinel.port} sees the primary as ${flags}`);
      if (master.get('num-other-sentinels') !== String(sentinelCount - 1)) {
        throw new Error(`sentinel ${sentinel.port} knows ${master.get('num-other-sentinels')} other sentinels`);
      }
      const seen = await ask(sentinel.port, ['SENTINEL', 'REPLICAS', name]);
      const healthy = (Array.isArray(seen) ? seen : [])
        .map(fields)
        .filter((r) => r.get('flags') === 'slave' && (!synced || r.get('master-link-status') === 'ok'))
        .map((r) => Number(r.get('port')));
      for (const port of replicas) {
        if (!healthy.includes(port))
          throw new Error(`sentinel ${sentinel.port} does not see ${port} as a healthy replica`);
      }
    }
  };
  const checkReplica = async (port: number, primary: number): Promise<void> => {
    const text = String(await ask(port, ['INFO', 'replication']));
    if (info(text, 'role') !== 'slave' || info(text, 'master_port') !== String(primary)) {
      throw new Error(`${port} is not a replica of ${primary}`);
    }
    if (info(text, 'master_link_status') !== 'up') throw new Error(`replica ${port}: master_link_status is not up`);
  };
  const replicaPorts = (primaryIndex: number): number[] =>
    data.filter((_, i) => i !== primaryIndex && !down.has(i)).map((s) => s.port);

  try {
    for (let i = 0; i <= replicaCount; i++) {
      data.push(
        await startRedisServer({
          // The replica syncs at once instead of after the default 5 s.
          extraArgs: ['--repl-diskless-sync-delay', '0', '--replica-announce-ip', '127.0.0.1'],
        }),
      );
    }
    const [primary, ...replicas] = data;
    if (primary === undefined) throw new Error('no primary');
    roles.push('primary', ...replicas.map(() => 'replica' as const));
    for (const replica of replicas) {
      const reply = await redisCommand(replica.port, ['REPLICAOF', '127.0.0.1', String(primary.port)]);
      if (!reply.startsWith('+OK')) throw new Error(`REPLICAOF replied ${reply.trim()}`);
    }
    await eventually(() => Promise.all(replicas.map((r) => checkReplica(r.port, primary.port))), settleMs, 50);
    for (let i = 0; i < sentinelCount; i++) {
      const configFile = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        configFile,
        [
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} ${quorum}`,
          `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
          `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
          `sentinel parallel-syncs ${name} 1`,
          'sentinel announce-ip 127.0.0.1',
          '',
        ].join('\n'),
      );
      sentinelServers.push(await startRedisServer({ configFile, extraArgs: ['--sentinel'] }));
    }
    await eventually(
      () =>
        checkSentinels(
          primary.port,
          replicas.map((r) => r.port),
          true,
        ),
      settleMs,
      100,
    );
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  const primaryPort = async (): Promise<number> => {
    let last: unknown;
    for (const sentinel of sentinelServers) {
      try {
        return await masterAddr(sentinel.port);
      } catch (error) {
        last = error;
      }
    }
    throw new Error('no sentinel answers GET-MASTER-ADDR-BY-NAME', { cause: last });
  };

  const setup: RedisTestSentinel = {
    name,
    sentinels: sentinelServers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    url: `redis+sentinel://${sentinelServers.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}`,
    nodes: data.map((server, index) => ({
      index,
      port: server.port,
      get pid() {
        return down.has(index) ? undefined : server.pid;
      },
      get role() {
        return roles[index] ?? 'down';
      },
    })),
    primaryPort,
    async failover({ how }) {
      if (stopped) throw new Error('the setup is stopped');
      const oldPort = await primaryPort();
      const oldIndex = indexOfPort(oldPort);
      const old = data[oldIndex];
      if (old === undefined || down.has(oldIndex))
        throw new Error(`the primary on port ${oldPort} is not ours or is down`);
      if (replicaPorts(oldIndex).length === 0) throw new Error('no replica is up to fail over to');
      const began = Date.now();
      if (how === 'kill') {
        const pid = old.pid;
        if (pid === undefined) throw new Error(`the primary on port ${oldPort} has no process`);
        process.kill(pid, 'SIGKILL');
        down.add(oldIndex);
        roles[oldIndex] = 'down';
        killed = oldIndex;
      } else {
        const [first] = sentinelServers;
        if (first === undefined) throw new Error('no sentinel');
        const reply = await redisCommand(first.port, ['SENTINEL', 'FAILOVER', name], 2000);
        if (!reply.startsWith('+OK')) throw new Error(`SENTINEL FAILOVER replied ${reply.trim()}`);
      }
      const newPort = await eventually(
        async () => {
          const ports = await Promise.all(sentinelServers.map((s) => masterAddr(s.port)));
          const [port] = ports;
          if (port === undefined || port === oldPort || ports.some((p) => p !== port)) {
            throw new Error(`sentinels name ${ports.join(', ')} as primary (was ${oldPort})`);
          }
          if ((await role(port)) !== 'master') throw new Error(`${port} does not answer ROLE as master yet`);
          return port;
        },
        settleMs,
        50,
      );
      const ms = Date.now() - began;
      const newIndex = indexOfPort(newPort);
      roles[newIndex] = 'primary';
      if (how === 'manual') {
        // Sentinels demote the old primary only once it has reported itself as master for 8 s
        // (4 publish periods); writes it takes until then are lost. Demote it now, as they will.
        const reply = await redisCommand(oldPort, ['REPLICAOF', '127.0.0.1', String(newPort)]);
        if (!reply.startsWith('+OK')) throw new Error(`REPLICAOF replied ${reply.trim()}`);
        roles[oldIndex] = 'replica';
        await eventually(() => checkReplica(oldPort, newPort), settleMs, 50);
        // Not waiting for the sentinels to see it in sync: they ask replicas for INFO every 10 s
        // (every second once the primary is down, so a later kill still finds it at once).
        await eventually(() => checkSentinels(newPort, [oldPort], false), settleMs, 100);
      }
      return { how, oldPort, newPort, ms };
    },
    async restartOld() {
      if (stopped) throw new Error('the setup is stopped');
      const index = killed;
      const server = index === undefined ? undefined : data[index];
      if (index === undefined || server === undefined) throw new Error('restartOld() without a killed primary');
      const current = await primaryPort();
      await server.restart();
      // Sentinels would make it a replica too, but only after it has been up for 8 s (4 publish periods).
      const reply = await redisCommand(server.port, ['REPLICAOF', '127.0.0.1', String(current)]);
      if (!reply.startsWith('+OK')) throw new Error(`REPLICAOF replied ${reply.trim()}`);
      down.delete(index);
      killed = undefined;
      roles[index] = 'replica';
      const currentIndex = indexOfPort(current);
      await eventually(() => checkReplica(server.port, current), settleMs, 50);
      await eventually(() => checkSentinels(current, replicaPorts(currentIndex), false), settleMs, 100);
    },
    command: (port, ...args) => redisCommand(port, args, 2000),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  return setup;
}
