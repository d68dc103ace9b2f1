import {
  type Handler,
  MemoryDiscovery,
  MemoryStore,
  type Snapshot,
  sleep,
  Worker,
  type WorkerOptions,
} from '@shardwork/core';
import { checkOwnership, type OwnershipRecord } from '@shardwork/core/testing';
import { expect, vi } from 'vitest';

/** Fake every timer and both clocks the worker and croner read. */
export function useFakeTime(): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'Date', 'performance'],
  });
}

/** Start a worker under fake time (its first pass needs timers to run). */
export async function started(worker: Worker): Promise<void> {
  const p = worker.start();
  await vi.advanceTimersByTimeAsync(50);
  await p;
}

/** Stop a worker under fake time, letting its hand-over timers run out. */
export async function stopped(worker: Worker): Promise<void> {
  const p = worker.stop();
  await vi.advanceTimersByTimeAsync(15_000);
  await p;
}

/** Advance fake time in steps until `check()` is true; returns the fake ms it took. */
export async function advanceUntil(check: () => boolean, maxMs: number, stepMs = 5): Promise<number> {
  const began = performance.now();
  while (!check()) {
    if (performance.now() - began > maxMs) throw new Error(`condition not met within ${maxMs} ms of fake time`);
    await vi.advanceTimersByTimeAsync(stepMs);
  }
  return performance.now() - began;
}

/** Memory discovery whose snapshots carry extra invalid records (garbage in the backend). */
export class GarbageDiscovery extends MemoryDiscovery {
  override async snapshot(service: string): Promise<Snapshot> {
    const snap = await super.snapshot(service);
    return { ...snap, invalid: [{ key: `${service}/members/broken`, reason: 'not JSON' }] };
  }
}

/**
 * In-process replicas on one memory store, each with its own connection (so
 * one can be cut), and a recording handler: `acquire`, an `effect` every 10 ms
 * after `ctx.owned`, `release` when the handler ends.
 */
export class Cluster {
  readonly store = new MemoryStore();
  readonly records: OwnershipRecord[] = [];
  readonly replicas: { worker: Worker; conn: MemoryDiscovery; errors: unknown[] }[] = [];
  readonly service: string;
  readonly shards: number;

  constructor(shards: number, service = 'svc') {
    this.shards = shards;
    this.service = service;
  }

  recordingHandler(): Handler {
    const records = this.records;
    return {
      async do(ctx) {
        const base = { shard: ctx.shard, token: ctx.token, owner: ctx.instance };
        if (ctx.owned) records.push({ kind: 'acquire', ...base, t: performance.now() });
        try {
          while (!ctx.signal.aborted) {
            if (ctx.owned) records.push({ kind: 'effect', ...base, t: performance.now() });
            await sleep(10, ctx.signal).catch(() => undefined);
          }
        } finally {
          records.push({ kind: 'release', ...base, t: performance.now() });
        }
      },
    };
  }

  add(
    options: Partial<WorkerOptions> = {},
    latencyMs = 1,
  ): { worker: Worker; conn: MemoryDiscovery; errors: unknown[] } {
    const conn = new MemoryDiscovery({ store: this.store, latencyMs });
    const worker = new Worker({
      service: this.service,
      shards: this.shards,
      discovery: conn,
      leaseTtlMs: 1000,
      handler: this.recordingHandler(),
      ...options,
    });
    const replica = { worker, conn, errors: [] as unknown[] };
    worker.on('error', ({ error }) => replica.errors.push(error));
    this.replicas.push(replica);
    return replica;
  }

  /** Shards owned by running replicas (a shard owned twice throws). */
  owned(exclude: Worker[] = []): Map<number, Worker> {
    const result = new Map<number, Worker>();
    for (const { worker } of this.replicas) {
      if (exclude.includes(worker) || worker.state !== 'running') continue;
      for (const { shard } of worker.status().shards) {
        if (result.has(shard)) throw new Error(`shard ${shard} owned by two replicas`);
        result.set(shard, worker);
      }
    }
    return result;
  }

  fullyOwned(exclude: Worker[] = []): boolean {
    return this.owned(exclude).size === this.shards;
  }

  assertExclusive(): void {
    const report = checkOwnership(this.records);
    expect(report.violations).toEqual([]);
    expect(report.intervals.length).toBeGreaterThan(0);
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.replicas.map(async ({ worker, conn }) => {
        conn.setAvailable(true);
        const stopping = worker.stop();
        await vi.advanceTimersByTimeAsync(20_000);
        await stopping;
      }),
    );
  }
}
