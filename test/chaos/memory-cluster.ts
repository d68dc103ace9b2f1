/**
 * The memory backend's chaos cluster. The memory store lives inside one
 * process, so child processes cannot share it: here the replicas are six
 * `Worker` instances in this process, each with its own connection to one
 * `MemoryStore`, and time is virtual (virtual-time.ts), so a 60 s schedule runs
 * in seconds and a seed replays exactly.
 *
 * How the schedule's events map in-process — kill -9 and SIGSTOP do not exist
 * for an object in our own process:
 * - `stop`: `worker.stop()`.
 * - `start`: a new `Worker` with a new connection in the slot.
 * - `kill`: the connection is cut for good and the worker abandoned. It keeps
 *   running as a partitioned zombie that self-fences; to the rest of the
 *   cluster that is a crash (its lease expires on the store).
 * - `pause`: NOT a process freeze. The connection stalls (calls and
 *   notifications are held, then delivered on `resume`), like a replica whose
 *   packets sit in a queue; its own timers keep running, so it self-fences on
 *   time, which a frozen process cannot do (the process backends cover that).
 * - `cut`: `reset` mode makes every call fail at once (`setAvailable(false)`),
 *   `blackhole` mode stalls the connection as `pause` does.
 * - `restart-backend`: every call fails for `downMs`, then `store.reset()`
 *   (all data lost, as with a Redis restart) and connections see a `reset`.
 *
 * @module
 */

import {
  type ClaimRef,
  type DiscoveryListener,
  DiscoveryUnavailableError,
  type EnsureGroupOptions,
  type GroupSettings,
  type MemberInfo,
  MemoryDiscovery,
  MemoryStore,
  type ShardContext,
  sleep,
  Worker,
} from '@shardwork/core';
import type { OwnershipRecord } from '@shardwork/core/testing';
import type { ChaosCluster } from './runner.js';
import type { ChaosEvent } from './schedule.js';
import { VirtualTime } from './virtual-time.js';

/** Shared flag: the simulated backend server is down. */
interface BackendState {
  down: boolean;
}

/** A memory connection with the faults a TCP link has: stall (black hole) and server down. */
class ChaosConnection extends MemoryDiscovery {
  readonly #backend: BackendState;
  /** Callers waiting for the stall to end; `undefined` when not stalled. */
  #stalled: (() => void)[] | undefined;
  #available = true;
  readonly #listeners = new Set<DiscoveryListener>();

  constructor(store: MemoryStore, backend: BackendState, latencyMs: number) {
    super({ store, latencyMs });
    this.#backend = backend;
  }

  /** Hold every request, reply and notification until {@link unstall}. */
  stall(): void {
    this.#stalled ??= [];
  }

  unstall(): void {
    const waiting = this.#stalled ?? [];
    this.#stalled = undefined;
    for (const resume of waiting) resume();
  }

  override setAvailable(available: boolean): void {
    this.#available = available;
    super.setAvailable(available);
  }

