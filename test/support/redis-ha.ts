/**
 * Failover runs of shardwork on a replicated Redis: the same code drives a
 * Redis Cluster ({@link startRedisCluster}) and a Sentinel setup
 * ({@link startRedisSentinel}) through {@link HaSetup}. Used by
 * test/redis-ha.test.ts and bench/redis-failover-loss.ts.
 *
 * - {@link measureLoss}: a producer enqueues as fast as it can, the primary
 *   of its queue is killed (optionally while its replica lags), and the
 *   acknowledged jobs that are gone after the failover are counted.
 * - {@link HaJobRun}: consumer processes and a producer on several queues,
 *   and a check that no acknowledged job was lost.
 * - {@link discoveryRecovery}: from the ownership records of replica
 *   processes, how long each shard stood still around a failover.
 *
 * ```ts
 * const setup = clusterSetup(await startRedisCluster());
 * const run = await measureLoss(setup, { syncReplicas: 1, stall: true });
 * expect(run.lost).toBe(0);
 * await setup.stop();
 * ```
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monotonicMs, readOwnershipRecords, uniqueService } from '@shardwork/core/testing';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RedisTestCluster, type RedisTestSentinel, sleep } from '@shardwork/testkit';
import { Cluster, Redis } from 'ioredis';
import { type AcceptedJob, analyzeRecords, FaultLog, JobReplica, readRecords } from './job-faults.js';
import type { JobRecordLine } from './job-replica-main.js';

/** A data node as {@link HaSetup} reports it. */
export interface HaNode {
  readonly port: number;
  readonly pid: number;
  /** Send one command to this node; resolves with the raw RESP reply. */
  command(...args: string[]): Promise<string>;
}

/** A replicated Redis under test, Cluster or Sentinel, behind one interface. */
export interface HaSetup {
  /** `'Cluster'` or `'Sentinel'`, for titles and tables. */
  readonly kind: 'Cluster' | 'Sentinel';
  /** The discovery and job URL without a query: `redis+cluster://…` or `redis+sentinel://…/mymaster`. */
  readonly url: string;
  /** The primary that serves `key` now. */
  primaryOf(key: string): Promise<HaNode>;
  /** The replica of that primary. */
  replicaOf(key: string): Promise<HaNode>;
  /**
   * A name whose hash tag `{name}` lives on a primary that `accept` (given
   * the primary's port) agrees to; `keyOf` builds the key from the name. On
   * Sentinel every name is on the one primary. With `pausable`, on a
   * Cluster, the primary's replica is not the node the harness asks first
   * about the topology, so that a kill does not wait for a paused replica.
   */
  nameOn(
    tag: string,
    keyOf: (name: string) => string,
    accept?: (port: number) => boolean,
    options?: { readonly pausable?: boolean },
  ): Promise<string>;
  /** kill -9 the primary serving `key` and resolve once its replica has taken over. */
  killPrimary(key: string): Promise<{ readonly ms: number }>;
  /** Start the killed node again (empty) and resolve once it is a replica in sync: redundancy is back. */
  restore(): Promise<{ readonly ms: number }>;
  /** A plain ioredis client (Cluster or Sentinel) for checks; closed by {@link HaSetup.stop}. */
  readonly client: Cluster | Redis;
  /** Close the client and stop every Redis process. */
  stop(): Promise<void>;
}

function ownClient<T extends Cluster | Redis>(client: T): T {
  client.on('error', () => undefined);
  return client;
}

