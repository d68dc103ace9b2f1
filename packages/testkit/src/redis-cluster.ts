/**
 * A throw-away Redis Cluster for tests: three primaries with one replica each
 * on free loopback ports, built with `redis-cli --cluster create`, and the
 * means to fail a primary over (kill -9, or a lossless `CLUSTER FAILOVER`) and
 * to bring a killed node back as a replica.
 *
 * ```ts
 * const cluster = await startRedisCluster();
 * const client = new Cluster(cluster.startupNodes);
 * const index = await cluster.primaryOf('{svc}:leases');
 * const { newPrimary, ms } = await cluster.failover(index, { how: 'kill' });
 * await cluster.restartNode(index); // rejoins as a replica of newPrimary
 * await cluster.stop();
 * ```
 *
 * Every node is a {@link startRedisServer} server (own port, own directory,
 * killed on `stop()` or when the test process exits). Its cluster bus uses a
 * port of its own (`--cluster-port`), so a node port above 55535 works too.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ClusterTopology, type RedisClusterRole } from './redis-cluster-topology.js';
import { freePort, type RedisServerTls, startRedisServer } from './redis-server.js';
import { eventually } from './wait.js';

const run = promisify(execFile);

/** What {@link startRedisCluster} builds. */
export interface RedisClusterOptions {
  /** Primaries (the only size tested). @defaultValue 3 */
  readonly primaries?: 3;
  /** Replicas of each primary. @defaultValue 1 */
  readonly replicasPerPrimary?: 1;
  /**
   * `cluster-node-timeout`: how long a node may be unreachable before it is
   * considered failing. A kill fails over after about this plus an election
   * (0.5-1 s). @defaultValue 1000
   */
  readonly nodeTimeoutMs?: number;
  /**
   * Serve TLS only, also on the cluster bus and for replication
   * (`--tls-cluster yes --tls-replication yes`); the harness and `redis-cli`
   * show the server certificate as their client certificate.
   * @defaultValue plain TCP
   */
  readonly tls?: RedisServerTls;
}

/** One node of the cluster. Its `role` is updated by every harness call that changes the topology, and by `refresh()`. */
export interface RedisClusterNode {
  /** Position in {@link RedisTestCluster.nodes}; stable for the cluster's life. */
  readonly index: number;
  /** Client port on 127.0.0.1 (the TLS port with TLS). */
  readonly port: number;
  /** Port of the cluster bus. */
  readonly busPort: number;
  /** The node's cluster id (40 hex digits), kept across `restartNode()`. */
  readonly id: string;
  /** Process id, or `undefined` while the node is down. */
  readonly pid: number | undefined;
  /** Current role. */
  readonly role: RedisClusterRole;
}

/** What a failover did and how long it took. */
export interface RedisClusterFailover {
  /** `'kill'`: SIGKILL of the primary; `'manual'`: `CLUSTER FAILOVER` on its replica. */
  readonly how: 'kill' | 'manual';
  /** Index of the primary that was failed over (down after a kill, a replica after a manual failover). */
  readonly oldPrimary: number;
  /** Index of the replica that took over its slots. */
  readonly newPrimary: number;
  /** Milliseconds from the kill (or the `CLUSTER FAILOVER`) until every live node reports `cluster_state:ok` with the new primary. */
  readonly ms: number;
}

