/**
 * Multi-process fault tests against a real redis-server: replicas are child
 * processes running a Worker with the Redis backend and appending what their
 * handlers saw and did to a file; after every fault the file must show at most
 * one owner per shard at any instant, with increasing tokens, and every shard
 * must be owned again within a bound.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkOwnership,
  monotonicMs,
  readOwnershipRecords,
  uniqueService,
  waitForFullCoverage,
} from '@shardwork/core/testing';
import { RedisDiscovery } from '@shardwork/discovery-redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, type Replica } from './support/cluster.js';
import { effectsAfter, faultKit, sleep } from './support/faults.js';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { TcpProxy } from './support/tcp-proxy.js';

const TTL = 1000;
const SHARDS = 6;

let server: RedisTestServer;
let observer: RedisDiscovery;
let dir: string;
const replicas: Replica[] = [];
const proxies: TcpProxy[] = [];
/** Records of the data-wipe test, checked for overlaps by the test after it. */
let wiped: { file: string; group: Replica[] } | undefined;
/** Measured times, printed at the end. */
const measured: Record<string, number> = {};
const kit = faultKit({ shards: SHARDS, ttlMs: TTL, replicas });
const { startReplicas, ownership } = kit;
const waitBalanced = (service: string, group: readonly Replica[]): Promise<void> =>
  kit.waitBalanced(observer, service, group);

/** Fail fast below a third of the TTL; poll often enough for short tests. */
function redisUrl(port: number): string {
  return `redis://127.0.0.1:${port}?commandTimeoutMs=250&connectTimeoutMs=500&pollIntervalMs=500`;
}

beforeAll(async () => {
  server = await startRedisServer();
  observer = new RedisDiscovery({ url: redisUrl(server.port) });
  dir = mkdtempSync(join(tmpdir(), 'shardwork-redis-faults-'));
});

afterEach(async () => {
  await killAll(replicas.splice(0));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await observer?.close();
  await server?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  console.log(`redis fault timings (ms, TTL ${TTL}):`, JSON.stringify(measured));
});

