/**
 * The chaos cluster of the network backends: a real `redis-server` or `etcd`
 * on loopback, and replica child processes (test/support/replica-main.ts),
 * each connected through its own {@link TcpProxy} so that a cut hits exactly
 * one replica. Replicas append ownership records to files, with times on
 * CLOCK_MONOTONIC, which every process of the machine shares.
 *
 * Events: `stop` is SIGTERM (graceful), `kill` is SIGKILL, `pause`/`resume`
 * are SIGSTOP/SIGCONT, `cut`/`heal` cut (reset) or stall (black hole) the
 * replica's proxy, `restart-backend` kills the server and starts it again on
 * the same port: Redis comes back empty (data loss) unless asked to keep its
 * data, etcd comes back on its data dir.
 *
 * @module
 */

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDiscovery, type Discovery, sleep } from '@shardwork/core';
import { monotonicMs, type OwnershipRecord, readOwnershipRecords } from '@shardwork/core/testing';
import { type EtcdCluster, type RedisTestServer, startEtcd, startRedisServer, TcpProxy } from '@shardwork/testkit';
import { killAll, Replica, type ReplicaSpec } from '../support/cluster.js';
import type { ChaosCluster } from './runner.js';
import type { ChaosEvent } from './schedule.js';

interface Slot {
  readonly proxy: TcpProxy;
  replica: Replica | undefined;
  healthy: boolean;
  generation: number;
}

/** Options of {@link ProcessCluster}. */
export interface ProcessClusterOptions {
  readonly backend: 'redis' | 'etcd';
  readonly replicas?: number;
  readonly shards?: number;
  readonly ttlMs?: number;
  /** Ms between recorded effects per owned shard. @defaultValue 20 */
  readonly effectIntervalMs?: number;
  /**
   * What a Redis restart does to the data: `lose` (no persistence: every
   * member, claim and the group are gone) or `keep` (`SAVE`, then the restarted
   * server loads it, as a persistent Redis would). etcd always keeps its data.
   * @defaultValue 'lose'
   */
  readonly redisRestart?: 'lose' | 'keep';
}

/** Replica processes behind proxies on a real backend server. */
export class ProcessCluster implements ChaosCluster {
  readonly backend: 'redis' | 'etcd';
  readonly service = `chaos-${process.pid}-${Date.now().toString(36)}`;
  readonly shardCount: number;
  readonly replicas: number;
  readonly #ttlMs: number;
  readonly #effectMs: number;
  readonly #redisRestart: 'lose' | 'keep';
  readonly #dir = mkdtempSync(join(tmpdir(), 'shardwork-chaos-'));
  #redis: RedisTestServer | undefined;
  #etcd: EtcdCluster | undefined;
  #serverPort = 0;
  readonly #slots: Slot[] = [];
  readonly #all: Replica[] = [];
  #observer: Discovery | undefined;
  #tornDown = false;

  constructor(options: ProcessClusterOptions) {
    this.backend = options.backend;
    this.replicas = options.replicas ?? 6;
    this.shardCount = options.shards ?? 24;
    this.#ttlMs = options.ttlMs ?? 1500;
    this.#effectMs = options.effectIntervalMs ?? 20;
    this.#redisRestart = options.redisRestart ?? 'lose';
  }

