/**
 * The multi-process fault scenarios every backend must pass, written once:
 * graceful stop, kill -9, SIGSTOP past the TTL, and a replica whose connection
 * a TCP proxy cuts or stalls. A backend's fault test file describes its server
 * with a {@link FaultBackend}, runs the shared scenarios and adds its own:
 *
 * ```ts
 * const faults = faultSuite(redisBackend); // hooks for the whole file
 * describeFaultScenarios(faults);
 * describe('redis-only faults', () => {
 *   it('…', async () => {
 *     const g = await faults.startGroup('wipe');
 *     await faults.server.restart();
 *     await faults.settledOwnership(g);
 *   });
 * });
 * ```
 *
 * After every fault the record file must show at most one owner per shard at
 * any instant, with increasing tokens, and every shard must be owned again
 * within the backend's bound.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Discovery } from '@shardwork/core';
import { monotonicMs, type OwnershipReport, uniqueService, waitForFullCoverage } from '@shardwork/core/testing';
import { TcpProxy } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, type Replica } from './cluster.js';
import { effectsAfter, type FaultKit, faultKit, sleep, waitForNewInstances } from './faults.js';

/** The shared scenarios, by the key their measured times and bounds use. */
export type FaultScenario = 'graceful' | 'kill9' | 'sigstop' | 'cut' | 'stall';

/** What differs between backends in the shared scenarios. */
export interface FaultBackend<S> {
  /** Lower-case name for suite titles, the temporary directory and the timings line, e.g. `redis`. */
  readonly name: string;
  /** The server as test titles name it, e.g. `Redis`. */
  readonly label: string;
  readonly shards: number;
  /** Lease TTL of the replicas unless a test passes its own. */
  readonly ttlMs: number;
  /** Start the server (in `beforeAll`). */
  start(): Promise<S>;
  /** Stop the server and remove its data (in `afterAll`). */
  stop(server: S): Promise<void>;
  /** The Discovery the tests observe the service with. */
  observer(server: S): Discovery;
  /** The loopback port a replica reaches the server on, and a {@link TcpProxy} forwards to. */
  port(server: S): number;
  /** The discovery URL of a replica that reaches the server on `port` (the server's or a proxy's). */
  url(port: number): string;
  /** Per scenario: the most ms from the fault until the remaining replicas own every shard. */
  readonly handoverBoundMs: Readonly<Record<FaultScenario, number>>;
}

/** Three replicas started by {@link FaultSuite.startGroup}. */
export interface FaultGroup {
  readonly service: string;
  /** The file the replicas append their ownership records to. */
  readonly file: string;
  readonly replicas: readonly Replica[];
  /** The first replica: the one the shared scenarios stop, kill, pause or isolate. */
  readonly victim: Replica;
}

/** Options of {@link FaultSuite.startGroup}. */
export interface StartGroupOptions {
  /** One discovery URL per replica. @defaultValue three direct URLs */
  readonly urls?: readonly string[];
  /** @defaultValue the backend's TTL */
  readonly ttlMs?: number;
  /** Where balance is checked. @defaultValue the suite's observer */
  readonly observer?: Discovery;
  /** @defaultValue 200 */
  readonly settleMs?: number;
}

/** One fault test file's server, observer, replicas and measured times. */
export interface FaultSuite<S> {
  readonly backend: FaultBackend<S>;
  /** The server started in `beforeAll`. */
  readonly server: S;
  readonly observer: Discovery;
  /** Temporary directory for record files. */
  readonly dir: string;
  /** Measured times, printed after the file's last test. */
  readonly measured: Record<string, number>;
  /** Spawning, balance, ownership and effect-gap helpers for this file's replicas. */
  readonly kit: FaultKit;
  /**
   * Start three replicas on a new service and wait until `observer` (the
   * suite's by default) sees them balanced, then let them work `settleMs`
   * (default 200). They reach the server directly unless `urls` says otherwise.
   */
  startGroup(tag: string, options?: StartGroupOptions): Promise<FaultGroup>;
  /** Wait until every replica of `replicas` holds its share, as the observer sees it. */
  waitBalanced(service: string, replicas: readonly Replica[]): Promise<void>;
  /** Let the last records land, then assert the ownership invariant over the group's file. */
  settledOwnership(group: FaultGroup): Promise<OwnershipReport>;
  /** Run `close` after the current test, once its replicas are killed (last registered, first run). */
  onCleanup(close: () => Promise<void>): void;
}

