/**
 * Replicas for the latency trials, in two flavours behind one interface:
 * a child process with one worker against Redis or etcd (crash = kill -9), and
 * an in-process worker on a shared {@link MemoryStore} (crash = its connection
 * cut for good, since the memory backend lives inside one process). Both
 * report acquisitions, revocations and lease renewals into a {@link Ledger}
 * with times on the machine-wide monotonic clock.
 *
 * @module
 */

import { MemoryDiscovery, type MemoryStore, Worker } from '@shardwork/core';
import { type CallCounts, CountingDiscovery } from './counting-discovery.js';
import { HostProcess } from './host.js';
import { type HostConfig, type HostMessage, monotonicMs } from './protocol.js';

/** One acquisition of a shard. */
export interface Acquisition {
  readonly replica: string;
  readonly instance: string;
  readonly shard: number;
  readonly token: number;
  readonly t: number;
}

/** Everything the replicas of one experiment reported, in arrival order. */
export class Ledger {
  readonly acquisitions: Acquisition[] = [];
  readonly #owned = new Map<string, Set<number>>();
  readonly #lastRenewSent = new Map<string, number>();
  readonly #down = new Map<string, number>();
  readonly #waiters = new Set<() => void>();

  acquired(a: Acquisition): void {
    this.acquisitions.push(a);
    this.#set(a.replica).add(a.shard);
    this.#wake();
  }

  revoked(replica: string, shard: number): void {
    this.#set(replica).delete(shard);
    this.#wake();
  }

  renewed(replica: string, sentAt: number): void {
    this.#lastRenewSent.set(replica, Math.max(sentAt, this.#lastRenewSent.get(replica) ?? 0));
  }

  /** A replica's `stop()` finished (claims released, lease revoked). */
  down(replica: string, t: number): void {
    this.#down.set(replica, t);
    this.#wake();
  }

  /** When the replica's `stop()` finished, if it did. */
  downAt(replica: string): number | undefined {
    return this.#down.get(replica);
  }

  /** Shards a replica holds now, as far as its reports go. */
  owned(replica: string): ReadonlySet<number> {
    return this.#set(replica);
  }

  /** Send time of the replica's last successful renewal (or registration). */
  lastRenewSent(replica: string): number | undefined {
    return this.#lastRenewSent.get(replica);
  }

  #set(replica: string): Set<number> {
    let set = this.#owned.get(replica);
    if (set === undefined) {
      set = new Set();
      this.#owned.set(replica, set);
    }
    return set;
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolve with the first non-undefined value of `probe`, evaluated now and after every report. */
  until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = probe();
        if (value === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${what}: not reached within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /**
   * The time by which every shard of `shards` had been acquired by a replica
   * other than `former` after `since` (the latest of those first acquisitions).
   */
  reacquiredBy(shards: ReadonlySet<number>, former: string, since: number, from: number): number | undefined {
    const first = new Map<number, number>();
    for (let i = from; i < this.acquisitions.length; i++) {
      const a = this.acquisitions[i] as Acquisition;
      if (a.replica === former || a.t < since || !shards.has(a.shard) || first.has(a.shard)) continue;
      first.set(a.shard, a.t);
    }
    if (first.size < shards.size) return undefined;
    return Math.max(...first.values());
  }
}

/** What the trials need of a replica. */
export interface TrialReplica {
  readonly name: string;
  /** Current member id, once started. */
  readonly instance: string | undefined;
  /** Wait until it can be started (process up, modules loaded). */
  ready(): Promise<void>;
  /** Start the worker; resolves with the monotonic time just before `worker.start()` once it has started. */
  start(): Promise<number>;
  /** Graceful stop; returns the monotonic time it was asked to stop (does not wait for it). */
  stop(): number;
  /** Crash; returns the monotonic time of the crash. */
  crash(): number;
  /** Release every resource (stop whatever is left). */
  dispose(): Promise<void>;
  /** Recent errors and stderr, for failure messages. */
  log(): string;
}

let counter = 0;

/** A replica in its own child process (one worker), against Redis or etcd. */
export class ProcessReplica implements TrialReplica {
  readonly name = `p${++counter}`;
  readonly #host: HostProcess;
  #instance: string | undefined;