  get observer(): Discovery {
    if (this.#observer === undefined) throw new Error('setup() first');
    return this.#observer;
  }

  /** Directory of the record files (kept when the CLI is asked to). */
  get recordDir(): string {
    return this.#dir;
  }

  now(): number {
    return monotonicMs();
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  async drive<T>(promise: Promise<T>, maxMs: number): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not settled within ${maxMs} ms`)), maxMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async setup(): Promise<void> {
    let url: string;
    if (this.backend === 'redis') {
      this.#redis = await startRedisServer();
      this.#serverPort = this.#redis.port;
      url = this.#redis.url;
    } else {
      this.#etcd = await startEtcd();
      const endpoint = this.#etcd.endpoints[0] as string;
      this.#serverPort = Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
      url = this.#etcd.url;
    }
    this.#observer = await createDiscovery(url);
    for (let i = 0; i < this.replicas; i++) {
      const proxy = await TcpProxy.start({ host: '127.0.0.1', port: this.#serverPort });
      this.#slots.push({ proxy, replica: undefined, healthy: false, generation: 0 });
    }
    // Boot all at once: six tsx start-ups on two cores take a while.
    const booting = this.#slots.map((slot) => {
      const replica = Replica.spawn(this.#spec(slot));
      this.#all.push(replica);
      slot.replica = replica;
      return replica;
    });
    await Promise.all(booting.map((r) => r.ready(60_000)));
    for (const slot of this.#slots) slot.healthy = true;
  }

  async apply(event: ChaosEvent): Promise<void> {
    if (event.kind === 'restart-backend') {
      if (this.#redis !== undefined) {
        await this.#redis.restart({ downMs: event.downMs, keepData: this.#redisRestart === 'keep' });
      } else if (this.#etcd !== undefined) {
        await this.#etcd.kill(0, 'SIGKILL');
        await sleep(event.downMs);
        await this.#etcd.start(0);
      }
      return;
    }
    const slot = this.#slots[event.replica] as Slot;
    const replica = slot.replica;
    switch (event.kind) {
      case 'start': {
        const fresh = Replica.spawn(this.#spec(slot));
        this.#all.push(fresh);
        slot.replica = fresh;
        await fresh.ready(60_000);
        slot.healthy = true;
        return;
      }
      case 'stop':
        slot.healthy = false;
        await replica?.stop(20_000);
        return;
      case 'kill':
        slot.healthy = false;
        await replica?.kill();
        return;
      case 'pause':
        slot.healthy = false;
        replica?.signal('SIGSTOP');
        return;
      case 'resume':
        replica?.signal('SIGCONT');
        slot.healthy = true;
        return;
      case 'cut':
        slot.healthy = false;
        if (event.mode === 'reset') slot.proxy.cut();
        else slot.proxy.stall();
        return;
      case 'heal':
        slot.proxy.heal();
        slot.healthy = true;
        return;
      default: {
        const never: never = event;
        throw new Error(`unexpected event ${JSON.stringify(never)}`);
      }
    }
  }

  excluded(): ReadonlySet<string> {
    const healthy = new Set(this.#slots.filter((s) => s.healthy).map((s) => s.replica));
    const ids = new Set<string>();
    for (const replica of this.#all) if (!healthy.has(replica)) for (const id of replica.instances) ids.add(id);
    return ids;
  }

  records(): OwnershipRecord[] {
    const records: OwnershipRecord[] = [];
    for (const name of readdirSync(this.#dir)) {
      if (name.endsWith('.jsonl')) records.push(...readOwnershipRecords(join(this.#dir, name)));
    }
    return records;
  }

  /** Log lines of every replica, for failure reports. */
  logs(): string {
    return this.#all
      .map((r, i) => `--- replica process ${i} (pid ${r.pid})\n${r.log.slice(-30).join('\n')}`)
      .join('\n');
  }

  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    await killAll(this.#all);
    await Promise.all(this.#slots.map((s) => s.proxy.close()));
    await this.#observer?.close().catch(() => undefined);
    await this.#redis?.stop();
    await this.#etcd?.stop();
  }

  /** Remove the record files (read after teardown, so not part of it). */
  dispose(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #spec(slot: Slot): ReplicaSpec {
    const index = this.#slots.indexOf(slot);
    slot.generation += 1;
    return {
      discovery: `${this.backend}://127.0.0.1:${slot.proxy.port}`,
      service: this.service,
      shards: this.shardCount,
      leaseTtlMs: this.#ttlMs,
      recordFile: join(this.#dir, `r${index}-${slot.generation}.jsonl`),
      effectIntervalMs: this.#effectMs,
    };
  }
}
