import { compilePeriodic, planTicks, type TickPlan, TickPump, type TickWriteResult } from '@shardwork/jobs/adapter';
import { describe, expect, it } from 'vitest';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const s = (n: number): number => T0 + n * 1000;
const everySecond = (catchUp: 'skip' | 'once' | 'all', horizonMs = 60_000) =>
  compilePeriodic('tick', '* * * * * *', { handler: 'tick' }, { catchUp, horizonMs });

describe('planTicks: which ticks a schedule owner enqueues', () => {
  it('a schedule that never ran catches nothing up and enqueues the live ticks from its takeover on', () => {
    expect(planTicks(everySecond('all'), { last: undefined, since: s(10) }, s(10))).toEqual({
      ticks: [],
      skipTo: undefined,
    });
    expect(planTicks(everySecond('all'), { last: undefined, since: s(10) + 500 }, s(12))).toEqual({
      ticks: [s(11), s(12)],
      skipTo: undefined,
    });
  });

  it.each([
    ['all', [s(4), s(5), s(6)], undefined],
    ['once', [s(6)], undefined],
    ['skip', [], s(6)],
  ] as const)('ticks missed while nobody owned the schedule follow catchUp %s', (catchUp, ticks, skipTo) => {
    // Recorded up to 3 s; taken over at 6.5 s; asked at the takeover.
    expect(planTicks(everySecond(catchUp), { last: s(3), since: s(6) + 500 }, s(6) + 500)).toEqual({ ticks, skipTo });
  });

  it('every live tick is enqueued whatever catchUp says, also several at once after a pause or a failed write', () => {
    for (const catchUp of ['skip', 'once', 'all'] as const) {
      // Took over at 10.5 s and recorded 11 s; paused until 14.2 s: 12, 13 and 14 are all due.
      expect(planTicks(everySecond(catchUp), { last: s(11), since: s(10) + 500 }, s(14) + 200).ticks).toEqual([
        s(12),
        s(13),
        s(14),
      ]);
    }
  });

  it('a ticker that fires a little early still gets its tick (until is the nominal time)', () => {
    expect(planTicks(everySecond('once'), { last: s(4), since: s(1) }, s(5)).ticks).toEqual([s(5)]);
  });

  it('nothing older than horizonMs is caught up', () => {
    const plan = planTicks(everySecond('all', 3000), { last: s(0), since: s(10) }, s(10));
    expect(plan.ticks).toEqual([s(8), s(9), s(10)]);
  });

  it('missed and live ticks never overlap: a tick at the takeover instant is a missed one', () => {
    const plan = planTicks(everySecond('all'), { last: s(1), since: s(3) }, s(5));
    expect(plan.ticks).toEqual([s(2), s(3), s(4), s(5)]);
    expect(planTicks(everySecond('once'), { last: s(1), since: s(3) }, s(5)).ticks).toEqual([s(3), s(4), s(5)]);
  });
});

describe('TickPump: one write at a time, the cursor moves only on a confirmed write', () => {
  function pump(results: TickWriteResult[], catchUp: 'skip' | 'once' | 'all' = 'all', last?: number) {
    const written: TickPlan[] = [];
    let now = s(10) + 100;
    let release: (() => void) | undefined;
    let hold = false;
    const p = new TickPump({
      periodic: everySecond(catchUp),
      cursor: { last, since: s(10) },
      write: async (plan) => {
        written.push(plan);
        if (hold) await new Promise<void>((resolve) => (release = resolve));
        return results.shift() ?? 'ok';
      },
      onError: (error) => {
        throw error;
      },
      now: () => now,
    });
    return {
      p,
      written,
      at: (ms: number) => {
        now = ms;
      },
      hold: () => {
        hold = true;
      },
      release: () => {
        hold = false;
        release?.();
      },
    };
  }

  it('a failed write is sent again with the next tick; nothing is lost or sent twice', async () => {
    const t = pump(['ok', 'failed', 'ok', 'ok'], 'all', s(7));
    await t.p.fire(); // catch-up of 8, 9, 10
    t.at(s(11) + 5);
    await t.p.fire(s(11)); // fails
    t.at(s(12) + 5);
    await t.p.fire(s(12)); // 11 again, with 12
    t.at(s(13) + 5);
    await t.p.fire(s(13));
    expect(t.written.map((w) => w.ticks)).toEqual([[s(8), s(9), s(10)], [s(11)], [s(11), s(12)], [s(13)]]);
    expect(t.p.last).toBe(s(13));
  });

  it('ticks that fire while a write is in flight go out once it ended, in one write', async () => {
    const t = pump([], 'once', undefined);
    t.at(s(11) + 5);
    t.hold();
    const first = t.p.fire(s(11));
    t.at(s(12) + 5);
    void t.p.fire(s(12));
    t.at(s(13) + 5);
    void t.p.fire(s(13));
    t.release();
    await first;
    expect(t.written.map((w) => w.ticks)).toEqual([[s(11)], [s(12), s(13)]]);
  });

  it('a stale write (a newer owner) stops the pump', async () => {
    const t = pump(['stale'], 'all', s(9));
    await t.p.fire();
    t.at(s(12));
    await t.p.fire(s(12));
    expect(t.written).toHaveLength(1);
  });

  it('skip records the newest missed tick without a job, then follows the live ones', async () => {
    const t = pump([], 'skip', s(5));
    await t.p.fire();
    t.at(s(11) + 1);
    await t.p.fire(s(11));
    expect(t.written).toEqual([
      { ticks: [], skipTo: s(10) },
      { ticks: [s(11)], skipTo: undefined },
    ]);
  });
});
