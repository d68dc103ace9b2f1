/**
 * Failover of a real Redis Cluster (3 primaries, 3 replicas) and a real
 * Sentinel setup (primary, replica, 3 sentinels) under shardwork, with
 * `syncReplicas=1` so that a write only counts once a replica has it:
 *
 * - discovery: replica processes own every shard of a service; its primary is
 *   killed; once a replica is back, every shard is owned again and no two
 *   owners ever overlapped (a service on another Cluster primary carries on);
 * - jobs: consumer processes and a producer on queues spread over the
 *   primaries; the primary of one queue is killed; no acknowledged job is lost;
 * - loss: a producer enqueueing as fast as it can while the replica lags
 *   behind: with `syncReplicas=1` the kill loses no acknowledged job, without
 *   it the same fault does (bench/redis-failover-loss.ts measures both, more
 *   often, and with a replica that keeps up).
 *
 * With one replica per primary the replica that takes over has none of its
 * own: `syncReplicas=1` writes fail until the killed node is back as its
 * replica, so every scenario restores it before expecting recovery.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monotonicMs, readOwnershipRecords, waitForFullCoverage } from '@shardwork/core/testing';
import { RedisDiscovery } from '@shardwork/discovery-redis';
import { createJobQueue } from '@shardwork/jobs';
import { eventually, sleep, startRedisCluster, startRedisSentinel, until } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, Replica } from './support/cluster.js';
import { faultKit } from './support/faults.js';
import {
  clusterSetup,
  discoveryRecovery,
  HaJobRun,
  type HaSetup,
  measureLoss,
  sentinelSetup,
} from './support/redis-ha.js';

const SHARDS = 6;
const TTL = 2500;

function describeFailover(kind: 'Cluster' | 'Sentinel', start: () => Promise<HaSetup>): void {
  describe(`Redis ${kind} failover`, () => {
    let setup: HaSetup | undefined;
    let dir = '';
    const replicas: Replica[] = [];
    const kit = faultKit({ shards: SHARDS, ttlMs: TTL, replicas });
    const closing: (() => Promise<unknown>)[] = [];
    const measured: Record<string, number> = {};

    const started = (): HaSetup => {
      if (setup === undefined) throw new Error(`the ${kind} setup did not start`);
      return setup;
    };

    beforeAll(async () => {
      const began = Date.now();
      setup = await start();
      measured.startMs = Date.now() - began;
      dir = mkdtempSync(join(tmpdir(), 'shardwork-ha-'));
    });

    afterEach(async () => {
      await killAll(replicas.splice(0));
      for (const close of closing.splice(0).reverse()) await close();
    });

    afterAll(async () => {
      await setup?.stop();
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
      console.log(`${kind} failover timings (ms, lease TTL ${TTL}):`, JSON.stringify(measured));
    });

    it('discovery with syncReplicas=1: after a kill -9 of the primary every shard is owned again, never by two at once', async () => {
      const setup = started();
      const keyOf = (name: string): string => `sw:{${name}}:meta`;
      const service = await setup.nameOn('ha-disc', keyOf);
      const victim = await setup.primaryOf(keyOf(service));
      const url = `${setup.url}?syncReplicas=1`;
      const spec = (name: string, file: string) => ({
        discovery: url,
        service: name,
        shards: SHARDS,
        leaseTtlMs: TTL,
        recordFile: file,
        resyncIntervalMs: 1000,
      });
      const file = join(dir, `${service}.jsonl`);
      const group = [1, 2, 3].map(() => Replica.spawn(spec(service, file)));
      replicas.push(...group);
      // On a Cluster, a service whose slot is on another primary: it must not notice the failover.
      const other = kind === 'Cluster' ? await setup.nameOn('ha-other', keyOf, (p) => p !== victim.port) : undefined;
      const otherFile = join(dir, `${other}.jsonl`);
      const bystander = other === undefined ? undefined : Replica.spawn(spec(other, otherFile));
      if (bystander !== undefined) replicas.push(bystander);
      await Promise.all(replicas.map((r) => r.ready(60_000)));
      const observer = new RedisDiscovery({ url: setup.url });
      closing.push(() => observer.close());
      await kit.waitBalanced(observer, service, group, 30_000);
      if (other !== undefined) await waitForFullCoverage(observer, other, SHARDS, { timeoutMs: 30_000 });
      await sleep(1000);

      const instances = replicas.map((r) => r.instances.length);
      const t0 = monotonicMs();
      const failover = await setup.killPrimary(keyOf(service));
      const restore = await setup.restore();
      const restoredAt = monotonicMs();
      // Owned by live members, and every shard acting again after the replica came back.
      await waitForFullCoverage(observer, service, SHARDS, { timeoutMs: 30_000, minMembers: 3 });
      await eventually(
        () => {
          const acting = new Set(
            readOwnershipRecords(file)
              .filter((r) => r.kind === 'effect' && r.t > restoredAt + 200)
              .map((r) => r.shard),
          );
          expect(acting.size).toBe(SHARDS);
        },
        30_000,
        100,
      );
      const actingAt = monotonicMs();
      await sleep(500);
      const recovery = discoveryRecovery(file, SHARDS, t0, monotonicMs());
      Object.assign(measured, {
        discoveryFailoverMs: failover.ms,
        discoveryRestoreMs: restore.ms,
        discoveryOwnedAgainMs: recovery.ownedAgainMs,
        discoveryLongestStallMs: recovery.longestStallMs,
        discoveryActingAfterRestoreMs: Math.round(actingAt - restoredAt),
        discoveryLeasesLost: group.reduce((n, r, i) => n + r.instances.length - (instances[i] ?? 0), 0),
      });
      console.log(
        `${kind} discovery: kill -9 of the primary, ${failover.ms} ms until its replica took over, ` +
          `${restore.ms} ms to bring the killed node back as a replica; every shard owned and acting again ` +
          `${recovery.ownedAgainMs} ms after the kill (longest stall of a shard ${recovery.longestStallMs} ms), ` +
          `${measured.discoveryLeasesLost} leases lost`,
      );
      expect(actingAt - restoredAt).toBeLessThan(30_000);
      kit.ownership(file, group);
      if (bystander !== undefined) {
        // The failover of one primary did not cost the service on another one its lease or its work.
        expect(bystander.instances.length).toBe(instances[3]);
        const calm = discoveryRecovery(otherFile, SHARDS, t0, monotonicMs());
        measured.bystanderLongestStallMs = calm.longestStallMs;
        expect(calm.longestStallMs).toBeLessThan(TTL);
        kit.ownership(otherFile, [bystander]);
      }
    });

    it('jobs with syncReplicas=1: a producer keeps performing through a kill -9 of one queue primary; no acknowledged job is lost', async () => {
      const setup = started();
      const keyOf = (name: string): string => `{${name}}`;
      const first = await setup.nameOn('haq', keyOf);
      const victim = await setup.primaryOf(keyOf(first));
      const queues = [first];
      if (kind === 'Cluster') {
        // One queue on each primary.
        const used = [victim.port];
        for (let i = 0; i < 2; i++) {
          const name = await setup.nameOn('haq', keyOf, (p) => !used.includes(p));
          used.push((await setup.primaryOf(keyOf(name))).port);
          queues.push(name);
        }
      } else {
        queues.push(await setup.nameOn('haq', keyOf));
      }
      const run = await HaJobRun.start({ url: `${setup.url}?syncReplicas=1`, queues, leaseTtlMs: TTL });
      closing.push(() => run.close());
      run.produce(20);
      await sleep(1500);
      const t0 = monotonicMs();
      // The primary's kill to the restore is a fault of every consumer (a job may run again around it).
      const { failover, failedOverAt, restore } = await run.faults.around(
        'kill -9 of the primary, then restore',
        undefined,
        async () => {
          const killed = await setup.killPrimary(`${run.prefix}{${first}}:jobs`);
          const at = monotonicMs();
          return { failover: killed, failedOverAt: at, restore: await setup.restore() };
        },
      );
      const restoredAt = monotonicMs();
      // The killed queue takes performs again once the killed node is back as a replica: the
      // producer is in its retry backoff and the replica may still be syncing, so wait for it
      // (loosely, on a loaded machine) instead of a fixed time.
      await until(
        () => run.acceptedBetween(first, restoredAt, monotonicMs()) > 0,
        30_000,
        `a perform on ${first} acknowledged after the restore`,
      );
      await sleep(1000);
      await run.stopProducing();
      // Past two of the adapter's 30 s idle re-checks: a consumer whose wake-up subscriber missed the
      // failover (a few times in 200 Sentinel failovers; cause not found yet) runs its jobs late, not never.
      const settling = monotonicMs();
      await run.settle(setup.client, 75_000);
      const settledMs = Math.round(monotonicMs() - settling);
      const report = await run.check(setup.client);
      const rejected = run.rejected.length;
      Object.assign(measured, {
        jobsSettledMs: settledMs,
        jobsFailoverMs: failover.ms,
        jobsRestoreMs: restore.ms,
        jobsAccepted: report.accepted,
        jobsRejected: rejected,
        jobsDuplicates: report.duplicates,
      });
      console.log(
        `${kind} jobs: ${report.accepted} performs acknowledged on ${queues.length} queues, ${rejected} rejected ` +
          `(the killed queue until its node was back: ${failover.ms} ms failover + ${restore.ms} ms restore); ` +
          `${report.lost.length} lost, ${report.stuck.length} never completed, ${report.duplicates} ran twice; ` +
          `the last completed ${settledMs} ms after the producer stopped`,
      );
      expect(report.lost).toEqual([]);
      expect(report.stuck).toEqual([]);
      expect(report.violations).toEqual([]);
      expect(report.accepted).toBeGreaterThan(100);
      // The killed queue took performs again once the killed node was back as a replica.
      expect(run.acceptedBetween(first, restoredAt, monotonicMs())).toBeGreaterThan(0);
      if (kind === 'Cluster') {
        // Queues on the other primaries took performs all through the failover.
        for (const queue of queues.slice(1)) expect(run.acceptedBetween(queue, t0, failedOverAt)).toBeGreaterThan(0);
      }
    });

    it('after a failover an idle consumer is woken by the next perform (a message), not by its 30 s idle re-check', async () => {
      const setup = started();
      const keyOf = (name: string): string => `{${name}}`;
      const name = await setup.nameOn('hawake', keyOf);
      const prefix = `hw${Date.now().toString(36)}:`;
      const url = `${setup.url}?syncReplicas=1&prefix=${prefix}&partitions=2&leaseTtlMs=${TTL}`;
      const options = { adapter: { commandTimeoutMs: 1000, connectTimeoutMs: 1000, startTimeoutMs: 60_000 } };
      const consumer = createJobQueue(url, options);
      const producer = createJobQueue(url, { ...options, adapter: { ...options.adapter, enqueueTimeoutMs: 20_000 } });
      closing.push(
        () => consumer.stop({ timeoutMs: 0 }),
        () => producer.stop({ timeoutMs: 0 }),
      );
      consumer.on('error', () => undefined);
      producer.on('error', () => undefined);
      const startedAt = new Map<string, number>();
      consumer.register('wake', (_args, ctx) => void startedAt.set(ctx.id, monotonicMs()), { queue: name });
      await consumer.start();
      const latency = async (): Promise<number> => {
        const at = monotonicMs();
        const { id } = await producer.perform({ handler: 'wake', queue: name });
        await until(() => startedAt.has(id), 60_000, `job ${id} started`);
        return (startedAt.get(id) as number) - at;
      };
      await latency(); // warmed up: the consumer's partitions are idle now
      await sleep(500);
      await setup.killPrimary(`${prefix}{${name}}:jobs`);
      await setup.restore();
      // Let the consumer find its partitions idle on the new primary, then measure perform → start.
      await sleep(3000);
      const after: number[] = [];
      for (let i = 0; i < 5; i++) {
        after.push(Math.round(await latency()));
        await sleep(300);
      }
      measured.wakeAfterFailoverMaxMs = Math.max(...after);
      console.log(`${kind}: perform → start after a failover (ms): ${after.join(', ')}`);
      // A missed wake-up waits for the idle re-check, 30 s.
      expect(Math.max(...after)).toBeLessThan(5000);
    });

    it('loses no acknowledged job with syncReplicas=1 when the primary dies while its replica lags; without it the same fault does', async () => {
      const setup = started();
      const safe = await measureLoss(setup, { syncReplicas: 1, stall: true });
      const unsafe = await measureLoss(setup, { syncReplicas: 0, stall: true });
      for (const run of [safe, unsafe]) {
        console.log(
          `${kind} loss, syncReplicas=${run.syncReplicas}, replica paused ${run.stalledMs} ms ` +
            `(${run.unsentAtKill} bytes unsent at the kill): ${run.acked} acknowledged ` +
            `(${run.ackedWhileStalled} during the pause), ${run.failed} rejected, ${run.lost} lost; ` +
            `failover ${run.failoverMs} ms`,
        );
      }
      Object.assign(measured, { lostWithSync: safe.lost, lostWithoutSync: unsafe.lost });
      expect(safe.lost).toBe(0);
      expect(safe.acked).toBeGreaterThan(100);
      expect(unsafe.lostBeforeFault).toBe(0);
      // The control: replication stream that never left the primary took acknowledged jobs with it.
      if (unsafe.unsentAtKill >= 256 * 1024) expect(unsafe.lost).toBeGreaterThan(0);
    });
  });
}

describeFailover('Cluster', async () => clusterSetup(await startRedisCluster()));
// down-after 2000 ms, not the harness's 1000: with down-after equal to the sentinels' 1 s ping period,
// a sentinel can flag a primary it has just switched to as down before its first PING is answered,
// and fail the healthy primary over again as soon as the restored node is a replica in sync.
describeFailover('Sentinel', async () => sentinelSetup(await startRedisSentinel({ downAfterMs: 2000 })));
