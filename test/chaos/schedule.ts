/**
 * Seeded chaos schedules: a small PRNG and a pure {@link makeSchedule} that
 * turns `(seed, durationMs, options)` into a timed list of fault events. The
 * same arguments always give the same schedule, so a failing seed replays.
 *
 * @module
 */

/** mulberry32: a tiny, fast 32-bit PRNG; good enough to pick faults, not for crypto. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What an event does to a replica slot (or to the backend). */
export type ChaosEventKind = 'stop' | 'start' | 'kill' | 'pause' | 'resume' | 'cut' | 'heal' | 'restart-backend';

/** How a cut behaves: connections reset (fail fast), or a black hole that forwards nothing. */
export type CutMode = 'reset' | 'blackhole';

interface EventBase {
  /** Position in the schedule (0-based), quoted in failure messages. */
  readonly index: number;
  /** Ms after the schedule starts. */
  readonly at: number;
}

/** One scheduled fault. Every `pause` is followed by a `resume`, every `cut` by a `heal`, of the same replica. */
export type ChaosEvent =
  | (EventBase & { readonly kind: 'stop' | 'start' | 'kill' | 'resume' | 'heal'; readonly replica: number })
  | (EventBase & { readonly kind: 'pause'; readonly replica: number; readonly forMs: number })
  | (EventBase & { readonly kind: 'cut'; readonly replica: number; readonly forMs: number; readonly mode: CutMode })
  | (EventBase & { readonly kind: 'restart-backend'; readonly downMs: number });

/** Options of {@link makeSchedule}. */
export interface ScheduleOptions {
  /** Replica slots; all are up when the schedule starts. @defaultValue 6 */
  readonly replicas?: number;
  /** Lease TTL of the replicas: pause and cut lengths are drawn around it. @defaultValue 1500 */
  readonly ttlMs?: number;
  /** Replicas that are up, running and connected at every instant. @defaultValue 2 */
  readonly minHealthy?: number;
  /** Pause between two drawn events, `[min, max]` ms. @defaultValue [700, 2500] */
  readonly gapMs?: readonly [number, number];
  /** Backend restarts, spread over the run. @defaultValue one per started 20 s, at least 1 */
  readonly backendRestarts?: number;
  /** Longest backend downtime during a restart. @defaultValue 800 */
  readonly maxDownMs?: number;
  /**
   * Ms reserved after an action before the same slot gets another event, so a
   * replica process has time to boot or exit. @defaultValue `{ start: 3000, stop: 1500, kill: 300 }`
   */
  readonly busyMs?: Readonly<Partial<Record<'start' | 'stop' | 'kill', number>>>;
  /** No event starts or ends in the last `tailMs` of the run. @defaultValue 1000 */
  readonly tailMs?: number;
}

type SlotState = 'up' | 'down' | 'paused' | 'cut';
type Draft = ChaosEvent extends infer E ? (E extends ChaosEvent ? Omit<E, 'index'> : never) : never;

const round = (ms: number): number => Math.round(ms);

/**
 * A seeded random fault schedule over `durationMs`. Pure: the same arguments
 * give the same events. Guarantees (checked by schedule.test.ts):
 * - events are sorted by time and lie in `(0, durationMs - tailMs]`;
 * - at every instant at least `minHealthy` slots are up and neither paused nor cut;
 * - every `pause` has a later `resume` and every `cut` a later `heal` of the same
 *   slot, with nothing else happening to that slot in between;
 * - pauses alternate between shorter and longer than the TTL;
 * - the backend restarts `backendRestarts` times, at least 5 s apart.
 */
