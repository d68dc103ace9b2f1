/**
 * One chaos run: start a cluster, play a seeded schedule against it while an
 * observer samples coverage, wait for the final recovery, tear down, and judge
 * the records ({@link analyze}). The cluster behind it is either in-process on
 * the memory backend with virtual time (memory-cluster.ts) or child processes
 * behind TCP proxies on a real Redis or etcd (process-cluster.ts).
 *
 * @module
 */

import type { Discovery } from '@shardwork/core';
import type { OwnershipRecord } from '@shardwork/core/testing';
import {
  analyze,
  boundFor,
  type ChaosBounds,
  type ChaosVerdict,
  type CoverageSample,
  type EventOutcome,
  recoveryMs,
} from './check.js';
import { CoverageObserver } from './observer.js';
import { type ChaosEvent, formatEvent, makeSchedule, type ScheduleOptions } from './schedule.js';

/** The backends a chaos run can target. */
export type ChaosBackend = 'memory' | 'redis' | 'etcd';

/** What {@link runChaos} drives. */
export interface ChaosCluster {
  readonly backend: ChaosBackend;
  readonly service: string;
  readonly shardCount: number;
  /** Replica slots (all up after {@link setup}). */
  readonly replicas: number;
  /** The clock of records and events. */
  now(): number;
  /** Let `ms` pass (virtual time advances; real time sleeps). */
  sleep(ms: number): Promise<void>;
  /** Wait for `promise`, letting time pass, at most `maxMs`. */
  drive<T>(promise: Promise<T>, maxMs: number): Promise<T>;
  /** Start the backend and every replica. */
  setup(): Promise<void>;
  /** A connection for the observer, unaffected by faults other than backend restarts. */
  readonly observer: Discovery;
  /** Carry out one event; resolves when it is complete. */
  apply(event: ChaosEvent): Promise<void>;
  /** Member ids of replicas that are killed, stopped, paused or cut off right now. */
  excluded(): ReadonlySet<string>;
  /** Every ownership record so far (complete after {@link teardown}). */
  records(): OwnershipRecord[];
  /** Stop everything; idempotent. */
  teardown(): Promise<void>;
}

/** Settings of one run. */
export interface ChaosRunOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly bounds: ChaosBounds;
  readonly schedule?: ScheduleOptions;
  /** Live progress lines (schedule as it runs, recoveries). */
  readonly log?: (line: string) => void;
  /** Observer poll interval. @defaultValue 50 */
  readonly pollMs?: number;
  /** Play these events instead of the seed's schedule (a hand-written scenario). */
  readonly events?: readonly ChaosEvent[];
}

/** What a run produced. */
export interface ChaosResult {
  readonly backend: ChaosBackend;
  readonly seed: number;
  readonly durationMs: number;
  readonly schedule: readonly ChaosEvent[];
  readonly outcomes: readonly EventOutcome[];
  readonly samples: readonly CoverageSample[];
  readonly verdict: ChaosVerdict;
}

