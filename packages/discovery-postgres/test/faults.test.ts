/**
 * Faults of a private PostgreSQL server: a crash (kill -9 of every process)
 * and an immediate restart, a connection cut through a TCP proxy, and a
 * server frozen by SIGSTOP. Tokens never go back, members recover by
 * renewing (or re-registering once their lease ran out meanwhile), watchers
 * get a reset and see later changes again.
 */

import type { DiscoveryEvent } from '@shardwork/core';
import { DiscoveryUnavailableError, LeaseExpiredError } from '@shardwork/core';
import { claimOne, memberInfo, uniqueService } from '@shardwork/core/testing';
import { eventually, type PostgresTestServer, sleep, startPostgres, TcpProxy } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDiscovery, type PostgresDiscoveryOptions } from '../src/index.js';

let server: PostgresTestServer;
const open: PostgresDiscovery[] = [];
const connect = (options: PostgresDiscoveryOptions = {}): PostgresDiscovery => {
  const d = new PostgresDiscovery({ url: server.url, callTimeoutMs: 500, ...options });
  open.push(d);
  return d;
};

beforeAll(async () => {
  server = await startPostgres();
});
afterEach(async () => {
  server.resume();
  await Promise.all(open.splice(0).map((d) => d.close()));
});
afterAll(async () => {
  await server?.stop();
});

/** Retry `call` while the server is unreachable (as the worker does); any other error ends it. */
async function whenUp<T>(call: () => Promise<T>, withinMs = 20_000): Promise<T> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof DiscoveryUnavailableError) || performance.now() > deadline) throw error;
    }
    await sleep(25);
  }
}

describe.each([
  ['a crash (kill -9)', () => server.crash({ downMs: 1500 })],
  ['an immediate restart', () => server.restart({ mode: 'immediate', downMs: 1500 })],
])('%s', (_name, fault) => {
  it('keeps members and claims, tokens increasing, and resets the watchers', async () => {
    const [d, watcher] = [connect(), connect()];
    const svc = uniqueService('crash');
    const m = memberInfo();
    await d.register(svc, m, 20_000);
    const before = await d.claimMany(svc, m.id, [0, 1, 2]);
    const maxBefore = Math.max(...before.results.map((r) => r.token));
    const events: DiscoveryEvent[] = [];
    watcher.watch(svc, (e) => events.push(e));
    await watcher.snapshot(svc);
    // The renewing instance watches too: its first successful call after the outage reconnects its LISTEN at once.
    const own: DiscoveryEvent[] = [];
    d.watch(svc, (e) => own.push(e));
    await d.snapshot(svc);
    const t0 = performance.now();
    const faulted = fault();
    await sleep(100);
    // The member is still there (its lease is timed by the server and outlived the fault) and renews
    // as soon as the server is back (the heartbeats of a worker see the outage the same way).
    await whenUp(() => d.renew(svc, m.id));
    const renewedAt = performance.now();
    await faulted;
    const up = performance.now();
    await eventually(() => expect(own).toContainEqual({ type: 'reset' }), 10_000, 5);
    const ownResetAt = performance.now();
    await eventually(() => expect(events).toContainEqual({ type: 'reset' }), 10_000);
    const resetAt = performance.now();
    console.log(
      `${_name}: fault and start took ${Math.round(up - t0)} ms; after the first renewal that succeeded: ` +
        `reset of the renewing instance ${Math.round(ownResetAt - renewedAt)} ms, of a watch-only instance ${Math.round(resetAt - renewedAt)} ms`,
    );
    // No wait for the listener's backoff (1 s by now) once a call succeeded: it reconnects at once.
    expect(ownResetAt - renewedAt).toBeLessThan(500);
    const snap = await watcher.snapshot(svc);
    expect(snap.members.map((x) => x.id)).toEqual([m.id]);
    expect(snap.claims.map((c) => c.token).sort((a, b) => a - b)).toEqual(before.results.map((r) => r.token));
    // The sequence survived: a new claim's token is above every one before the fault.
    const after = await claimOne(d, svc, m.id, 3);
    expect(after.ok).toBe(true);
    expect(after.token).toBeGreaterThan(maxBefore);
    // And the watch delivers deltas again.
    await eventually(
      () =>
        expect(events.flatMap((e) => e.changes ?? [])).toContainEqual(expect.objectContaining({ type: 'claim:put' })),
      5000,
    );
  });
});

it('lets a lease run out while the server is down, and never resurrects that member', async () => {
  const d = connect();
  const svc = uniqueService('lapse');
  const m = memberInfo();
  await d.register(svc, m, 600);
  const { token } = await claimOne(d, svc, m.id, 0);
  await server.crash({ downMs: 1000 });
  const error = await whenUp(() => d.renew(svc, m.id)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(LeaseExpiredError);
  const again = memberInfo();
  await whenUp(() => d.register(svc, again, 5000));
  const next = await claimOne(d, svc, again.id, 0);
  expect(next.token).toBeGreaterThan(token);
  expect((await d.snapshot(svc)).members.map((x) => x.id)).toEqual([again.id]);
});

describe('behind a TCP proxy', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: server.port });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('fails calls while cut, then reconnects: a reset right after healing, and what was missed is listed', async () => {
    const d = connect({ url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` });
    const writer = connect();
    const svc = uniqueService('cut');
    const events: DiscoveryEvent[] = [];
    d.watch(svc, (e) => events.push(e));
    await d.snapshot(svc);
    proxy.cut();
    const error = await d.snapshot(svc).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryUnavailableError);
    const m = memberInfo();
    await writer.register(svc, m, 10_000); // missed while cut
    await sleep(1500); // the listener's backoff reaches its cap
    events.length = 0;
    proxy.heal();
    const healed = performance.now();
    await eventually(() => expect(events).toContainEqual({ type: 'reset' }), 5000, 5);
    const elapsed = performance.now() - healed;
    console.log(`reset ${Math.round(elapsed)} ms after the cut healed`);
    expect(elapsed).toBeLessThan(2500); // at most the 1 s backoff cap plus a connect, on a loaded machine
    expect((await d.snapshot(svc)).members.map((x) => x.id)).toEqual([m.id]);
    await claimOne(writer, svc, m.id, 0);
    await eventually(
      () =>
        expect(events.flatMap((e) => e.changes ?? [])).toContainEqual(expect.objectContaining({ type: 'claim:put' })),
      3000,
    );
  });
});

it('bounds calls to a frozen server (SIGSTOP) by callTimeoutMs, and works again after SIGCONT', async () => {
  const d = connect();
  const svc = uniqueService('frozen');
  const m = memberInfo();
  await d.register(svc, m, 20_000);
  const events: DiscoveryEvent[] = [];
  d.watch(svc, (e) => events.push(e));
  await d.snapshot(svc);
  server.pause();
  const began = performance.now();
  const error = await d.renew(svc, m.id).catch((e: unknown) => e);
  const took = performance.now() - began;
  server.resume();
  expect(error).toBeInstanceOf(DiscoveryUnavailableError);
  expect(took).toBeGreaterThanOrEqual(400);
  expect(took).toBeLessThan(2500);
  await whenUp(() => d.renew(svc, m.id), 10_000);
  const other = memberInfo();
  await d.register(svc, other, 5000);
  // The LISTEN connection stayed open through the pause: notifications flow again, no reset needed.
  await eventually(
    () =>
      expect(events.flatMap((e) => e.changes ?? [])).toContainEqual(expect.objectContaining({ type: 'member:put' })),
    5000,
  );
});
