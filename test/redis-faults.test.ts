/**
 * Multi-process fault tests against a real redis-server: replicas are child
 * processes running a Worker with the Redis backend and appending what their
 * handlers saw and did to a file. The scenarios every backend shares are in
 * support/fault-scenarios.ts; this file adds what only Redis can do: a restart
 * that loses all data.
 */

import { checkOwnership, monotonicMs, readOwnershipRecords, waitForFullCoverage } from '@shardwork/core/testing';
import { RedisDiscovery } from '@shardwork/discovery-redis';
import { type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { describe, expect, it } from 'vitest';
import { describeFaultScenarios, type FaultGroup, faultSuite } from './support/fault-scenarios.js';
import { sleep, waitForNewInstances } from './support/faults.js';

const TTL = 1000;
const SHARDS = 6;

/** Fail fast below a third of the TTL; poll often enough for short tests. */
function redisUrl(port: number): string {
  return `redis://127.0.0.1:${port}?commandTimeoutMs=250&connectTimeoutMs=500&pollIntervalMs=500`;
}

const faults = faultSuite<RedisTestServer>({
  name: 'redis',
  label: 'Redis',
  shards: SHARDS,
  ttlMs: TTL,
  start: startRedisServer,
  stop: (server) => server.stop(),
  observer: (server) => new RedisDiscovery({ url: redisUrl(server.port) }),
  port: (server) => server.port,
  url: redisUrl,
  handoverBoundMs: { graceful: TTL, kill9: TTL + 1000, sigstop: TTL + 1000, cut: TTL + 1000, stall: TTL + 1000 },
});

describeFaultScenarios(faults);

describe('redis-only faults with replica processes', () => {
  /** The data-wipe test's group, checked for overlaps by the test after it. */
  let wiped: FaultGroup | undefined;

  it('recovers from a Redis restart that lost all data, with tokens still increasing', async () => {
    const g = await faults.startGroup('wipe');
    const before = (await faults.observer.snapshot(g.service)).claims;
    const maxBefore = Math.max(...before.map((c) => c.token));
    const counts = g.replicas.map((r) => r.instances.length);
    const t0 = monotonicMs();
    await faults.server.restart({ downMs: 300 });
    console.log(`wipe: restart began ${t0.toFixed(1)}, redis back ${monotonicMs().toFixed(1)}`);
    // Every replica finds its lease gone, re-registers, and the shards are owned again.
    await waitForNewInstances(g.replicas, counts, 15_000);
    const covered = await waitForFullCoverage(faults.observer, g.service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    faults.measured.wipeCoverageMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(300 + 2 * TTL + 2000);
    const after = (await faults.observer.snapshot(g.service)).claims;
    expect(Math.min(...after.map((c) => c.token))).toBeGreaterThan(maxBefore);
    await sleep(200);
    // Tokens per shard increase across the wipe (the safety part is the next test).
    wiped = g;
    const tokens = checkOwnership(readOwnershipRecords(g.file)).violations.filter(
      (v) => v.includes('did not increase') || v.includes('several owners'),
    );
    expect(tokens).toEqual([]);
  });

  // A Redis that loses its data forgets live leases: the first replica to
  // notice re-registers while the others still hold their shards until their
  // next heartbeat tells them. The worker claims nothing for one TTL after
  // losing a lease early, so no two owners overlap across the wipe.
  it('has no overlapping owners across the data wipe (claims wait one TTL after an early lease loss)', () => {
    if (wiped === undefined) throw new Error('the wipe test did not run');
    faults.kit.ownership(wiped.file, wiped.replicas);
  });
});