describe('redis faults with replica processes', () => {
  it('hands shards over on a graceful stop within a fraction of the TTL', async () => {
    const service = uniqueService('graceful');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => redisUrl(server.port)),
    );
    await waitBalanced(service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const t0 = monotonicMs();
    expect(await a.stop()).toBe(0);
    const exitedAt = monotonicMs();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: a.instances,
      minMembers: 2,
      pollMs: 10,
    });
    measured.gracefulStopMs = Math.round(exitedAt - t0);
    measured.gracefulHandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL);
    await sleep(200);
    ownership(file, group);
  });

  it('moves the shards of a replica killed with SIGKILL after about one TTL', async () => {
    const service = uniqueService('kill9');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => redisUrl(server.port)),
    );
    await waitBalanced(service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const t0 = monotonicMs();
    await a.kill();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: a.instances,
      minMembers: 2,
      pollMs: 10,
    });
    measured.kill9HandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL + 1000);
    await sleep(200);
    ownership(file, group);
  });

  it('fences a replica paused past its TTL (SIGSTOP) before anyone takes its shards', async () => {
    const service = uniqueService('sigstop');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => redisUrl(server.port)),
    );
    await waitBalanced(service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const frozen = [...a.instances];
    const leaseLeft = (await observer.snapshot(service)).members.find((m) => m.id === a.instance)?.expiresInMs;
    const t0 = monotonicMs();
    a.signal('SIGSTOP');
    console.log(`sigstop at ${t0.toFixed(1)}`);
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: frozen,
      minMembers: 2,
      pollMs: 10,
    });
    measured.sigstopHandoverMs = Math.round(covered - t0);
    measured.sigstopLeaseLeftAtStopMs = leaseLeft ?? -1;
    expect(covered - t0).toBeLessThan(TTL + 1000);
    await sleep(Math.max(0, t0 + 2.5 * TTL - monotonicMs()));
    const resumedAt = monotonicMs();
    a.signal('SIGCONT');
    console.log(`sigcont at ${resumedAt.toFixed(1)}`);
    // It comes back as a new member and gets its share again.
    const deadline = monotonicMs() + 10_000;
    while (a.instances.length <= frozen.length && monotonicMs() < deadline) await sleep(20);
    expect(a.instances.length).toBeGreaterThan(frozen.length);
    await waitBalanced(service, group);
    measured.sigstopRejoinMs = Math.round(monotonicMs() - resumedAt);
    await sleep(200);
    // The frozen process writes the `release` records of its old handlers when it
    // resumes; checkOwnership does not count releases as ownership, only effects.
    ownership(file, group);
    // The frozen instance did nothing after resuming: its deadline had passed.
    expect(effectsAfter(file, frozen, resumedAt)).toBe(0);
  });

  it('recovers from a Redis restart that lost all data, with tokens still increasing', async () => {
    const service = uniqueService('wipe');
    const file = join(dir, `${service}.jsonl`);
    const group = await startReplicas(
      service,
      file,
      [1, 2, 3].map(() => redisUrl(server.port)),
    );
    await waitBalanced(service, group);
    await sleep(200);
    const before = (await observer.snapshot(service)).claims;
    const maxBefore = Math.max(...before.map((c) => c.token));
    const counts = group.map((r) => r.instances.length);
    const t0 = monotonicMs();
    await server.restart({ downMs: 300 });
    console.log(`wipe: restart began ${t0.toFixed(1)}, redis back ${monotonicMs().toFixed(1)}`);
    // Every replica finds its lease gone, re-registers, and the shards are owned again.
    const deadline = monotonicMs() + 15_000;
    while (group.some((r, i) => r.instances.length <= (counts[i] ?? 0)) && monotonicMs() < deadline) await sleep(20);
    expect(group.map((r, i) => r.instances.length > (counts[i] ?? 0))).toEqual([true, true, true]);
    const covered = await waitForFullCoverage(observer, service, SHARDS, { timeoutMs: 10_000, minMembers: 3 });
    measured.wipeCoverageMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(300 + 2 * TTL + 2000);
    const after = (await observer.snapshot(service)).claims;
    expect(Math.min(...after.map((c) => c.token))).toBeGreaterThan(maxBefore);
    await sleep(200);
    // Tokens per shard increase across the wipe (the safety part is the next test).
    wiped = { file, group };
    const tokens = checkOwnership(readOwnershipRecords(file)).violations.filter(
      (v) => v.includes('did not increase') || v.includes('several owners'),
    );
    expect(tokens).toEqual([]);
  });

  // Known gap, reported to the lead: a Redis that loses its data forgets live
  // leases, and the first replica to notice re-registers and claims shards at
  // once, while the others still hold them until their next heartbeat tells
  // them (up to a heartbeat interval plus a reconnect later). The worker would
  // have to hold off claiming for one TTL after losing a lease early. This
  // test asserts no overlap and is expected to fail until then.
  it('has no overlapping owners across the data wipe (claims wait one TTL after an early lease loss)', () => {
    if (wiped === undefined) throw new Error('the wipe test did not run');
    ownership(wiped.file, wiped.group);
  });

  it('fences a replica cut off from Redis (TCP proxy) and lets the others take over without overlap', async () => {
    const service = uniqueService('cut');
    const file = join(dir, `${service}.jsonl`);
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: server.port });
    proxies.push(proxy);
    const group = await startReplicas(service, file, [
      redisUrl(proxy.port),
      redisUrl(server.port),
      redisUrl(server.port),
    ]);
    await waitBalanced(service, group);
    await sleep(200);
    const [a] = group as [Replica];
    const isolated = [...a.instances];
    const t0 = monotonicMs();
    proxy.cut();
    const covered = await waitForFullCoverage(observer, service, SHARDS, {
      timeoutMs: 5000,
      excluding: isolated,
      minMembers: 2,
      pollMs: 10,
    });
    measured.cutHandoverMs = Math.round(covered - t0);
    expect(covered - t0).toBeLessThan(TTL + 1000);
    // The isolated replica stopped its effects on its own, before its lease could expire.
    expect(effectsAfter(file, isolated, t0 + TTL)).toBe(0);
    await sleep(Math.max(0, t0 + 2.5 * TTL - monotonicMs()));
    const healedAt = monotonicMs();
    proxy.heal();
    const deadline = monotonicMs() + 10_000;
    while (a.instances.length <= isolated.length && monotonicMs() < deadline) await sleep(20);
    expect(a.instances.length).toBeGreaterThan(isolated.length);
    await waitBalanced(service, group);
    measured.cutRejoinMs = Math.round(monotonicMs() - healedAt);
    await sleep(200);
    ownership(file, group);
  });
});
