/**
 * Cron schedules (croner): five or six fields (seconds first when six),
 * optional IANA time zone. Expressions are validated when the worker is
 * constructed, not at the first tick.
 *
 * @module
 */

import { Cron } from 'croner';
import { InvalidCronError, InvalidOptionsError } from './errors.js';

/** A schedule: a cron expression, or one with a time zone. */
export type ScheduleInput = string | { readonly cron: string; readonly timezone?: string };

/** A validated schedule. */
export interface CompiledSchedule {
  readonly cron: string;
  readonly timezone: string | undefined;
}

/** Validate a schedule; throws {@link InvalidCronError} naming the expression. */
export function compileSchedule(input: ScheduleInput | undefined): CompiledSchedule | undefined {
  if (input === undefined) return undefined;
  const { cron, timezone } = typeof input === 'string' ? { cron: input, timezone: undefined } : input;
  if (typeof cron !== 'string') throw new InvalidOptionsError('schedule', input, 'a cron string or { cron, timezone }');
  try {
    const probe = new Cron(cron, { paused: true, ...(timezone === undefined ? {} : { timezone }) });
    // croner reports some problems (an invalid time zone) only when computing a run.
    const next = probe.nextRun();
    probe.stop();
    if (next === null) throw new Error('the expression never fires');
  } catch (cause) {
    throw new InvalidCronError(cron, timezone, cause);
  }
  return { cron, timezone };
}

/** A running schedule; `stop()` ends it. */
export interface Ticker {
  stop(): void;
}

/** Call `onTick` at every fire time of the schedule until stopped. */
export function startTicker(schedule: CompiledSchedule, onTick: (scheduledAt: Date) => void): Ticker {
  // The nominal fire time (what the tick is for), not the moment the timer ran:
  // replicas that compute the same schedule agree on it to the millisecond.
  let expected: Date | null = null;
  const job = new Cron(
    schedule.cron,
    { ...(schedule.timezone === undefined ? {} : { timezone: schedule.timezone }), unref: true },
    (self: Cron) => {
      const at = expected ?? self.currentRun() ?? new Date();
      expected = self.nextRun();
      onTick(at);
    },
  );
  expected = job.nextRun();
  return { stop: () => job.stop() };
}

/**
 * Fire times of the schedule after `after` (exclusive) up to `until`
 * (inclusive), oldest first, at most `max` of them (the newest `max` when there
 * are more). For catching up on ticks that nobody ran.
 */
export function ticksBetween(schedule: CompiledSchedule, after: Date, until: Date, max: number): Date[] {
  const cron = new Cron(schedule.cron, {
    paused: true,
    ...(schedule.timezone === undefined ? {} : { timezone: schedule.timezone }),
  });
  const ticks: Date[] = [];
  try {
    for (
      let next = cron.nextRun(after);
      next !== null && next.getTime() <= until.getTime();
      next = cron.nextRun(next)
    ) {
      ticks.push(next);
      if (ticks.length > max) ticks.shift();
    }
  } finally {
    cron.stop();
  }
  return ticks;
}