/** {@link HaSetup} over a test Redis Cluster. */
export function clusterSetup(cluster: RedisTestCluster): HaSetup {
  const node = (index: number): HaNode => {
    const n = cluster.nodes[index];
    if (n?.pid === undefined) throw new Error(`cluster node ${index} is down`);
    return { port: n.port, pid: n.pid, command: (...args) => cluster.command(index, ...args) };
  };
  const replicaIndex = async (key: string): Promise<number> => {
    const [replica] = await cluster.replicasOf(await cluster.primaryOf(key));
    if (replica === undefined) throw new Error(`the primary of ${key} has no replica that is up`);
    return replica;
  };
  let killed: number | undefined;
  const client = ownClient(new Cluster([...cluster.startupNodes]));
  return {
    kind: 'Cluster',
    url: cluster.url,
    primaryOf: async (key) => node(await cluster.primaryOf(key)),
    replicaOf: async (key) => node(await replicaIndex(key)),
    async nameOn(tag, keyOf, accept = () => true, options = {}) {
      for (let i = 0; i < 200; i++) {
        const name = uniqueService(tag);
        const primary = await cluster.primaryOf(keyOf(name));
        if (!accept(node(primary).port)) continue;
        if (options.pausable === true) {
          // The harness asks the first live node for the topology before a kill: if that node is the
          // victim's replica and a test has paused it (stall), every question would wait for a timeout.
          const firstLive = cluster.nodes.find((n) => n.pid !== undefined)?.index;
          const [replica] = await cluster.replicasOf(primary);
          if (replica === firstLive) continue;
        }
        return name;
      }
      throw new Error(`no name found for ${tag} on an acceptable primary`);
    },
    async killPrimary(key) {
      const index = await cluster.primaryOf(key);
      const { ms } = await cluster.failover(index, { how: 'kill' });
      killed = index;
      return { ms };
    },
    async restore() {
      if (killed === undefined) throw new Error('restore() without a killed primary');
      const began = Date.now();
      await cluster.restartNode(killed);
      killed = undefined;
      return { ms: Date.now() - began };
    },
    client,
    async stop() {
      client.disconnect();
      await cluster.stop();
    },
  };
}

/** {@link HaSetup} over a test Sentinel setup (one primary, one replica, three sentinels). */
export function sentinelSetup(setup: RedisTestSentinel): HaSetup {
  const byRole = (role: 'primary' | 'replica'): HaNode => {
    const n = setup.nodes.find((x) => x.role === role);
    if (n?.pid === undefined) throw new Error(`no ${role} is up`);
    return { port: n.port, pid: n.pid, command: (...args) => setup.command(n.port, ...args) };
  };
  const client = ownClient(new Redis({ sentinels: [...setup.sentinels], name: setup.name }));
  return {
    kind: 'Sentinel',
    url: setup.url,
    primaryOf: async () => byRole('primary'),
    replicaOf: async () => byRole('replica'),
    async nameOn(tag) {
      return uniqueService(tag);
    },
    async killPrimary() {
      const { ms } = await setup.failover({ how: 'kill' });
      return { ms };
    },
    async restore() {
      const began = Date.now();
      await setup.restartOld();
      return { ms: Date.now() - began };
    },
    client,
    async stop() {
      client.disconnect();
      await setup.stop();
    },
  };
}

/** Call `then` as soon as process `pid` has gone (polled every millisecond); returns a cancel function. */
function whenGone(pid: number, then: () => void): () => void {
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch {
      clearInterval(timer);
      then();
    }
  }, 1);
  return () => clearInterval(timer);
}

/** Bytes the primary holds for its replica and could not send yet (`omem` in `CLIENT LIST TYPE replica`). */
async function unsentBytes(primary: HaNode): Promise<number> {
  const reply = await primary.command('CLIENT', 'LIST', 'TYPE', 'replica');
  return Math.max(0, ...[...reply.matchAll(/omem=(\d+)/g)].map((m) => Number(m[1])));
}

/**
 * Which of `ids` have no live record in `queue` under `prefix`: none in its
 * jobs hash, or one kept after the job finished (`fin`, see keepCompleted).
 */
export async function missingJobs(
  client: Cluster | Redis,
  prefix: string,
  queue: string,
  ids: readonly string[],
): Promise<string[]> {
  const key = `${prefix}{${queue}}:jobs`;
  const fin = `${prefix}{${queue}}:fin`;
  const missing: string[] = [];
  for (let at = 0; at < ids.length; at += 5000) {
    const chunk = ids.slice(at, at + 5000);
    const pipeline = client.pipeline();
    for (const id of chunk) pipeline.hexists(key, id).hexists(fin, id);
    const replies = (await pipeline.exec()) ?? [];
    chunk.forEach((id, i) => {
      const [error, value] = replies[2 * i] ?? [new Error('no reply'), undefined];
      const [finError, kept] = replies[2 * i + 1] ?? [new Error('no reply'), undefined];
      if (error !== null) throw error;
      if (finError !== null) throw finError;
      if (value === 0 || kept === 1) missing.push(id);
    });
  }
  return missing;
}

