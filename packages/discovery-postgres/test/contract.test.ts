/**
 * The PostgreSQL backend's side of the contract beyond the conformance
 * suite: the group record, deltas with a revision chain, a gap that makes a
 * view re-list, expiries announced by the timer, silence while idle (no
 * statement but heartbeats: NOTIFY, no polling), renewals that find claims
 * written over by hand, and a reset after the LISTEN connection is lost.
 */

import { randomBytes } from 'node:crypto';
import type { DiscoveryChange, DiscoveryEvent } from '@shardwork/core';
import { LeaseExpiredError } from '@shardwork/core';
import { claimOne, memberInfo, releaseOne, uniqueService } from '@shardwork/core/testing';
import { eventually, sleep } from '@shardwork/testkit';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PostgresDiscovery } from '../src/index.js';
import { SYSTEM_HOST, systemPostgres, uniqueSchema } from './support.js';

const schema = uniqueSchema('contract');
const { connect, admin } = systemPostgres(schema);
const GROUP = { shardCount: 8, leaseTtlMs: 3000 };

afterEach(() => {
  vi.restoreAllMocks();
});

/** The changes of events in a compact, comparable form. */
function describeChange(change: DiscoveryChange): string {
  switch (change.type) {
    case 'member:put':
      return `member:put ${change.member.id}${change.member.draining === true ? ' draining' : ''}`;
    case 'member:removed':
      return `member:removed ${change.id}`;
    case 'claim:put':
      return `claim:put ${change.claim.shard} ${change.claim.owner} ${change.claim.token}`;
    case 'claim:removed':
      return `claim:removed ${change.shard} ${'token' in change ? change.token : `<${change.tokenBelow}`}`;
  }
}

/** Watch `svc` on `d`, wait until the LISTEN is live, and list: the events and the listed revision. */
async function follow(d: PostgresDiscovery, svc: string): Promise<{ events: DiscoveryEvent[]; listed: string }> {
  const events: DiscoveryEvent[] = [];
  d.watch(svc, (e) => events.push(e));
  return { events, listed: (await d.snapshot(svc)).revision };
}

describe('ensureGroup', () => {
  it('stores the first settings, completes a record without leaseTtlMs, and keeps other fields', async () => {
    const d = connect();
    const svc = uniqueService('group');
    expect(await d.ensureGroup(svc, GROUP)).toEqual({ ...GROUP, invalid: [], repaired: [] });
    expect(await d.ensureGroup(svc, { shardCount: 4, leaseTtlMs: 1000 })).toMatchObject(GROUP);
    const legacy = uniqueService('legacy');
    await d.ensureGroup(legacy, GROUP);
    await admin.query(`UPDATE "${schema}".services SET settings = $2 WHERE service = $1`, [
      legacy,
      JSON.stringify({ shardCount: 4, future: 'x' }),
    ]);
    expect(await d.ensureGroup(legacy, GROUP)).toEqual({ shardCount: 4, leaseTtlMs: 3000, invalid: [], repaired: [] });
    const { rows } = await admin.query(`SELECT settings FROM "${schema}".services WHERE service = $1`, [legacy]);
    expect(JSON.parse(rows[0].settings)).toEqual({ shardCount: 4, future: 'x', leaseTtlMs: 3000 });
    expect(await d.services()).toEqual(expect.arrayContaining([svc, legacy]));
  });

  it('reports a garbage field, replaces it only with replaceInvalid, and only one of two racing callers reports it', async () => {
    const [a, b] = [connect(), connect()];
    const svc = uniqueService('badmeta');
    const key = a.records(svc).group;
    await a.ensureGroup(svc, GROUP);
    await admin.query(`UPDATE "${schema}".services SET settings = 'eight' WHERE service = $1`, [svc]);
    const seen = await a.ensureGroup(svc, GROUP);
    expect(seen).toMatchObject({ shardCount: undefined, leaseTtlMs: undefined, repaired: [] });
    expect(seen.invalid).toEqual([
      { key, reason: 'group record is not a JSON object, so shardCount cannot be read' },
      { key, reason: 'group record is not a JSON object, so leaseTtlMs cannot be read' },
    ]);
    const snap = await a.snapshot(svc);
    expect(snap.shardCount).toBeUndefined();
    expect(snap.invalid.map((r) => r.key)).toEqual([key]);
    const both = await Promise.all([
      a.ensureGroup(svc, GROUP, { replaceInvalid: true }),
      b.ensureGroup(svc, GROUP, { replaceInvalid: true }),
    ]);
    for (const stored of both) expect(stored).toMatchObject({ ...GROUP, invalid: [] });
    expect(both.flatMap((s) => s.repaired)).toHaveLength(2);
    expect(both.filter((s) => s.repaired.length > 0)).toHaveLength(1);
    expect((await a.snapshot(svc)).invalid).toEqual([]);
  });
});

