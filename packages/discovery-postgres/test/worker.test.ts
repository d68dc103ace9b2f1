/**
 * Real Workers on the PostgreSQL backend: shards split and handed over,
 * garbage written into a running service's tables reported (once, through
 * the worker's `record:invalid`) and repaired where that is safe, with no
 * shard left unowned in silence.
 */

import { type InvalidRecordError, Worker } from '@shardwork/core';
import { uniqueService } from '@shardwork/core/testing';
import { eventually } from '@shardwork/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { PostgresDiscovery } from '../src/index.js';
import { systemPostgres, uniqueSchema } from './support.js';

const SHARDS = 4;
const TTL = 2000;
const schema = uniqueSchema('worker');
const { connect, admin } = systemPostgres(schema);
const t = `"${schema}"`;

const workers: Worker[] = [];
const reports: { key: string; repaired: boolean }[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  reports.length = 0;
});

async function add(service: string, discovery: PostgresDiscovery = connect()): Promise<Worker> {
  const worker = new Worker({
    service,
    shards: SHARDS,
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
}
const owned = (): number => workers.reduce((n, w) => n + w.status().shards.length, 0);

describe('workers on PostgreSQL', () => {
  it('split the shards, and hand them over on a graceful stop within a fraction of the TTL', async () => {
    const service = uniqueService('split');
    const [a, b] = [await add(service), await add(service)];
    await eventually(() => expect([a.status().shards.length, b.status().shards.length]).toEqual([2, 2]), 10_000);
    const began = performance.now();
    await b.stop();
    await eventually(() => expect(a.status().shards).toHaveLength(SHARDS), 5000, 5);
    const took = performance.now() - began;
    console.log(`graceful handover: ${Math.round(took)} ms`);
    expect(took).toBeLessThan(TTL);
  });

  it('reports a claim overwritten by hand, and owns the shard again with a new token', async () => {
    const service = uniqueService('overwrite');
    await add(service);
    await add(service);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    const before = await connect().snapshot(service);
    const old = before.claims.find((c) => c.shard === 1);
    await admin.query(`UPDATE ${t}.claims SET owner = 'ghost' WHERE service = $1 AND shard = 1`, [service]);
    const observer = connect();
    await eventually(async () => {
      const snap = await observer.snapshot(service);
      const claim = snap.claims.find((c) => c.shard === 1);
      expect(claim?.token).toBeGreaterThan(old?.token ?? Number.POSITIVE_INFINITY);
      expect(snap.invalid).toEqual([]);
    }, 10_000);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    expect(reports).toContainEqual({ key: observer.records(service).claim(1), repaired: true });
  });

  it('reports a member row that does not parse once, and keeps working', async () => {
    const service = uniqueService('member');
    await add(service);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    await admin.query(
      `INSERT INTO ${t}.members (service, id, record, join_seq, ttl_ms, expires_at)
       VALUES ($1, 'm-bad', '{not json', 1, 60000, clock_timestamp() + interval '1 minute')`,
      [service],
    );
    await add(service); // a listing by the newcomer, and a change that makes the first re-list
    await eventually(() => expect(reports.filter((r) => r.key.endsWith('/m-bad'))).not.toHaveLength(0), 10_000);
    expect(reports.every((r) => !r.repaired)).toBe(true);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
  });

  it('repairs a garbage group record when the live members agree', async () => {
    const service = uniqueService('group');
    const a = await add(service);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    await admin.query(`UPDATE ${t}.services SET settings = 'garbage' WHERE service = $1`, [service]);
    await add(service);
    const key = connect().records(service).group;
    // Both fields of the record, reported by the replica that repaired them.
    expect(reports.filter((r) => r.key === key && r.repaired)).toHaveLength(2);
    expect((await connect().snapshot(service)).shardCount).toBe(SHARDS);
    await eventually(() => expect(owned()).toBe(SHARDS), 10_000);
    expect(a.status().shards.length).toBeGreaterThan(0);
  });
});