  constructor(config: Omit<HostConfig, 'workers' | 'events'>, ledger: Ledger) {
    this.#host = new HostProcess({ ...config, workers: 1, events: true });
    this.#host.onMessage((m: HostMessage) => {
      switch (m.e) {
        case 'reg':
          this.#instance = m.id;
          // A registration starts the lease like a renewal does.
          ledger.renewed(this.name, m.t);
          break;
        case 'acq':
          ledger.acquired({ replica: this.name, instance: m.id, shard: m.s, token: m.k, t: m.t });
          break;
        case 'rev':
          ledger.revoked(this.name, m.s);
          break;
        case 'renew':
          ledger.renewed(this.name, m.sent);
          break;
        case 'down':
          ledger.down(this.name, m.t);
          break;
        default:
          break;
      }
    });
  }

  get instance(): string | undefined {
    return this.#instance;
  }

  async ready(): Promise<void> {
    await this.#host.standby;
  }

  async start(): Promise<number> {
    const started = this.#host.next((m): m is Extract<HostMessage, { e: 'started' }> => m.e === 'started', 60_000);
    this.#host.send({ cmd: 'start' });
    return (await started).t0;
  }

  stop(): number {
    const t = monotonicMs();
    this.#host.signal('SIGTERM');
    return t;
  }

  crash(): number {
    const t = monotonicMs();
    this.#host.signal('SIGKILL');
    return t;
  }

  log(): string {
    return this.#host.log;
  }

  async dispose(): Promise<void> {
    if (!this.#host.alive) return;
    this.#host.signal('SIGTERM');
    const timer = setTimeout(() => this.#host.signal('SIGKILL'), 10_000);
    await this.#host.exited;
    clearTimeout(timer);
  }
}

/** A replica inside this process on a shared memory store. */
export class MemoryReplica implements TrialReplica {
  readonly name = `m${++counter}`;
  readonly #worker: Worker;
  readonly #connection: MemoryDiscovery;
  readonly #ledger: Ledger;
  #instance: string | undefined;

  constructor(
    store: MemoryStore,
    config: { readonly service: string; readonly shards: number; readonly leaseTtlMs: number },
    ledger: Ledger,
  ) {
    this.#connection = new MemoryDiscovery({ store });
    this.#ledger = ledger;
    const counts: CallCounts = {};
    const discovery = new CountingDiscovery(this.#connection, counts, monotonicMs, (sent) =>
      ledger.renewed(this.name, sent),
    );
    this.#worker = new Worker({
      service: config.service,
      shards: config.shards,
      discovery,
      leaseTtlMs: config.leaseTtlMs,
      revokeTimeoutMs: 5000,
      handler: {
        do: (ctx) =>
          new Promise<void>((resolve) => {
            if (ctx.signal.aborted) resolve();
            else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          }),
      },
    });
    // A crashed replica keeps failing to reach the store: expected, not news.
    this.#worker.on('error', () => undefined);
    this.#worker.on('lease:registered', ({ instance }) => {
      this.#instance = instance;
      ledger.renewed(this.name, monotonicMs());
    });
    this.#worker.on('shard:acquired', ({ shard, token }) =>
      ledger.acquired({ replica: this.name, instance: this.#instance ?? '?', shard, token, t: monotonicMs() }),
    );
    this.#worker.on('shard:revoked', ({ shard }) => ledger.revoked(this.name, shard));
  }

  get instance(): string | undefined {
    return this.#instance;
  }

  async ready(): Promise<void> {}

  async start(): Promise<number> {
    const t0 = monotonicMs();
    await this.#worker.start();
    return t0;
  }

  stop(): number {
    const t = monotonicMs();
    void this.#worker.stop().then(() => this.#ledger.down(this.name, monotonicMs()));
    return t;
  }

  crash(): number {
    const t = monotonicMs();
    this.#connection.setAvailable(false);
    return t;
  }

  log(): string {
    return '';
  }

  async dispose(): Promise<void> {
    await this.#worker.stop();
  }
}
