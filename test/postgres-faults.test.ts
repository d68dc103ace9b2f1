/**
 * Multi-process fault tests against a private PostgreSQL server as the
 * discovery backend: replicas are child processes running a Worker with
 * `postgres://` discovery and appending what their handlers saw and did to a
 * file. The scenarios every backend shares are in support/fault-scenarios.ts;
 * this file adds what only a database server does: a crash (kill -9 of every
 * server process) and an immediate restart, both keeping committed data, so
 * that leases outlive a short outage and fencing tokens keep increasing.
 */

import { checkOwnership, monotonicMs, readOwnershipRecords, waitForFullCoverage } from '@shardwork/core/testing';
import { PostgresDiscovery } from '@shardwork/discovery-postgres';
import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import { describe, expect, it } from 'vitest';
import { describeFaultScenarios, faultSuite } from './support/fault-scenarios.js';
import { leasesLost, sleep } from './support/faults.js';

const TTL = 1000;
const SHARDS = 6;

/** Calls fail below a third of the TTL, so a dead server costs at most one heartbeat. */
function postgresUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres?callTimeoutMs=300&schema=sw_faults`;
}

const faults = faultSuite<PostgresTestServer>({
  name: 'postgres',
  label: 'PostgreSQL',
  shards: SHARDS,
  ttlMs: TTL,
  start: () => startPostgres(),
  stop: (server) => server.stop(),
  observer: (server) => new PostgresDiscovery({ url: postgresUrl(server.port), callTimeoutMs: 500 }),
  port: (server) => server.port,
  url: postgresUrl,
  // An expiry is announced by the watchers' timers within ~10 ms of the lease
  // running out; then a snapshot and the claims (a few round trips), with room
  // for scheduling delays of a loaded 2-core machine.
  handoverBoundMs: { graceful: TTL, kill9: TTL + 1000, sigstop: TTL + 1000, cut: TTL + 1000, stall: TTL + 1000 },
});

describeFaultScenarios(faults);

describe('postgres-only faults with replica processes', () => {
  for (const [name, fault] of [
    ['a crash (kill -9) of the server', (server: PostgresTestServer) => server.crash({ downMs: 200 })],
    ['an immediate restart of the server', (server: PostgresTestServer) => server.restart({ mode: 'immediate' })],
  ] as const) {
    it(`survives ${name}: fully owned again, tokens increasing, no overlap`, async () => {
      const ttl = 2000;
      const g = await faults.startGroup('crash', { ttlMs: ttl });
      const before = (await faults.observer.snapshot(g.service)).claims;
      const maxBefore = Math.max(...before.map((c) => c.token));
      const counts = g.replicas.map((r) => r.instances.length);
      const t0 = monotonicMs();
      await fault(faults.server);
      const upAt = monotonicMs();
      const covered = await waitForFullCoverage(faults.observer, g.service, SHARDS, {
        timeoutMs: 15_000,
        minMembers: 3,
      });
      await faults.waitBalanced(g.service, g.replicas);
      const balancedAt = monotonicMs();
      const key = name.startsWith('a crash') ? 'crash' : 'restart';
      const { measured } = faults;
      measured[`${key}DownMs`] = Math.round(upAt - t0);
      measured[`${key}CoverageMs`] = Math.round(covered - t0);
      measured[`${key}BalancedMs`] = Math.round(balancedAt - t0);
      measured[`${key}LeasesLost`] = leasesLost(g.replicas, counts);
      // Down time, then at most one TTL for leases that lapsed, then a claim round.
      expect(covered - t0).toBeLessThan(upAt - t0 + ttl + 2000);
      // A claim made after the fault has a token above every one before it.
      await sleep(200);
      const after = (await faults.observer.snapshot(g.service)).claims;
      const kept = new Set(before.map((c) => `${c.shard}:${c.token}`));
      for (const claim of after)
        if (!kept.has(`${claim.shard}:${claim.token}`)) expect(claim.token).toBeGreaterThan(maxBefore);
      const tokens = checkOwnership(readOwnershipRecords(g.file)).violations.filter(
        (v) => v.includes('did not increase') || v.includes('several owners'),
      );
      expect(tokens).toEqual([]);
      await faults.settledOwnership(g);
    });
  }
});
