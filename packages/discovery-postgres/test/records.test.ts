/**
 * Garbage in the tables (rows written by hand or by a foreign writer):
 * reported with the record's name and what is wrong, never fatal, and
 * repaired where that is safe: a claim in the way of a claim is deleted and
 * the shard claimed; a notification that does not parse is a hint.
 */

import type { DiscoveryEvent } from '@shardwork/core';
import { claimOne, memberInfo, uniqueService } from '@shardwork/core/testing';
import { eventually } from '@shardwork/testkit';
import { describe, expect, it } from 'vitest';
import { systemPostgres, uniqueSchema } from './support.js';

const schema = uniqueSchema('records');
const { connect, admin } = systemPostgres(schema);
const t = `"${schema}"`;

describe('garbage rows', () => {
  it('lists a member row that does not parse and the claims of non-members as invalid, keeping the rest', async () => {
    const d = connect();
    const svc = uniqueService('list');
    const records = d.records(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    const own = await claimOne(d, svc, m.id, 0);
    const insertMember = `INSERT INTO ${t}.members (service, id, record, join_seq, ttl_ms, expires_at) VALUES ($1, $2, $3, $4, 60000, clock_timestamp() + interval '1 minute')`;
    await admin.query(insertMember, [svc, 'm-json', '{not json', 1]);
    await admin.query(insertMember, [svc, 'm-id', JSON.stringify({ ...memberInfo(), id: 'other' }), 2]);
    const insertClaim = `INSERT INTO ${t}.claims (service, shard, owner, token) VALUES ($1, $2, $3, $4)`;
    await admin.query(insertClaim, [svc, 1, 'm-ghost', 5]);
    await admin.query(insertClaim, [svc, 2, '', 6]);
    await admin.query(insertClaim, [svc, 3, m.id, -4]);
    await admin.query(insertClaim, [svc, 4, 'm-json', 7]); // a member whose record is garbage is no live member
    const snap = await d.snapshot(svc);
    expect(snap.members.map((x) => x.id)).toEqual([m.id]);
    expect(snap.claims).toEqual([{ shard: 0, owner: m.id, token: own.token }]);
    const reasons = Object.fromEntries(snap.invalid.map((r) => [r.key, r.reason]));
    expect(reasons).toEqual({
      [records.member('m-json')]: expect.stringMatching(/^member record is not JSON/),
      [records.member('m-id')]: 'member record id "other" does not match its key',
      [records.claim(1)]: 'claim owner "m-ghost" is not a live member',
      [records.claim(2)]: 'claim has an empty owner',
      [records.claim(3)]: 'claim token -4 is not a positive safe integer',
      [records.claim(4)]: 'claim owner "m-json" is not a live member',
    });
  });

  it('deletes garbage claims in the way of a claim, reports each once, and claims the shards with new tokens', async () => {
    const [d, watcher] = [connect(), connect()];
    const svc = uniqueService('repair');
    const records = d.records(svc);
    const m = memberInfo();
    await d.register(svc, m, 5000);
    const first = await claimOne(d, svc, m.id, 0);
    const insertClaim = `INSERT INTO ${t}.claims (service, shard, owner, token) VALUES ($1, $2, $3, $4)`;
    await admin.query(insertClaim, [svc, 1, 'm-ghost', 99]);
    await admin.query(insertClaim, [svc, 2, m.id, 0]);
    const events: DiscoveryEvent[] = [];
    watcher.watch(svc, (e) => events.push(e));
    await watcher.snapshot(svc);
    const batch = await d.claimMany(svc, m.id, [1, 2, 3]);
    expect(batch.results.every((r) => r.ok)).toBe(true);
    for (const r of batch.results) expect(r.token).toBeGreaterThan(first.token);
    expect(batch.repaired).toEqual([
      { key: records.claim(1), reason: 'claim owner "m-ghost" is not a live member' },
      { key: records.claim(2), reason: 'claim token 0 is not a positive safe integer' },
    ]);
    expect((await d.claimMany(svc, m.id, [1, 2])).repaired).toEqual([]);
    const snap = await d.snapshot(svc);
    expect(snap.invalid).toEqual([]);
    expect(snap.claims.map((c) => c.shard).sort()).toEqual([0, 1, 2, 3]);
    // Watchers see the new claims as deltas.
    await eventually(() => expect(events.flatMap((e) => e.changes ?? [])).toHaveLength(3), 3000);
  });

  it('changes nothing (no revision) for a batch that finds every shard held', async () => {
    const [d, other] = [connect(), connect()];
    const svc = uniqueService('held');
    const [m, n] = [memberInfo(), memberInfo()];
    await d.register(svc, m, 5000);
    await other.register(svc, n, 5000);
    const held = await claimOne(other, svc, n.id, 5);
    const before = await d.version(svc);
    const batch = await d.claimMany(svc, m.id, [5]);
    expect(batch).toEqual({ results: [{ ok: false, owner: n.id, token: held.token }], repaired: [] });
    expect(await d.version(svc)).toBe(before);
  });
});

describe('garbage notifications', () => {
  it('turns a payload that is not ours, or a change that does not parse, into a hint', async () => {
    const d = connect();
    const svc = uniqueService('payload');
    const channel = d.records(svc).channel;
    const events: DiscoveryEvent[] = [];
    d.watch(svc, (e) => events.push(e));
    await d.snapshot(svc);
    await admin.query('SELECT pg_notify($1, $2)', [channel, 'not json']);
    const bad = JSON.stringify({ p: '99999990', r: '99999991', c: [['m+', 'x', '{"id":"x"}', '1', false, 1000]] });
    await admin.query('SELECT pg_notify($1, $2)', [channel, bad]);
    await eventually(() => expect(events).toHaveLength(2), 3000);
    expect(events).toEqual([{ type: 'change' }, { type: 'change', revision: '99999991', previous: '99999990' }]);
  });
});