/** Options of {@link measureLoss}. */
export interface LossOptions {
  /** `syncReplicas` of the producer's URL. */
  readonly syncReplicas: 0 | 1;
  /**
   * Pause the replica (SIGSTOP) before the kill until the primary holds
   * `stallBytes` of replication stream it cannot send (the socket buffers
   * are full), or `stallMaxMs` passed; resume it as soon as the primary is
   * dead. Models a replica that lags behind when the primary's host fails.
   * Without it the replica keeps up and the kill meets a healthy link.
   */
  readonly stall: boolean;
  /** @defaultValue 256 KiB */
  readonly stallBytes?: number;
  /** Below the Cluster harness's 1000 ms node timeout (and the sentinels' down-after), so that the paused replica is not failed itself. @defaultValue 800 */
  readonly stallMaxMs?: number;
  /** Performs in flight at once. @defaultValue 8 */
  readonly lanes?: number;
  /** Enqueueing before the fault. @defaultValue 1000 */
  readonly warmupMs?: number;
}

/** What one {@link measureLoss} run saw. */
export interface LossRun {
  readonly syncReplicas: number;
  readonly stall: boolean;
  /** Performs that resolved. */
  readonly acked: number;
  /** Performs that rejected (the queue reported the write as failed). */
  readonly failed: number;
  /** Acknowledged jobs absent after the failover. */
  readonly lost: number;
  /** Of those, acknowledged before the stall began (or before the kill without one): should be 0 always. */
  readonly lostBeforeFault: number;
  /** Performs acknowledged while the replica was paused. */
  readonly ackedWhileStalled: number;
  /** How long the replica was paused before the kill. */
  readonly stalledMs: number;
  /** Replication bytes the primary held unsent at the kill (0 without a stall). */
  readonly unsentAtKill: number;
  /** From the kill until the replica had taken over (the harness's measure). */
  readonly failoverMs: number;
}

/**
 * Enqueue jobs as fast as `lanes` performs in flight allow into a fresh queue
 * (own prefix) on `setup`, kill -9 the queue's primary (after a stall of its
 * replica if asked), keep enqueueing until the failover is over, then count
 * the acknowledged jobs whose record is gone. Restores the killed node before
 * it returns, so that runs can follow each other on one setup.
 */
export async function measureLoss(setup: HaSetup, options: LossOptions): Promise<LossRun> {
  const lanes = options.lanes ?? 8;
  const prefix = `loss${randomBytes(4).toString('hex')}:`;
  const queue = await setup.nameOn('lossq', (name) => `${prefix}{${name}}:jobs`, undefined, { pausable: true });
  const key = `${prefix}{${queue}}:jobs`;
  const producer = createJobQueue(`${setup.url}?syncReplicas=${options.syncReplicas}&prefix=${prefix}`, {
    adapter: { enqueueTimeoutMs: 2000, commandTimeoutMs: 1000, connectTimeoutMs: 1000 },
  });
  producer.on('error', () => undefined);
  const acked: { id: string; at: number }[] = [];
  let failed = 0;
  let producing = true;
  const work = Array.from({ length: lanes }, async (_, lane) => {
    for (let n = 0; producing; n++) {
      try {
        const { id } = await producer.perform({ handler: 'work', queue, args: { lane, n } });
        acked.push({ id, at: monotonicMs() });
      } catch {
        failed++;
      }
    }
  });
  let resume: (() => void) | undefined;
  try {
    await sleep(options.warmupMs ?? 1000);
    const primary = await setup.primaryOf(key);
    const replica = await setup.replicaOf(key);
    const faultAt = monotonicMs();
    let stalledMs = 0;
    let unsentAtKill = 0;
    let cancel = (): void => undefined;
    if (options.stall) {
      process.kill(replica.pid, 'SIGSTOP');
      resume = () => {
        resume = undefined;
        try {
          process.kill(replica.pid, 'SIGCONT');
        } catch {
          // already gone
        }
      };
      const limit = options.stallMaxMs ?? 800;
      while (monotonicMs() - faultAt < limit) {
        unsentAtKill = await unsentBytes(primary);
        if (unsentAtKill >= (options.stallBytes ?? 256 * 1024)) break;
        await sleep(10);
      }
      stalledMs = monotonicMs() - faultAt;
      cancel = whenGone(primary.pid, () => resume?.());
    }
    const ackedBefore = acked.filter((a) => a.at < faultAt).length;
    const ackedWhileStalled = options.stall ? acked.filter((a) => a.at >= faultAt).length : 0;
    let failoverMs: number;
    try {
      ({ ms: failoverMs } = await setup.killPrimary(key));
    } finally {
      cancel();
      resume?.();
    }
    await sleep(300);
    producing = false;
    await Promise.all(work);
    const missing = new Set(
      await missingJobs(
        setup.client,
        prefix,
        queue,
        acked.map((a) => a.id),
      ),
    );
    const lostBeforeFault = acked.slice(0, ackedBefore).filter((a) => missing.has(a.id)).length;
    await setup.restore();
    return {
      syncReplicas: options.syncReplicas,
      stall: options.stall,
      acked: acked.length,
      failed,
      lost: missing.size,
      lostBeforeFault,
      ackedWhileStalled,
      stalledMs: Math.round(stalledMs),
      unsentAtKill,
      failoverMs,
    };
  } finally {
    resume?.();
    producing = false;
    await Promise.all(work);
    await producer.stop({ timeoutMs: 0 }).catch(() => undefined);
  }
}