/**
 * Register the hooks of a backend's fault test file (start the server and an
 * observer, kill replicas after each test, print the measured times at the
 * end) and return what its tests use. Call once, at the top level of the file,
 * so that the hooks cover every test in it.
 */
export function faultSuite<S>(backend: FaultBackend<S>): FaultSuite<S> {
  const replicas: Replica[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const measured: Record<string, number> = {};
  const kit = faultKit({ shards: backend.shards, ttlMs: backend.ttlMs, replicas });
  let server: S | undefined;
  let observer: Discovery | undefined;
  let dir: string | undefined;
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error(`the ${backend.name} server is not started (use the suite inside tests)`);
    return value;
  };

  beforeAll(async () => {
    server = await backend.start();
    observer = backend.observer(server);
    dir = mkdtempSync(join(tmpdir(), `shardwork-${backend.name}-faults-`));
  });

  afterEach(async () => {
    await killAll(replicas.splice(0));
    for (const close of cleanups.splice(0).reverse()) await close();
  });

  afterAll(async () => {
    await observer?.close();
    if (server !== undefined) await backend.stop(server);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    console.log(`${backend.name} fault timings (ms, TTL ${backend.ttlMs} unless noted):`, JSON.stringify(measured));
  });

  const suite: FaultSuite<S> = {
    backend,
    get server() {
      return started(server);
    },
    get observer() {
      return started(observer);
    },
    get dir() {
      return started(dir);
    },
    measured,
    kit,
    async startGroup(tag, options = {}) {
      const service = uniqueService(tag);
      const file = join(suite.dir, `${service}.jsonl`);
      const urls = options.urls ?? [1, 2, 3].map(() => backend.url(backend.port(suite.server)));
      const group = await kit.startReplicas(service, file, urls, options.ttlMs);
      await kit.waitBalanced(options.observer ?? suite.observer, service, group);
      await sleep(options.settleMs ?? 200);
      return { service, file, replicas: group, victim: group[0] as Replica };
    },
    waitBalanced: (service, group) => kit.waitBalanced(suite.observer, service, group),
    async settledOwnership(group) {
      await sleep(200);
      return kit.ownership(group.file, group.replicas);
    },
    onCleanup(close) {
      cleanups.push(close);
    },
  };
  return suite;
}

