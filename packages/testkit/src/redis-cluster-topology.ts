/**
 * What the harness knows of a test Redis Cluster's topology: its nodes, which
 * are down, their roles and ids as last read, and the checks that the
 * cluster agrees on who serves which slots.
 *
 * @module
 */

import { bulk, info, type NodeLine, parseNodes, SLOTS } from './redis-cluster-replies.js';
import { type RedisCommandOptions, type RedisTestServer, redisCommand } from './redis-server.js';

/** Role of a node as the harness last saw it. */
export type RedisClusterRole = 'primary' | 'replica' | 'down';

/** The nodes of one test cluster and the harness's view of them, by node index. */
export class ClusterTopology {
  /** The nodes' servers, in index order (filled while the cluster starts). */
  readonly servers: RedisTestServer[] = [];
  /** Indexes of the nodes the harness killed and has not restarted. */
  readonly down = new Set<number>();
  /** Roles as last read by {@link ClusterTopology.refresh}, or `down`. */
  readonly roles: RedisClusterRole[] = [];
  /** Cluster ids as last read by {@link ClusterTopology.refresh}. */
  readonly ids: string[] = [];
  readonly #reach: RedisCommandOptions;
  readonly #primaries: number;
  readonly #count: number;

  /**
   * @param reach - how to reach a node (TLS).
   * @param primaries - primaries the cluster has.
   * @param count - nodes the cluster has, primaries and replicas.
   */
  constructor(reach: RedisCommandOptions, primaries: number, count: number) {
    this.#reach = reach;
    this.#primaries = primaries;
    this.#count = count;
  }

  /** Send one command to the node at `index`; resolves with the raw RESP reply. */
  send(index: number, args: readonly string[], timeoutMs = 2000): Promise<string> {
    const server = this.servers[index];
    if (server === undefined) throw new RangeError(`no cluster node ${index}`);
    return redisCommand(server.port, args, timeoutMs, this.#reach);
  }

  /** Index of the node on `port`, or -1. */
  indexOfPort(port: number): number {
    return this.servers.findIndex((s) => s.port === port);
  }

  /** Index of the node with cluster id `id`, or -1. */
  indexOfId(id: string): number {
    return this.ids.indexOf(id);
  }

  /** Indexes of the nodes that are not down. */
  live(): number[] {
    return this.servers.map((_, i) => i).filter((i) => !this.down.has(i));
  }

  /** `CLUSTER NODES` as the node at `index` sees it. */
  async viewOf(index: number): Promise<NodeLine[]> {
    return parseNodes(bulk(await this.send(index, ['CLUSTER', 'NODES'])));
  }

  /** `CLUSTER NODES` as the first live node that answers sees it. */
  async anyView(): Promise<NodeLine[]> {
    let last: unknown;
    for (const i of this.live()) {
      try {
        return await this.viewOf(i);
      } catch (error) {
        last = error;
      }
    }
    throw new Error('no cluster node answers CLUSTER NODES', { cause: last });
  }

  /** Throw (for `eventually`) unless every live node is ok, serves all slots and agrees on who serves them. */
  async checkHealthy(expect?: { primary: number; replica?: number }): Promise<void> {
    const { servers, down } = this;
    const count = this.#count;
    let agreed: string | undefined;
    for (const i of this.live()) {
      const clusterInfo = bulk(await this.send(i, ['CLUSTER', 'INFO']));
      const state = info(clusterInfo, 'cluster_state');
      const ok = info(clusterInfo, 'cluster_slots_ok');
      if (state !== 'ok' || ok !== String(SLOTS)) {
        throw new Error(`node ${i} (port ${servers[i]?.port}): cluster_state:${state}, cluster_slots_ok:${ok}`);
      }
      const view = await this.viewOf(i);
      const owners = view
        .filter((n) => n.slots.length > 0)
        .map((n) => `${n.port}:${n.slots.map(([a, b]) => `${a}-${b}`).join(',')}`)
        .sort()
        .join(' ');
      if (agreed !== undefined && owners !== agreed)
        throw new Error(`node ${i} sees slots as ${owners}, not ${agreed}`);
      agreed = owners;
      for (const n of view) {
        const at = this.indexOfPort(n.port);
        if (at === -1) throw new Error(`node ${i} knows a node on port ${n.port} that is not ours`);
        if (!down.has(at) && (n.flags.includes('fail') || n.flags.includes('fail?') || !n.connected)) {
          throw new Error(`node ${i} sees node ${at} (port ${n.port}) as ${n.flags.join(',')}`);
        }
      }
      if (view.length !== count) throw new Error(`node ${i} knows ${view.length} nodes, not ${count}`);
      const serving = view.filter((n) => n.flags.includes('master') && n.slots.length > 0);
      const following = view.filter(
        (n) =>
          n.flags.includes('slave') && !down.has(this.indexOfPort(n.port)) && serving.some((m) => m.id === n.primaryId),
      );
      if (serving.length !== this.#primaries || following.length !== count - this.#primaries - down.size) {
        throw new Error(
          `node ${i} sees ${serving.length} primaries with slots and ${following.length} replicas of them`,
        );
      }
      if (expect !== undefined) {
        const primary = view.find((n) => n.port === servers[expect.primary]?.port);
        if (primary === undefined || !primary.flags.includes('master') || primary.slots.length === 0) {
          throw new Error(`node ${i} does not yet see node ${expect.primary} as a primary with slots`);
        }
        if (expect.replica !== undefined) {
          const replica = view.find((n) => n.port === servers[expect.replica as number]?.port);
          if (replica === undefined || !replica.flags.includes('slave') || replica.primaryId !== primary.id) {
            throw new Error(`node ${i} does not yet see node ${expect.replica} as a replica of node ${expect.primary}`);
          }
        }
      }
      const replication = bulk(await this.send(i, ['INFO', 'replication']));
      if (info(replication, 'role') === 'slave' && info(replication, 'master_link_status') !== 'up') {
        throw new Error(
          `replica ${i} (port ${servers[i]?.port}): master_link_status:${info(replication, 'master_link_status')}`,
        );
      }
    }
  }

  /** Read the roles and ids again from the cluster (`CLUSTER NODES` on a live node). */
  async refresh(): Promise<void> {
    const view = await this.anyView();
    for (const n of view) {
      const i = this.indexOfPort(n.port);
      if (i === -1) continue;
      this.ids[i] = n.id;
      this.roles[i] = this.down.has(i) ? 'down' : n.flags.includes('master') ? 'primary' : 'replica';
    }
  }

  /** Indexes of the replicas of the primary at `index` that are up. */
  async replicasOf(index: number): Promise<number[]> {
    const view = await this.anyView();
    const id = this.ids[index];
    return view
      .filter((n) => n.primaryId === id && n.flags.includes('slave'))
      .map((n) => this.indexOfPort(n.port))
      .filter((i) => i !== -1 && !this.down.has(i));
  }
}
