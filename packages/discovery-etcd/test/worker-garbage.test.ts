/**
 * Garbage written into a running service's etcd keys, with real Workers: each
 * record is reported (once) and repaired where that is safe, and no shard is
 * left unowned in silence.
 */

import { type DiscoveryListener, type InvalidRecordError, Worker } from '@shardwork/core';
import { uniqueService } from '@shardwork/core/testing';
import { EtcdDiscovery, serviceKeys } from '@shardwork/discovery-etcd';
import { type EtcdCluster, eventually, startEtcd } from '@shardwork/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const SHARDS = 4;
const TTL = 2000;

/** A connection whose watch can go silent without knowing it: once `silent`, no change arrives. */
class DeafWatch extends EtcdDiscovery {
  silent = false;
  override watch(service: string, listener: DiscoveryListener): () => void {
    return super.watch(service, (event) => {
      if (!this.silent) listener(event);
    });
  }
}

describe('garbage in etcd, with running workers', () => {
  let etcd: EtcdCluster;
  let raw: Etcd3;
  const workers: Worker[] = [];
  const connections: EtcdDiscovery[] = [];
  const reports: { key: string; repaired: boolean }[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    raw = new Etcd3({ hosts: etcd.endpoints });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await Promise.all(connections.splice(0).map((c) => c.close()));
    reports.length = 0;
  });
  afterAll(async () => {
    raw.close();
    await etcd.stop();
  });

  const connect = (): EtcdDiscovery => {
    const d = new EtcdDiscovery({ endpoints: etcd.endpoints });
    connections.push(d);
    return d;
  };
  const add = async (service: string, shards = SHARDS, discovery: EtcdDiscovery = connect()): Promise<Worker> => {
    const worker = new Worker({
      service,
      shards,
      leaseTtlMs: TTL,
      discovery,
      handler: (ctx) => new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve())),
    });
    worker.on('record:invalid', ({ error, repaired }: { error: InvalidRecordError; repaired: boolean }) =>
      reports.push({ key: error.key, repaired }),
    );
    worker.on('error', () => undefined);
    workers.push(worker);
    await worker.start();
    return worker;
  };
  const owned = (): number => workers.reduce((n, w) => n + w.status().shards.length, 0);

  it('deletes a claim key overwritten without a lease and owns the shard again, reporting it', async () => {
    const service = uniqueService('garbage');
    const keys = serviceKeys('sw', service);
    await add(service);
    await add(service);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    await raw.put(keys.claim(1)).value('ghost');
    const observer = connect();
    await eventually(async () => {
      const snap = await observer.snapshot(service);
      expect(snap.invalid).toEqual([]);
      expect(snap.claims.map((c) => c.shard).sort()).toEqual([0, 1, 2, 3]);
    }, 10_000);
    expect(reports.filter((r) => r.repaired).map((r) => r.key)).toEqual([keys.claim(1)]);
  });

  /**
   * A claim key of a running owner written over by hand, seen by an owner
   * whose watch went silent without knowing it (a frozen stream): the check
   * in its next renewal notices it, within about a heartbeat (TTL / 3), not
   * at the next version check (30 s).
   */
  const overwriteClaim = async (write: (key: string, other: Worker) => Promise<unknown>) => {
    const service = uniqueService('garbage');
    const keys = serviceKeys('sw', service);
    const deaf = new DeafWatch({ endpoints: etcd.endpoints });
    connections.push(deaf);
    const a = await add(service, SHARDS, deaf);
    const b = await add(service);
    await eventually(() => expect(a.status().shards).toHaveLength(SHARDS / 2), 10_000);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    deaf.silent = true;
    const victim = a.status().shards[0] as { shard: number; token: number };
    const revoked: string[] = [];
    a.on('shard:revoked', ({ shard, token, reason }) => revoked.push(`${shard}:${token}:${reason}`));
    const began = performance.now();
    await write(keys.claim(victim.shard), b);
    await eventually(() => expect(revoked).toEqual([`${victim.shard}:${victim.token}:claim-lost`]), 10_000, 5);
    const tookMs = performance.now() - began;
    expect(tookMs).toBeLessThan(TTL);
    expect(a.status().shards.map((s) => s.shard)).not.toContain(victim.shard);
    return { service, victim };
  };

  it('makes an owner with a silent watch drop a claim overwritten with garbage at its next renewal', async () => {
    const { service } = await overwriteClaim((key) => raw.put(key).value('ghost').exec());
    const observer = connect();
    await eventually(async () => {
      const snap = await observer.snapshot(service);
      expect(snap.invalid).toEqual([]);
      expect(snap.claims.map((c) => c.shard).sort()).toEqual([0, 1, 2, 3]);
    }, 10_000);
  });

  it('makes an owner with a silent watch drop a claim overwritten with another member’s id', async () => {
    await overwriteClaim(async (key, other) => {
      const id = other.status().instance as string;
      const [member] = (await raw.getAll().prefix(serviceKeys('sw', '').root).exec()).kvs.filter((kv) =>
        kv.key.toString().endsWith(`/members/${encodeURIComponent(id)}`),
      );
      // Bound to that member's lease: a claim shardwork could have written, for the wrong member.
      return raw.put(key).value(id).lease(String(member?.lease)).exec();
    });
  });

  it('rewrites an unparsable group record from the value the live replicas agree on', async () => {
    const service = uniqueService('garbage');
    const keys = serviceKeys('sw', service);
    await add(service);
    await raw.put(keys.meta).value('{"shardCount":"four"');
    await add(service);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    expect(reports.some((r) => r.repaired && r.key === keys.meta)).toBe(true);
    expect(JSON.parse((await raw.get(keys.meta).string()) ?? '{}')).toMatchObject({ shardCount: SHARDS });
  });

  it('refuses to rewrite it for a replica that disagrees', async () => {
    const service = uniqueService('garbage');
    const keys = serviceKeys('sw', service);
    // The running replica must not see the garbage: it would rewrite the record itself (the case
    // above) between the newcomer's refusal and the read below.
    const deaf = new DeafWatch({ endpoints: etcd.endpoints });
    connections.push(deaf);
    await add(service, SHARDS, deaf);
    deaf.silent = true;
    await raw.put(keys.meta).value('not json');
    await expect(add(service, SHARDS * 2)).rejects.toThrow(/not rewritten/);
    expect(await raw.get(keys.meta).string()).toBe('not json');
  });
});