export function makeSchedule(seed: number, durationMs: number, options: ScheduleOptions = {}): ChaosEvent[] {
  const replicas = options.replicas ?? 6;
  const ttl = options.ttlMs ?? 1500;
  const minHealthy = options.minHealthy ?? 2;
  const [gapMin, gapMax] = options.gapMs ?? [700, 2500];
  const maxDownMs = options.maxDownMs ?? 800;
  const busy = { start: 3000, stop: 1500, kill: 300, ...options.busyMs };
  const tail = options.tailMs ?? 1000;
  const end = durationMs - tail;
  if (minHealthy >= replicas) throw new RangeError(`minHealthy (${minHealthy}) must be below replicas (${replicas})`);
  const rnd = mulberry32(seed);
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rnd();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;

  // Backend restarts: one in each equal segment of the run, away from its edges.
  const restarts = options.backendRestarts ?? Math.max(1, Math.ceil(durationMs / 20_000));
  const restartAt: number[] = [];
  for (let i = 0; i < restarts; i++) {
    const lo = (end * i) / restarts;
    const hi = (end * (i + 1)) / restarts;
    restartAt.push(round(uniform(lo + (hi - lo) * 0.2, hi - (hi - lo) * 0.2)));
  }

  const state: SlotState[] = Array.from({ length: replicas }, () => 'up');
  const busyUntil: number[] = Array.from({ length: replicas }, () => 0);
  const ends: { at: number; replica: number }[] = [];
  const drafts: Draft[] = [];
  let pauses = 0;
  let t = 0;
  for (;;) {
    t = round(t + uniform(gapMin, gapMax));
    if (t > end) break;
    // Paired ends (resume/heal) at or before t have happened: the slot is up again.
    for (let i = ends.length - 1; i >= 0; i--) {
      const e = ends[i] as { at: number; replica: number };
      if (e.at <= t) {
        state[e.replica] = 'up';
        ends.splice(i, 1);
      }
    }
    if (restartAt.length > 0 && (restartAt[0] as number) <= t) {
      restartAt.shift();
      drafts.push({ at: t, kind: 'restart-backend', downMs: round(uniform(0, maxDownMs)) });
      continue;
    }
    const free = (s: SlotState): number[] =>
      state.flatMap((st, i) => (st === s && (busyUntil[i] as number) <= t ? [i] : []));
    const healthy = state.filter((s) => s === 'up').length;
    const up = free('up');
    const down = free('down');
    const canTakeDown = up.length > 0 && healthy - 1 >= minHealthy;
    // Weights: restarting a down slot gets likelier as fewer replicas are healthy.
    const choices: [ChaosEventKind, number][] = [];
    if (down.length > 0) choices.push(['start', healthy <= minHealthy + 1 ? 6 : 2]);
    if (canTakeDown) choices.push(['stop', 2], ['kill', 2], ['pause', 2], ['cut', 2]);
    const total = choices.reduce((sum, [, w]) => sum + w, 0);
    if (total === 0) continue;
    let r = rnd() * total;
    let kind: ChaosEventKind = 'start';
    for (const [k, w] of choices) {
      kind = k;
      r -= w;
      if (r < 0) break;
    }
    switch (kind) {
      case 'start': {
        const replica = pick(down);
        drafts.push({ at: t, kind, replica });
        state[replica] = 'up';
        busyUntil[replica] = t + busy.start;
        break;
      }
      case 'stop':
      case 'kill': {
        const replica = pick(up);
        drafts.push({ at: t, kind, replica });
        state[replica] = 'down';
        busyUntil[replica] = t + busy[kind];
        break;
      }
      case 'pause':
      case 'cut': {
        const replica = pick(up);
        let forMs =
          kind === 'pause'
            ? pauses++ % 2 === 0
              ? uniform(0.3, 0.8) * ttl
              : uniform(1.2, 2.5) * ttl
            : uniform(0.5, 3) * ttl;
        forMs = round(Math.min(forMs, end - t));
        if (forMs < 50) continue;
        const endAt = t + forMs;
        if (kind === 'pause') {
          drafts.push({ at: t, kind, replica, forMs }, { at: endAt, kind: 'resume', replica });
        } else {
          const mode: CutMode = rnd() < 0.5 ? 'reset' : 'blackhole';
          drafts.push({ at: t, kind, replica, forMs, mode }, { at: endAt, kind: 'heal', replica });
        }
        state[replica] = kind === 'pause' ? 'paused' : 'cut';
        busyUntil[replica] = endAt;
        ends.push({ at: endAt, replica });
        break;
      }
      case 'resume':
      case 'heal':
      case 'restart-backend':
        break;
      default: {
        const never: never = kind;
        throw new Error(`unexpected kind ${String(never)}`);
      }
    }
  }
  // Stable sort: an end at the same ms as a new event keeps its drawn order.
  const sorted = drafts.map((d, i) => ({ d, i })).sort((a, b) => a.d.at - b.d.at || a.i - b.i);
  return sorted.map(({ d }, index) => ({ ...d, index }) as ChaosEvent);
}

/** `#7 +12.345s kill r3` — one line per event for logs and failure messages. */
export function formatEvent(event: ChaosEvent): string {
  const head = `#${event.index} +${(event.at / 1000).toFixed(3)}s ${event.kind}`;
  switch (event.kind) {
    case 'restart-backend':
      return `${head} (down ${event.downMs} ms)`;
    case 'pause':
      return `${head} r${event.replica} for ${event.forMs} ms`;
    case 'cut':
      return `${head} r${event.replica} (${event.mode}) for ${event.forMs} ms`;
    default:
      return `${head} r${event.replica}`;
  }
}