/** Run `cluster` through the schedule of `options.seed`; always tears the cluster down. */
export async function runChaos(cluster: ChaosCluster, options: ChaosRunOptions): Promise<ChaosResult> {
  const { seed, durationMs, bounds } = options;
  const log = options.log ?? (() => undefined);
  const schedule =
    options.events ??
    makeSchedule(seed, durationMs, {
      replicas: cluster.replicas,
      ttlMs: bounds.ttlMs,
      ...options.schedule,
    });
  const outcomes: EventOutcome[] = [];
  const runErrors: string[] = [];
  let t0 = Number.NaN;
  const rel = (t: number): string => `+${((t - t0) / 1000).toFixed(3)}s`;
  let observer: CoverageObserver | undefined;
  let runEnd = Number.NaN;
  try {
    log(
      `chaos: backend ${cluster.backend}, seed ${seed}, ${durationMs / 1000} s, ${schedule.length} events, ${cluster.replicas} replicas, ${cluster.shardCount} shards, TTL ${bounds.ttlMs} ms`,
    );
    await cluster.setup();
    observer = new CoverageObserver({
      discovery: cluster.observer,
      service: cluster.service,
      shardCount: cluster.shardCount,
      now: () => cluster.now(),
      excluded: () => cluster.excluded(),
      outcomes,
      pollMs: options.pollMs ?? 50,
      onRecovered: (o) =>
        log(
          `${rel(o.recoveredAt ?? 0)}   all shards owned again after #${o.event.index} ${o.event.kind}: ${recoveryMs(o)?.toFixed(0)} ms`,
        ),
    });
    observer.start();
    const setupAt = cluster.now();
    const obs = observer;
    await cluster.drive(
      (async () => {
        while (!obs.fullSince(setupAt)) await cluster.sleep(20);
      })(),
      60_000,
    );
    // Claims can land just as the observer first sees full coverage (a new
    // service on Redis claims only once its group is one TTL old); let the
    // handlers start on them before the liveness clock does.
    await cluster.drive(cluster.sleep(500), 5_000);
    t0 = cluster.now();
    log(`${rel(t0)} all ${cluster.shardCount} shards owned; schedule starts`);

    const chains = new Map<string, Promise<void>>();
    const pending: Promise<void>[] = [];
    for (const event of schedule) {
      const wait = t0 + event.at - cluster.now();
      if (wait > 0) await cluster.sleep(wait);
      const outcome: EventOutcome = {
        event,
        issuedAt: Number.NaN,
        doneAt: undefined,
        error: undefined,
        recoveredAt: undefined,
        boundMs: boundFor(event, bounds),
      };
      outcomes.push(outcome);
      // Actions on one slot (or on the backend) run in order; others overlap freely.
      const key = event.kind === 'restart-backend' ? 'backend' : `r${event.replica}`;
      const run = (chains.get(key) ?? Promise.resolve()).then(async () => {
        outcome.issuedAt = cluster.now();
        log(`${rel(outcome.issuedAt)} ${formatEvent(event)}`);
        try {
          await cluster.apply(event);
          outcome.doneAt = cluster.now();
          if (outcome.doneAt - outcome.issuedAt > 100)
            log(
              `${rel(outcome.doneAt)}   #${event.index} ${event.kind} done in ${(outcome.doneAt - outcome.issuedAt).toFixed(0)} ms`,
            );
        } catch (error) {
          outcome.error = error instanceof Error ? error.message : String(error);
          runErrors.push(`${formatEvent(event)} failed: ${outcome.error}`);
          log(`${rel(cluster.now())}   #${event.index} ${event.kind} FAILED: ${outcome.error}`);
        }
      });
      chains.set(key, run);
      pending.push(run);
    }
    const left = t0 + durationMs - cluster.now();
    if (left > 0) await cluster.sleep(left);
    await cluster.drive(Promise.all(pending), 60_000);
    // Any event issued late (a busy slot) still gets its full window before the end.
    const lastDone = Math.max(t0, ...outcomes.map((o) => o.doneAt ?? o.issuedAt));
    const finalDeadline = Math.max(cluster.now(), lastDone) + bounds.crashMs + 5000;
    while (!obs.fullSince(lastDone) && cluster.now() < finalDeadline) await cluster.sleep(20);
    if (!obs.fullSince(lastDone)) {
      runErrors.push(
        `not every shard owned by a healthy member at the end: last poll ${obs.samples.at(-1)?.detail ?? '(none)'}`,
      );
    } else {
      log(`${rel(cluster.now())} all shards owned after the last event`);
    }
    // One more quiet second so that every recovered shard has effects on record.
    await cluster.sleep(1000);
    runEnd = cluster.now();
  } catch (error) {
    runErrors.push(`run aborted: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    runEnd = cluster.now();
    if (Number.isNaN(t0)) t0 = runEnd;
  } finally {
    if (observer !== undefined) await cluster.drive(observer.stop(), 10_000).catch(() => undefined);
    await cluster.teardown();
  }
  const verdict = analyze({
    backend: cluster.backend,
    seed,
    durationMs,
    shardCount: cluster.shardCount,
    bounds,
    t0,
    runEnd,
    records: cluster.records(),
    outcomes,
    samples: observer?.samples ?? [],
    runErrors,
  });
  return { backend: cluster.backend, seed, durationMs, schedule, outcomes, samples: observer?.samples ?? [], verdict };
}
