/**
 * Cron schedules (croner): five or six fields (seconds first when six), or a
 * nickname such as `@daily`, with an optional IANA time zone. Expressions are
 * validated when the worker is constructed, not at the first tick.
 *
 * croner itself also takes a seventh field, the year. shardwork refuses it: a
 * schedule with a year stops firing for good once that year is over (a worker
 * or a periodic job would then sit idle without a word), and a seven-field
 * Quartz expression pasted from a Java scheduler means something else here
 * (Quartz numbers weekdays from 1 = Sunday). One rule for every caller of
 * {@link compileSchedule} (the worker and periodic jobs).
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

/** What {@link compileSchedule} accepts, for messages. */
export const ACCEPTED_CRON_FORMS =
  '5 fields (minute hour day-of-month month day-of-week), 6 fields (second first) or a nickname such as @daily';

/**
 * Why the field count of `cron` is refused, or `undefined` when it is 5 or 6
 * (or a nickname, one word starting with `@`).
 */
export function cronFieldProblem(cron: string): string | undefined {
  const fields = cron
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '');
  if (fields.length === 5 || fields.length === 6) return undefined;
  if (fields.length === 1 && fields[0]?.startsWith('@')) return undefined;
  const year = fields.length === 7 ? ' (a seventh field, the year, is not supported)' : '';
  return `it has ${fields.length} field${fields.length === 1 ? '' : 's'}${year}; shardwork accepts ${ACCEPTED_CRON_FORMS}`;
}

/** Validate a schedule; throws {@link InvalidCronError} naming the expression. */
export function compileSchedule(input: ScheduleInput | undefined): CompiledSchedule | undefined {
  if (input === undefined) return undefined;
  const { cron, timezone } = typeof input === 'string' ? { cron: input, timezone: undefined } : input;
  if (typeof cron !== 'string') throw new InvalidOptionsError('schedule', input, 'a cron string or { cron, timezone }');
  const fieldProblem = cronFieldProblem(cron);
  if (fieldProblem !== undefined) throw new InvalidCronError(cron, timezone, new Error(fieldProblem));
  try {
    const probe = new Cron(cron, { paused: true, ...cronOptions(timezone) });
    // croner reports some problems (an invalid time zone) only when computing a run.
    const next = probe.nextRun();
    probe.stop();
    if (next === null) throw new Error('the expression never fires');
  } catch (cause) {
    throw new InvalidCronError(cron, timezone, cause);
  }
  return { cron, timezone };
}

/** croner options every schedule shares: the time zone, and no year field (see the module comment). */
function cronOptions(timezone: string | undefined): { mode: '5-or-6-parts'; timezone?: string } {
  return timezone === undefined ? { mode: '5-or-6-parts' } : { mode: '5-or-6-parts', timezone };
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
  const job = new Cron(schedule.cron, { ...cronOptions(schedule.timezone), unref: true }, (self: Cron) => {
    const at = expected ?? self.currentRun() ?? new Date();
    expected = self.nextRun();
    onTick(at);
  });
  expected = job.nextRun();
  return { stop: () => job.stop() };
}

/**
 * Fire times of the schedule after `after` (exclusive) up to `until`
 * (inclusive), oldest first, at most `max` of them (the newest `max` when there
 * are more). For catching up on ticks that nobody ran.
 */
export function ticksBetween(schedule: CompiledSchedule, after: Date, until: Date, max: number): Date[] {
  const cron = new Cron(schedule.cron, { paused: true, ...cronOptions(schedule.timezone) });
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