  /** The server came back: tell watchers to re-list, as a reconnecting client would. */
  backendRestarted(): void {
    if (!this.#available) return;
    for (const listener of this.#listeners) listener({ type: 'reset' });
  }

  #gate(): Promise<void> {
    const stalled = this.#stalled;
    return stalled === undefined ? Promise.resolve() : new Promise((resolve) => stalled.push(resolve));
  }

  async #through<T>(op: () => Promise<T>): Promise<T> {
    await this.#gate();
    if (this.#backend.down) throw new DiscoveryUnavailableError('memory', 'backend down (restarting)');
    const result = await op();
    await this.#gate();
    return result;
  }

  override ensureGroup(service: string, group: GroupSettings, options?: EnsureGroupOptions) {
    return this.#through(() => super.ensureGroup(service, group, options));
  }
  override register(service: string, member: MemberInfo, ttlMs: number) {
    return this.#through(() => super.register(service, member, ttlMs));
  }
  override renew(service: string, memberId: string, held?: readonly ClaimRef[]) {
    return this.#through(() => super.renew(service, memberId, held));
  }
  override forgetService(service: string) {
    return this.#through(() => super.forgetService(service));
  }
  override unregister(service: string, memberId: string) {
    return this.#through(() => super.unregister(service, memberId));
  }
  override snapshot(service: string) {
    return this.#through(() => super.snapshot(service));
  }
  override claimMany(service: string, memberId: string, shards: readonly number[]) {
    return this.#through(() => super.claimMany(service, memberId, shards));
  }
  override releaseMany(service: string, memberId: string, claims: readonly ClaimRef[]) {
    return this.#through(() => super.releaseMany(service, memberId, claims));
  }
  override drain(service: string, memberId: string) {
    return this.#through(() => super.drain(service, memberId));
  }
  override version(service: string) {
    return this.#through(() => super.version(service));
  }

  override watch(service: string, listener: DiscoveryListener): () => void {
    const held: DiscoveryListener = (event) => {
      if (this.#stalled === undefined) listener(event);
      else void this.#gate().then(() => listener(event));
    };
    this.#listeners.add(held);
    const unwatch = super.watch(service, held);
    return () => {
      this.#listeners.delete(held);
      unwatch();
    };
  }
}

interface Slot {
  worker: Worker | undefined;
  conn: ChaosConnection | undefined;
  /** Member ids of the current worker. */
  instances: string[];
  healthy: boolean;
}

/** Options of {@link MemoryCluster}. */
export interface MemoryClusterOptions {
  readonly replicas?: number;
  readonly shards?: number;
  readonly ttlMs?: number;
  /** Ms between recorded effects per owned shard. @defaultValue 20 */
  readonly effectIntervalMs?: number;
  /** Simulated round trip per call. @defaultValue 1 */
  readonly latencyMs?: number;
  /** Trace lease and shard events of every worker (virtual ms, slot, event). */
  readonly trace?: (line: string) => void;
}

/** In-process replicas on one memory store, under virtual time. */
export class MemoryCluster implements ChaosCluster {
  readonly backend = 'memory' as const;
  readonly service = 'chaos';
  readonly shardCount: number;
  readonly replicas: number;
  readonly #ttlMs: number;
  readonly #effectMs: number;
  readonly #latencyMs: number;
  readonly #time = new VirtualTime();
  readonly #store = new MemoryStore();
  readonly #backendState: BackendState = { down: false };
  readonly #connections = new Set<ChaosConnection>();
  readonly #slots: Slot[] = [];
  /** Every worker ever started, with its member ids (killed ones keep running as zombies). */
  readonly #workers: { worker: Worker; instances: string[] }[] = [];
  readonly #records: OwnershipRecord[] = [];
  #lastStamp = Number.NEGATIVE_INFINITY;
  readonly observer: ChaosConnection;
  #tornDown = false;
  readonly #trace: ((line: string) => void) | undefined;

  constructor(options: MemoryClusterOptions = {}) {
    this.#trace = options.trace;
    this.replicas = options.replicas ?? 6;
    this.shardCount = options.shards ?? 24;
    this.#ttlMs = options.ttlMs ?? 1500;
    this.#effectMs = options.effectIntervalMs ?? 20;
    this.#latencyMs = options.latencyMs ?? 1;
    this.observer = this.#connect();
  }

  now(): number {
    return performance.now();
  }

  sleep(ms: number): Promise<void> {
    return this.#time.advance(ms);
  }

  drive<T>(promise: Promise<T>, maxMs: number): Promise<T> {
    return this.#time.drive(promise, maxMs);
  }

  async setup(): Promise<void> {
    this.#time.install();
    for (let i = 0; i < this.replicas; i++)
      this.#slots.push({ worker: undefined, conn: undefined, instances: [], healthy: false });
    await this.drive(Promise.all(this.#slots.map((_, i) => this.#start(i))), 30_000);
  }

  async apply(event: ChaosEvent): Promise<void> {
    if (event.kind === 'restart-backend') {
      this.#backendState.down = true;
      await new Promise((resolve) => setTimeout(resolve, event.downMs));
      this.#store.reset();
      this.#backendState.down = false;
      for (const conn of this.#connections) conn.backendRestarted();
      return;
    }
    const slot = this.#slots[event.replica] as Slot;
    switch (event.kind) {
      case 'start':
        await this.#start(event.replica);
        return;
      case 'stop':
        slot.healthy = false;
        await slot.worker?.stop();
        slot.worker = undefined;
        return;
      case 'kill':
        // Cut for good and abandoned: a crash as far as the cluster can tell.
        slot.healthy = false;
        slot.conn?.setAvailable(false);
        slot.worker = undefined;
        return;
      case 'pause':
        slot.healthy = false;
        slot.conn?.stall();
        return;
      case 'resume':
        slot.conn?.unstall();
        slot.healthy = true;
        return;
      case 'cut':
        slot.healthy = false;
        if (event.mode === 'reset') slot.conn?.setAvailable(false);
        else slot.conn?.stall();
        return;
      case 'heal':
        slot.conn?.setAvailable(true);
        slot.conn?.unstall();
        slot.healthy = true;
        return;
      default: {
        const never: never = event;
        throw new Error(`unexpected event ${JSON.stringify(never)}`);
      }
    }
  }

  excluded(): ReadonlySet<string> {
    const healthy = new Set(this.#slots.filter((s) => s.healthy && s.worker !== undefined).map((s) => s.worker));
    const ids = new Set<string>();
    for (const { worker, instances } of this.#workers)
      if (!healthy.has(worker)) for (const id of instances) ids.add(id);
    return ids;
  }

  records(): OwnershipRecord[] {
    return this.#records;
  }

  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    try {
      await this.drive(Promise.all(this.#workers.map(({ worker }) => worker.stop())), 60_000);
    } finally {
      this.#time.uninstall();
    }
  }

  #connect(): ChaosConnection {
    const conn = new ChaosConnection(this.#store, this.#backendState, this.#latencyMs);
    this.#connections.add(conn);
    return conn;
  }

  async #start(index: number): Promise<void> {
    const slot = this.#slots[index] as Slot;
    const conn = this.#connect();
    const instances: string[] = [];
    const worker = new Worker({
      service: this.service,
      shards: this.shardCount,
      discovery: conn,
      leaseTtlMs: this.#ttlMs,
      revokeTimeoutMs: 5000,
      resyncIntervalMs: 2000,
      startTimeoutMs: 60_000,
      handler: this.#recordingHandler(),
    });
    // Zombies and restarts report unreachable backends all the time; that is the point.
    worker.on('error', () => undefined);
    worker.on('lease:registered', ({ instance }) => instances.push(instance));
    const trace = this.#trace;
    if (trace !== undefined) {
      const tag = `r${index}.${this.#workers.length}`;
      const at = (): string => `${(performance.now() / 1000).toFixed(3)}s ${tag}`;
      worker.on('lease:registered', ({ instance, joinSeq }) => trace(`${at()} registered ${instance} #${joinSeq}`));
      worker.on('lease:lost', ({ instance, error }) => trace(`${at()} lost ${instance}: ${error.message}`));
      worker.on('shard:acquired', ({ shard, token }) => trace(`${at()} acquired ${shard} t${token}`));
      worker.on('shard:revoked', ({ shard, token, reason }) => trace(`${at()} revoked ${shard} t${token} (${reason})`));
      worker.on('error', ({ error }) =>
        trace(`${at()} error ${error instanceof Error ? error.message : String(error)}`),
      );
    }
    this.#workers.push({ worker, instances });
    slot.worker = worker;
    slot.conn = conn;
    slot.instances = instances;
    await worker.start();
    slot.healthy = true;
  }

  /**
   * Single-threaded virtual time gives many records the same ms; nudging each
   * stamp a nanosecond past the previous one keeps their true order, so an
   * owner's last effect and its successor's first never tie.
   */
  #stamp(): number {
    this.#lastStamp = Math.max(performance.now(), this.#lastStamp + 1e-6);
    return this.#lastStamp;
  }

  #recordingHandler(): { do(ctx: ShardContext): Promise<void> } {
    const records = this.#records;
    const stamp = () => this.#stamp();
    const effectMs = this.#effectMs;
    return {
      async do(ctx: ShardContext) {
        const base = { shard: ctx.shard, token: ctx.token, owner: ctx.instance };
        // Like replica-main.ts: an `acquire` is evidence of owning, so only after the check.
        if (ctx.owned) records.push({ kind: 'acquire', ...base, t: stamp() });
        try {
          while (!ctx.signal.aborted) {
            // The effect is recorded right after the synchronous check, with no await between.
            if (ctx.owned) records.push({ kind: 'effect', ...base, t: stamp() });
            await sleep(effectMs, ctx.signal).catch(() => undefined);
          }
        } finally {
          records.push({ kind: 'release', ...base, t: stamp() });
        }
      },
    };
  }
}
