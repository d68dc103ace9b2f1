import { describe, expect, it } from 'vitest';
import { type ChaosEvent, formatEvent, makeSchedule, mulberry32 } from './schedule.js';

/** Replay a schedule and return per-instant facts to check its guarantees. */
function replay(events: readonly ChaosEvent[], replicas: number) {
  const state = Array.from({ length: replicas }, () => 'up' as 'up' | 'down' | 'paused' | 'cut');
  let minHealthy = replicas;
  for (const e of events) {
    switch (e.kind) {
      case 'start':
        expect(state[e.replica], formatEvent(e)).toBe('down');
        state[e.replica] = 'up';
        break;
      case 'stop':
      case 'kill':
        expect(state[e.replica], formatEvent(e)).toBe('up');
        state[e.replica] = 'down';
        break;
      case 'pause':
        expect(state[e.replica], formatEvent(e)).toBe('up');
        state[e.replica] = 'paused';
        break;
      case 'resume':
        expect(state[e.replica], formatEvent(e)).toBe('paused');
        state[e.replica] = 'up';
        break;
      case 'cut':
        expect(state[e.replica], formatEvent(e)).toBe('up');
        state[e.replica] = 'cut';
        break;
      case 'heal':
        expect(state[e.replica], formatEvent(e)).toBe('cut');
        state[e.replica] = 'up';
        break;
      case 'restart-backend':
        break;
    }
    minHealthy = Math.min(minHealthy, state.filter((s) => s === 'up').length);
  }
  return { state, minHealthy };
}

describe('mulberry32', () => {
  it('is deterministic per seed and spreads over [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.filter((x) => x < 0.5).length).toBeGreaterThan(400);
    expect(mulberry32(43)()).not.toBe(mulberry32(42)());
  });
});

describe('makeSchedule', () => {
  it('gives the same schedule for the same seed, another for another seed', () => {
    const one = makeSchedule(1234, 60_000);
    expect(makeSchedule(1234, 60_000)).toEqual(one);
    expect(makeSchedule(1235, 60_000)).not.toEqual(one);
    expect(one.length).toBeGreaterThan(15);
  });

  it.each([1, 7, 42, 1234, 99_991, 2 ** 31 + 5])('keeps its guarantees for seed %i', (seed) => {
    const ttlMs = 1500;
    const durationMs = 60_000;
    const events = makeSchedule(seed, durationMs, { ttlMs, minHealthy: 2 });
    // Sorted, indexed, inside the run.
    events.forEach((e, i) => {
      expect(e.index).toBe(i);
      expect(e.at).toBeGreaterThan(0);
      expect(e.at).toBeLessThanOrEqual(durationMs - 1000);
      if (i > 0) expect(e.at).toBeGreaterThanOrEqual((events[i - 1] as ChaosEvent).at);
    });
    // Pairing and the healthy floor.
    const { state, minHealthy } = replay(events, 6);
    expect(minHealthy).toBeGreaterThanOrEqual(2);
    expect(state.filter((s) => s === 'paused' || s === 'cut')).toEqual([]);
    for (const e of events) {
      if (e.kind !== 'pause' && e.kind !== 'cut') continue;
      const endKind = e.kind === 'pause' ? 'resume' : 'heal';
      const end = events.find((x) => x.index > e.index && 'replica' in x && x.replica === e.replica);
      expect(end?.kind, formatEvent(e)).toBe(endKind);
      expect(end?.at).toBe(e.at + e.forMs);
    }
    // Pauses on both sides of the TTL, restarts spread out.
    const pauses = events.flatMap((e) => (e.kind === 'pause' ? [e.forMs] : []));
    if (pauses.length >= 2) {
      expect(pauses.some((ms) => ms < ttlMs)).toBe(true);
      expect(pauses.some((ms) => ms > ttlMs)).toBe(true);
    }
    const restarts = events.filter((e) => e.kind === 'restart-backend').map((e) => e.at);
    expect(restarts).toHaveLength(3);
    for (let i = 1; i < restarts.length; i++)
      expect((restarts[i] as number) - (restarts[i - 1] as number)).toBeGreaterThan(5000);
    const kinds = new Set(events.map((e) => e.kind));
    for (const kind of ['stop', 'start', 'kill', 'pause', 'cut'] as const) expect(kinds, kind).toContain(kind);
  });

  it('honours options and formats events for logs', () => {
    const events = makeSchedule(5, 20_000, { replicas: 3, minHealthy: 1, backendRestarts: 2, ttlMs: 1000 });
    expect(events.filter((e) => e.kind === 'restart-backend')).toHaveLength(2);
    expect(replay(events, 3).minHealthy).toBeGreaterThanOrEqual(1);
    expect(formatEvent({ index: 3, at: 12_345, kind: 'kill', replica: 2 })).toBe('#3 +12.345s kill r2');
    expect(formatEvent({ index: 4, at: 500, kind: 'cut', replica: 1, forMs: 900, mode: 'blackhole' })).toBe(
      '#4 +0.500s cut r1 (blackhole) for 900 ms',
    );
    expect(() => makeSchedule(1, 10_000, { replicas: 2, minHealthy: 2 })).toThrow(RangeError);
  });
});