/** Register the scenarios every backend must pass, in a `describe` named for the backend. */
export function describeFaultScenarios<S>(suite: FaultSuite<S>): void {
  const { backend, measured } = suite;
  const { ttlMs, handoverBoundMs } = backend;

  /**
   * Wait until the replicas other than `excluded` own every shard, record the
   * time since the fault at `t0` and assert the scenario's bound on it.
   */
  async function handover(g: FaultGroup, scenario: FaultScenario, t0: number, excluded: readonly string[]) {
    const covered = await waitForFullCoverage(suite.observer, g.service, backend.shards, {
      timeoutMs: 5000,
      excluding: excluded,
      minMembers: 2,
      pollMs: 10,
    });
    measured[`${scenario}HandoverMs`] = Math.round(covered - t0);
    expect(covered - t0, `${scenario} handover`).toBeLessThan(handoverBoundMs[scenario]);
  }

  /** Cut the victim off with `fault`; returns when the others own its shards. */
  async function isolate(g: FaultGroup, scenario: FaultScenario, fault: () => void) {
    const isolated = [...g.victim.instances];
    const t0 = monotonicMs();
    fault();
    console.log(`${scenario} at ${t0.toFixed(1)}`);
    await handover(g, scenario, t0, isolated);
    return { t0, isolated };
  }

  /**
   * Keep the victim isolated until 2.5 TTL after the fault, well past its
   * lease, then `heal` and wait until it is back as a new member with its
   * share. Returns when the fault was healed.
   */
  async function rejoin(g: FaultGroup, scenario: FaultScenario, t0: number, isolated: string[], heal: () => void) {
    await sleep(Math.max(0, t0 + 2.5 * ttlMs - monotonicMs()));
    const healedAt = monotonicMs();
    heal();
    console.log(`${scenario} healed at ${healedAt.toFixed(1)}`);
    await waitForNewInstances([g.victim], [isolated.length]);
    await suite.waitBalanced(g.service, g.replicas);
    measured[`${scenario}RejoinMs`] = Math.round(monotonicMs() - healedAt);
    return healedAt;
  }

  describe(`${backend.name} faults with replica processes`, () => {
    it('hands shards over on a graceful stop within a fraction of the TTL', async () => {
      const g = await suite.startGroup('graceful');
      const t0 = monotonicMs();
      expect(await g.victim.stop()).toBe(0);
      measured.gracefulStopMs = Math.round(monotonicMs() - t0);
      await handover(g, 'graceful', t0, g.victim.instances);
      await suite.settledOwnership(g);
    });

    it('moves the shards of a replica killed with SIGKILL after about one TTL', async () => {
      const g = await suite.startGroup('kill9');
      const t0 = monotonicMs();
      await g.victim.kill();
      await handover(g, 'kill9', t0, g.victim.instances);
      await suite.settledOwnership(g);
    });

    it('fences a replica paused past its TTL (SIGSTOP) before anyone takes its shards', async () => {
      const g = await suite.startGroup('sigstop');
      const members = (await suite.observer.snapshot(g.service)).members;
      const leaseLeft = members.find((m) => m.id === g.victim.instance)?.expiresInMs;
      // Not every backend reports it (etcd does not).
      if (leaseLeft !== undefined) measured.sigstopLeaseLeftAtStopMs = leaseLeft;
      const { t0, isolated } = await isolate(g, 'sigstop', () => g.victim.signal('SIGSTOP'));
      const resumedAt = await rejoin(g, 'sigstop', t0, isolated, () => g.victim.signal('SIGCONT'));
      // On resuming, the frozen process writes the `release` records of its old
      // handlers, long after its deadline; checkOwnership counts only acquire
      // and effect records as ownership, so those do not count as overlap.
      await suite.settledOwnership(g);
      // The frozen instance did nothing after resuming: its deadline had passed.
      expect(effectsAfter(g.file, isolated, resumedAt)).toBe(0);
    });

    const proxyFaults = [
      [
        'cut',
        `fences a replica cut off from ${backend.label} (TCP proxy) and lets the others take over without overlap`,
      ],
      ['stall', `fences a replica whose connection to ${backend.label} stalls (black hole), without overlap`],
    ] as const;
    for (const [fault, title] of proxyFaults) {
      it(title, async () => {
        const proxy = await TcpProxy.start({ host: '127.0.0.1', port: backend.port(suite.server) });
        suite.onCleanup(() => proxy.close());
        const direct = backend.url(backend.port(suite.server));
        const g = await suite.startGroup(fault, { urls: [backend.url(proxy.port), direct, direct] });
        const { t0, isolated } = await isolate(g, fault, () => proxy[fault]());
        // The isolated replica stopped its effects on its own, before its lease could expire.
        expect(effectsAfter(g.file, isolated, t0 + ttlMs)).toBe(0);
        await rejoin(g, fault, t0, isolated, () => proxy.heal());
        await suite.settledOwnership(g);
      });
    }
  });
}