/** Options of {@link HaJobRun.start}. */
export interface HaJobRunOptions {
  /** The setup's URL with a query (`syncReplicas`, …) or without one. */
  readonly url: string;
  readonly queues: readonly string[];
  /** Consumer processes. @defaultValue 2 */
  readonly consumers?: number;
  /** @defaultValue 4 */
  readonly partitions?: number;
  /** @defaultValue 2500 */
  readonly leaseTtlMs?: number;
}

/** A job the producer of an {@link HaJobRun} had acknowledged. */
export interface HaAcceptedJob {
  readonly queue: string;
  /** Monotonic ms of the acknowledgement. */
  readonly at: number;
}

/** The outcome of {@link HaJobRun.check}. */
export interface HaJobReport {
  readonly accepted: number;
  /** Acknowledged jobs that never started anywhere and are no longer stored. */
  readonly lost: readonly string[];
  /** Acknowledged jobs still stored after the run settled (never completed). */
  readonly stuck: readonly string[];
  /** Jobs that started more than once. */
  readonly duplicates: number;
  /** The adapter-independent checks of job-faults.ts (stale completions). */
  readonly violations: readonly string[];
}

/**
 * Job consumer processes (test/support/job-replica-main.ts, handler `work`)
 * on one URL consuming several queues, and a producer in this process with
 * one lane of performs per queue.
 */
export class HaJobRun {
  readonly prefix: string;
  readonly queues: readonly string[];
  readonly consumers: JobReplica[] = [];
  readonly producer: JobQueue;
  /** Every acknowledged job by id. */
  readonly accepted = new Map<string, HaAcceptedJob>();
  /** Performs that rejected, by queue and monotonic time. */
  readonly rejected: HaAcceptedJob[] = [];
  /** Faults the test applied (the primary's kill): duplicates are allowed around them. */
  readonly faults = new FaultLog();
  readonly #dir: string;
  #producing: Promise<void>[] = [];
  #running = false;

  private constructor(url: string, prefix: string, queues: readonly string[]) {
    this.prefix = prefix;
    this.queues = queues;
    this.#dir = mkdtempSync(join(tmpdir(), 'shardwork-ha-jobs-'));
    this.producer = createJobQueue(url, {
      adapter: { enqueueTimeoutMs: 5000, commandTimeoutMs: 1000, connectTimeoutMs: 1000 },
    });
    this.producer.on('error', () => undefined);
  }