describe('deltas', () => {
  it('announces exactly the changes of another connection, in order, with a chain of revisions', async () => {
    const [a, b] = [connect(), connect()];
    const svc = uniqueService('deltas');
    await b.ensureGroup(svc, GROUP);
    const { events, listed } = await follow(a, svc);
    const m1 = memberInfo({ labels: { zone: 'a"b' } });
    const m2 = memberInfo();
    const r1 = await b.register(svc, m1, 5000);
    await b.register(svc, m2, 5000);
    const { results } = await b.claimMany(svc, m1.id, [0, 1, 2]);
    const t = results.map((r) => r.token);
    await releaseOne(b, svc, m1.id, 1, t[1] ?? -1);
    await b.drain(svc, m1.id);
    await b.drain(svc, m1.id); // changes nothing: no event
    await b.unregister(svc, m1.id);
    await eventually(() => expect(events).toHaveLength(6), 3000);
    expect(events.map((e) => (e.changes ?? []).map(describeChange))).toEqual([
      [`member:put ${m1.id}`],
      [`member:put ${m2.id}`],
      expect.arrayContaining([
        `claim:put 0 ${m1.id} ${t[0]}`,
        `claim:put 1 ${m1.id} ${t[1]}`,
        `claim:put 2 ${m1.id} ${t[2]}`,
      ]),
      [`claim:removed 1 ${t[1]}`],
      [`member:put ${m1.id} draining`],
      [`member:removed ${m1.id}`],
    ]);
    expect(events[0]?.previous).toBe(listed);
    for (let i = 1; i < events.length; i++) expect(events[i]?.previous).toBe(events[i - 1]?.revision);
    for (const e of events) expect(BigInt(e.revision ?? '0')).toBeGreaterThan(BigInt(e.previous ?? '0'));
    expect(events.at(-1)?.revision).toBe((await a.snapshot(svc)).revision);
    expect(events[0]?.changes?.[0]).toEqual({ type: 'member:put', member: { ...m1, joinSeq: r1.joinSeq } });
    // Revisions and tokens start at the server's time in µs (see migrations.ts), and stay exact.
    expect(Number(listed)).toBeGreaterThan(2 ** 50);
    expect(t[0]).toBeGreaterThan(2 ** 50);
    expect(Number.isSafeInteger(t[2])).toBe(true);
    await sleep(200);
    expect(events).toHaveLength(6);
  });

  it('shows a missed change as a gap, and a view re-lists on it', async () => {
    const [a, b] = [connect(), connect()];
    const svc = uniqueService('gap');
    const m = memberInfo();
    await b.register(svc, m, 5000);
    const { events, listed } = await follow(a, svc);
    // A change whose notification is lost: the revision moves, nothing is sent.
    await admin.query(
      `UPDATE "${schema}".services SET revision = nextval('"${schema}".revisions') WHERE service = $1`,
      [svc],
    );
    await claimOne(b, svc, m.id, 0);
    await eventually(() => expect(events).toHaveLength(1), 3000);
    // The contract: a listener at revision r re-lists when previous > r.
    expect(BigInt(events[0]?.previous ?? '0')).toBeGreaterThan(BigInt(listed));
    expect(events[0]?.changes?.map(describeChange)).toEqual([expect.stringMatching(/^claim:put 0 /)]);
    const relisted = await a.snapshot(svc);
    expect(relisted.revision).toBe(events[0]?.revision);
    expect(relisted.claims.map((c) => c.shard)).toEqual([0]);
  });

  it('sends a hint instead of changes too big for one notification', async () => {
    const [a, b] = [connect(), connect()];
    const svc = uniqueService('big');
    const m = memberInfo();
    await b.register(svc, m, 5000);
    const { events } = await follow(a, svc);
    const batch = await b.claimMany(
      svc,
      m.id,
      Array.from({ length: 600 }, (_, i) => i),
    );
    expect(batch.results.every((r) => r.ok)).toBe(true);
    expect(new Set(batch.results.map((r) => r.token)).size).toBe(600);
    await eventually(() => expect(events).toHaveLength(1), 3000);
    expect(events[0]).toEqual({ type: 'change', revision: expect.any(String), previous: expect.any(String) });
  });
});