/** A running test cluster. */
export interface RedisTestCluster {
  /** Every node, primaries and replicas. */
  readonly nodes: readonly RedisClusterNode[];
  /** Every node as `{ host, port }`, for `new Cluster(startupNodes)`. */
  readonly startupNodes: readonly { readonly host: '127.0.0.1'; readonly port: number }[];
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…` (every node), `rediss+cluster://…` with TLS. */
  readonly url: string;
  /** TLS files the nodes use, if any. */
  readonly tls: RedisServerTls | undefined;
  /** Index of the node currently serving the slot of `key` (`CLUSTER KEYSLOT`, then `CLUSTER NODES`). */
  primaryOf(key: string): Promise<number>;
  /** Indexes of the replicas of the primary at `index` that are up. */
  replicasOf(index: number): Promise<number[]>;
  /**
   * Fail the primary at `index` over to its replica and resolve once the
   * replica is primary and every live node reports `cluster_state:ok`.
   * `'kill'` SIGKILLs the primary (writes not yet replicated are lost; the
   * node stays down until {@link RedisTestCluster.restartNode});
   * `'manual'` runs `CLUSTER FAILOVER` on the replica (nothing lost, the old
   * primary becomes its replica).
   */
  failover(index: number, options: { how: 'kill' | 'manual' }): Promise<RedisClusterFailover>;
  /**
   * Start the killed node at `index` again on its port (empty data, same
   * cluster id) and resolve once it has rejoined as a replica that is in sync
   * and every node reports `cluster_state:ok`. Throws if the node is not down.
   */
  restartNode(index: number): Promise<void>;
  /** Read the roles again from the cluster (`CLUSTER NODES` on a live node). */
  refresh(): Promise<void>;
  /** Send one command to the node at `index`; resolves with the raw RESP reply. */
  command(index: number, ...args: string[]): Promise<string>;
  /** Kill every node and remove their directories. Idempotent; safe after a failed test. */
  stop(): Promise<void>;
  /** Same as {@link RedisTestCluster.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Start a 3-primary, 3-replica Redis Cluster on loopback and wait until every
 * node reports `cluster_state:ok`, all 16384 slots are served and every
 * replica is in sync with its primary.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisTestCluster> {
  const primaries = options.primaries ?? 3;
  const replicasPerPrimary = options.replicasPerPrimary ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const { tls } = options;
  const reach = tls === undefined ? {} : { tls };
  const count = primaries * (1 + replicasPerPrimary);
  // Long enough for an election and a full resync on a busy 2-core machine.
  const settleMs = Math.max(30_000, 20 * nodeTimeoutMs);

  const topology = new ClusterTopology(reach, primaries, count);
  const { servers, down, roles, ids } = topology;
  const busPorts: number[] = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const results = await Promise.allSettled(servers.map((s) => s.stop()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  };

  const send = (index: number, args: readonly string[]): Promise<string> => topology.send(index, args);
  const checkHealthy = (expect?: { primary: number; replica?: number }): Promise<void> => topology.checkHealthy(expect);
  const refresh = (): Promise<void> => topology.refresh();
  const replicasOf = (index: number): Promise<number[]> => topology.replicasOf(index);

  try {
    for (let i = 0; i < count; i++) {
      const busPort = await freePort();
      busPorts.push(busPort);
      servers.push(
        await startRedisServer({
          ...(tls === undefined ? {} : { tls }),
          extraArgs: [
            '--cluster-enabled',
            'yes',
            // Relative to --dir: the server's own directory, so a restart keeps its identity.
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            String(nodeTimeoutMs),
            '--cluster-port',
            String(busPort),
            '--cluster-announce-ip',
            '127.0.0.1',
            // Any replica may take over however long its link was down: failovers in tests are
            // about the client and the data, not Redis' eligibility rules.
            '--cluster-replica-validity-factor',
            '0',
            // A replica that (re)joins syncs at once instead of after the default 5 s.
            '--repl-diskless-sync-delay',
            '0',
            ...(tls === undefined ? [] : ['--tls-cluster', 'yes', '--tls-replication', 'yes']),
          ],
        }),
      );
    }
    const cliTls = tls === undefined ? [] : ['--tls', '--cacert', tls.ca, '--cert', tls.cert, '--key', tls.key];
    try {
      await run(
        process.env.REDIS_CLI_BIN ?? 'redis-cli',
        [
          ...cliTls,
          '--cluster',
          'create',
          ...servers.map((s) => `127.0.0.1:${s.port}`),
          '--cluster-replicas',
          String(replicasPerPrimary),
          '--cluster-yes',
        ],
        { timeout: 60_000 },
      );
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
      if (e.code === 'ENOENT') throw new Error('redis-cli not found: install it with `apt-get install -y redis-tools`');
      throw new Error(`redis-cli --cluster create failed: ${e.stderr ?? ''} ${(e.stdout ?? '').slice(-500)}`, {
        cause: error,
      });
    }
    await eventually(checkHealthy, settleMs, 50);
    await eventually(
      async () => {
        await refresh();
        if (roles.filter((r) => r === 'primary').length !== primaries) throw new Error(`roles are ${roles.join(',')}`);
      },
      settleMs,
      50,
    );
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  const nodes: RedisClusterNode[] = servers.map((server, index) => ({
    index,
    port: server.port,
    busPort: busPorts[index] ?? 0,
    get id() {
      return ids[index] ?? '';
    },
    get pid() {
      return down.has(index) ? undefined : server.pid;
    },
    get role() {
      return roles[index] ?? 'down';
    },
  }));

  const mustBePrimary = async (index: number): Promise<number> => {
    if (stopped) throw new Error('the cluster is stopped');
    if (down.has(index)) throw new Error(`node ${index} is down`);
    await refresh();
    if (roles[index] !== 'primary') throw new Error(`node ${index} is a ${roles[index]}, not a primary`);
    const [replica] = await replicasOf(index);
    if (replica === undefined) throw new Error(`primary ${index} has no replica that is up`);
    return replica;
  };

  const cluster: RedisTestCluster = {
    nodes,
    startupNodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    url: `${tls === undefined ? 'redis' : 'rediss'}+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    tls,
    async primaryOf(key) {
      const [first] = topology.live();
      if (first === undefined) throw new Error('every node is down');
      const reply = await send(first, ['CLUSTER', 'KEYSLOT', key]);
      const slot = Number(/^:(\d+)/.exec(reply)?.[1] ?? Number.NaN);
      if (Number.isNaN(slot)) throw new Error(`CLUSTER KEYSLOT replied ${reply.trim()}`);
      const view = await topology.anyView();
      const owner = view.find(
        (n) =>
          n.flags.includes('master') && !n.flags.includes('fail') && n.slots.some(([a, b]) => slot >= a && slot <= b),
      );
      if (owner === undefined) throw new Error(`no live primary serves slot ${slot}`);
      return topology.indexOfPort(owner.port);
    },
    replicasOf,
    async failover(index, { how }) {
      const replica = await mustBePrimary(index);
      const began = Date.now();
      if (how === 'kill') {
        const pid = servers[index]?.pid;
        if (pid === undefined) throw new Error(`node ${index} has no process`);
        process.kill(pid, 'SIGKILL');
        down.add(index);
        roles[index] = 'down';
        await eventually(() => checkHealthy({ primary: replica }), settleMs, 50);
      } else {
        const reply = await send(replica, ['CLUSTER', 'FAILOVER']);
        if (!reply.startsWith('+OK')) throw new Error(`CLUSTER FAILOVER on node ${replica} replied ${reply.trim()}`);
        await eventually(() => checkHealthy({ primary: replica, replica: index }), settleMs, 50);
      }
      const ms = Date.now() - began;
      await refresh();
      return { how, oldPrimary: index, newPrimary: replica, ms };
    },
    async restartNode(index) {
      if (stopped) throw new Error('the cluster is stopped');
      const server = servers[index];
      if (server === undefined) throw new RangeError(`no cluster node ${index}`);
      if (!down.has(index)) throw new Error(`node ${index} is not down (restartNode brings back a killed node)`);
      await server.restart();
      down.delete(index);
      await eventually(
        async () => {
          const view = await topology.viewOf(index);
          const me = view.find((n) => n.flags.includes('myself'));
          if (me === undefined || !me.flags.includes('slave'))
            throw new Error(`node ${index} has not become a replica yet`);
          const primary = topology.indexOfId(me.primaryId);
          if (primary === -1) throw new Error(`node ${index} replicates an unknown node ${me.primaryId}`);
          await checkHealthy({ primary, replica: index });
        },
        settleMs,
        50,
      );
      await refresh();
    },
    refresh,
    command: (index, ...args) => send(index, args),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  return cluster;
}