  /** Start the consumers (and wait until they are ready). */
  static async start(options: HaJobRunOptions): Promise<HaJobRun> {
    const prefix = `ha${randomBytes(4).toString('hex')}:`;
    const query = `prefix=${prefix}&partitions=${options.partitions ?? 4}&leaseTtlMs=${options.leaseTtlMs ?? 2500}`;
    const url = `${options.url}${options.url.includes('?') ? '&' : '?'}${query}`;
    const run = new HaJobRun(url, prefix, options.queues);
    for (let i = 0; i < (options.consumers ?? 2); i++) {
      run.consumers.push(
        new JobReplica({
          url,
          recordFile: join(run.#dir, `replica-${i}.jsonl`),
          concurrency: 8,
          handlers: ['work'],
          adapter: {
            queues: options.queues,
            revokeTimeoutMs: 2000,
            commandTimeoutMs: 1000,
            connectTimeoutMs: 1000,
            startTimeoutMs: 60_000,
          },
        }),
      );
    }
    try {
      await Promise.all(run.consumers.map((c) => c.ready));
    } catch (error) {
      await run.close();
      throw error;
    }
    return run;
  }

  /** Start one producer lane per queue, a perform every `gapMs` (failures are counted and skipped). */
  produce(gapMs = 20): void {
    this.#running = true;
    this.#producing = this.queues.map(async (queue) => {
      for (let n = 0; this.#running; n++) {
        try {
          const { id } = await this.producer.perform({ handler: 'work', queue, args: { n, ms: 5 } });
          this.accepted.set(id, { queue, at: monotonicMs() });
        } catch {
          this.rejected.push({ queue, at: monotonicMs() });
        }
        await sleep(gapMs);
      }
    });
  }

  /** Stop the producer lanes. */
  async stopProducing(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#producing);
  }

  /** Acknowledgements of `queue` between two monotonic times. */
  acceptedBetween(queue: string, from: number, to: number): number {
    return [...this.accepted.values()].filter((j) => j.queue === queue && j.at >= from && j.at <= to).length;
  }

  /** Every line the consumers recorded. */
  records(): JobRecordLine[] {
    return readRecords(this.#dir, this.consumers.length);
  }

  /** Acknowledged ids whose record is still stored, per queue. */
  async #stored(client: Cluster | Redis, ids: readonly string[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (const queue of this.queues) {
      const mine = ids.filter((id) => this.accepted.get(id)?.queue === queue);
      const missing = new Set(await missingJobs(client, this.prefix, queue, mine));
      for (const id of mine) if (!missing.has(id)) stored.add(id);
    }
    return stored;
  }

  /** Wait until no acknowledged job is stored without a recorded completion, or `withinMs` passed. */
  async settle(client: Cluster | Redis, withinMs: number): Promise<void> {
    const began = Date.now();
    for (;;) {
      const done = new Set(
        this.records()
          .filter((r) => r.k === 'done')
          .map((r) => r.id),
      );
      const open = [...this.accepted.keys()].filter((id) => !done.has(id));
      if ((await this.#stored(client, open)).size === 0 || Date.now() - began > withinMs) return;
      await sleep(250);
    }
  }

  /** Lost, stuck and duplicated jobs (see {@link HaJobReport}). */
  async check(client: Cluster | Redis): Promise<HaJobReport> {
    const records = this.records();
    const started = new Set(records.filter((r) => r.k === 'start').map((r) => r.id));
    const done = new Set(records.filter((r) => r.k === 'done').map((r) => r.id));
    const ids = [...this.accepted.keys()];
    const stored = await this.#stored(
      client,
      ids.filter((id) => !done.has(id)),
    );
    const accepted = new Map<string, AcceptedJob>(ids.map((id) => [id, { h: 'work' }]));
    const analysis = analyzeRecords(accepted, records, { fenced: true, faults: this.faults });
    return {
      accepted: ids.length,
      lost: ids.filter((id) => !started.has(id) && !stored.has(id)),
      stuck: [...stored],
      duplicates: analysis.duplicates,
      violations: analysis.violations,
    };
  }

  /** Stop consumers and producer, remove the record files. */
  async close(): Promise<void> {
    await this.stopProducing();
    await Promise.all(this.consumers.map((c) => c.stop()));
    await this.producer.stop({ timeoutMs: 0 }).catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** How the shards of a service fared around a fault, from the ownership records. */
export interface DiscoveryRecovery {
  /** The longest time any shard went without an effect, from the fault to the end. */
  readonly longestStallMs: number;
  /** From the fault until the last shard's longest stall ended: every shard owned and acting again. */
  readonly ownedAgainMs: number;
}

/**
 * Per shard, the longest gap between effects (counting from `from` to the
 * first one) in the record file between monotonic times `from` and `to`. A
 * shard whose longest gap is below `minGapMs` never stood still: it counts
 * as owned again at once.
 */
export function discoveryRecovery(
  file: string,
  shards: number,
  from: number,
  to: number,
  minGapMs = 250,
): DiscoveryRecovery {
  const records = readOwnershipRecords(file).filter((r) => r.kind === 'effect' && r.t > from && r.t <= to);
  let longestStallMs = 0;
  let ownedAgainMs = 0;
  for (let shard = 0; shard < shards; shard++) {
    const times = [from, ...records.filter((r) => r.shard === shard).map((r) => r.t), to].sort((a, b) => a - b);
    let gap = 0;
    let endOfGap = from;
    for (let i = 1; i < times.length; i++) {
      const d = (times[i] as number) - (times[i - 1] as number);
      if (d > gap) {
        gap = d;
        endOfGap = times[i] as number;
      }
    }
    longestStallMs = Math.max(longestStallMs, gap);
    if (gap >= minGapMs) ownedAgainMs = Math.max(ownedAgainMs, endOfGap - from);
  }
  return { longestStallMs: Math.round(longestStallMs), ownedAgainMs: Math.round(ownedAgainMs) };
}