describe('expiry', () => {
  it('announces a crashed member and its claims by the timer, with nobody listing', async () => {
    const [a, b] = [connect(), connect()];
    const svc = uniqueService('expiry');
    const { events } = await follow(a, svc);
    const crashed = memberInfo();
    await b.register(svc, crashed, 500);
    const registeredAt = performance.now();
    const { results } = await b.claimMany(svc, crashed.id, [0, 1]);
    await b.close(); // no unregister: a crash
    const removed = await eventually(
      () => {
        const event = events.find((e) => e.changes?.some((c) => c.type === 'member:removed'));
        if (event === undefined) throw new Error('not yet');
        return { event, at: performance.now() };
      },
      5000,
      5,
    );
    expect(removed.event.changes).toEqual([{ type: 'member:removed', id: crashed.id }]);
    const delay = removed.at - registeredAt;
    console.log(`expiry announced ${Math.round(delay - 500)} ms after the lease ran out`);
    expect(delay).toBeGreaterThanOrEqual(480);
    expect(delay).toBeLessThan(500 + 1000);
    const snap = await a.snapshot(svc);
    expect(snap.members).toEqual([]);
    expect(snap.claims).toEqual([]);
    expect(results.every((r) => r.ok)).toBe(true);
  });

  it('never resurrects an expired member that nobody reaped yet', async () => {
    const d = connect();
    const svc = uniqueService('zombie');
    const m = memberInfo();
    await d.register(svc, m, 200);
    await sleep(400);
    await expect(d.renew(svc, m.id)).rejects.toBeInstanceOf(LeaseExpiredError);
    await expect(d.drain(svc, m.id)).rejects.toBeInstanceOf(LeaseExpiredError);
    await expect(d.claimMany(svc, m.id, [0])).rejects.toBeInstanceOf(LeaseExpiredError);
    expect((await d.snapshot(svc)).members).toEqual([]);
  });
});

describe('steady state', () => {
  it('sends nothing but heartbeats while a watched service is idle (NOTIFY, no polling)', async () => {
    const ttl = 1200;
    const svc = uniqueService('idle');
    const replicas = [connect(), connect(), connect()];
    const members = replicas.map(() => memberInfo());
    for (const [i, d] of replicas.entries()) {
      await d.register(svc, members[i] ?? memberInfo(), ttl);
      await follow(d, svc);
    }
    const beat = () => Promise.all(replicas.map((d, i) => d.renew(svc, members[i]?.id ?? '')));
    await beat();
    await sleep(100); // the watches' first reaps are done
    const statements = vi.spyOn(pg.Client.prototype, 'query');
    let heartbeats = 0;
    for (let i = 0; i < 12; i += 1) {
      await sleep(ttl / 3);
      await beat();
      heartbeats += replicas.length;
    }
    // 4 TTLs, 12 heartbeat rounds: one statement per heartbeat, nothing else (each reply re-arms
    // the expiry timer: the other leases keep at least 2/3 TTL, so it never fires).
    expect(statements).toHaveBeenCalledTimes(heartbeats);
    statements.mockRestore();
    expect((await replicas[0]?.snapshot(svc))?.members).toHaveLength(3);
  });
});

describe('renew with held claims', () => {
  it('finds a claim written over by hand and makes every watcher re-list', async () => {
    const [d, watcher] = [connect(), connect()];
    const svc = uniqueService('held');
    const m = memberInfo();
    await d.register(svc, m, 5000);
    const { results } = await d.claimMany(svc, m.id, [0, 1]);
    const [t0, t1] = results.map((r) => r.token) as [number, number];
    const { events } = await follow(watcher, svc);
    const before = await d.version(svc);
    await admin.query(`UPDATE "${schema}".claims SET owner = 'somebody' WHERE service = $1 AND shard = 1`, [svc]);
    expect(await d.version(svc)).toBe(before); // the hand edit alone tells nobody
    const held = [
      { shard: 0, token: t0 },
      { shard: 1, token: t1 },
    ];
    expect(await d.renew(svc, m.id, held)).toEqual({ lost: [{ shard: 1, token: t1 }] });
    expect(await d.version(svc)).not.toBe(before);
    // A hint: revisions without changes.
    await eventually(
      () => expect(events).toEqual([{ type: 'change', revision: expect.any(String), previous: expect.any(String) }]),
      3000,
    );
    const quiet = await d.version(svc);
    expect(await d.renew(svc, m.id, held.slice(0, 1))).toEqual({ lost: [] });
    expect(await d.version(svc)).toBe(quiet);
  });
});

describe('the LISTEN connection', () => {
  it('announces a reset when it is lost and listened again, and delivers changes after', async () => {
    const app = `swd-${randomBytes(4).toString('hex')}`;
    const d = connect({ url: `postgres://postgres@${SYSTEM_HOST}/test?application_name=${app}` });
    const writer = connect();
    const svc = uniqueService('reset');
    const { events } = await follow(d, svc);
    const killed = await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
      [app],
    );
    expect(killed.rowCount).toBe(1);
    const m = memberInfo();
    await writer.register(svc, m, 5000); // may be missed: the reset covers it
    await eventually(() => expect(events).toContainEqual({ type: 'reset' }), 5000);
    expect((await d.snapshot(svc)).members.map((x) => x.id)).toEqual([m.id]);
    const claim = await claimOne(writer, svc, m.id, 3);
    await eventually(
      () =>
        expect(events.flatMap((e) => e.changes ?? []).map(describeChange)).toContain(
          `claim:put 3 ${m.id} ${claim.token}`,
        ),
      3000,
    );
  });
});
