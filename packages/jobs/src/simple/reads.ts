/**
 * The admin reads of the `memory://` adapter, `stats` and `list`, kept away
 * from the hot path (as BullMQ keeps its queue's in `queue-getters.ts`): they
 * only read the jobs the adapter holds and the finished ones it keeps.
 *
 * @module
 */

import { type JobPage, type JobStats, type ListOptions, refOf, type StateCounts } from '../adapter.js';
import type { JobInfo, JobState } from '../job.js';
import { type Entry, entryInfo } from './entry.js';
import type { FinishedJobs } from './finished.js';
import type { ReadyJobs } from './ready-jobs.js';

function emptyCounts(): StateCounts {
  return { scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 };
}

/** `stats`: the jobs held, by queue, handler (every registered one too) and state. */
export function countJobs(
  handlerNames: Iterable<string>,
  entries: Iterable<Entry>,
  pauses: Pick<ReadyJobs, 'isPaused' | 'pausedQueues'>,
): JobStats {
  const total = emptyCounts();
  const queues: Record<string, StateCounts> = {};
  const handlers: Record<string, StateCounts & { paused: boolean }> = {};
  for (const name of handlerNames) handlers[name] = { ...emptyCounts(), paused: pauses.isPaused(name) };
  for (const { record, state } of entries) {
    if (state === 'done') continue;
    total[state]++;
    const byQueue = queues[record.queue] ?? emptyCounts();
    queues[record.queue] = byQueue;
    byQueue[state]++;
    const byHandler = handlers[record.handler] ?? { ...emptyCounts(), paused: pauses.isPaused(record.handler) };
    handlers[record.handler] = byHandler;
    byHandler[state]++;
  }
  return { total, queues, handlers, pausedQueues: pauses.pausedQueues() };
}

/** `list`: a page of the jobs in `state`, from the kept ones, the dead set or the rest. */
export function listJobs(
  state: JobState,
  options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  held: { readonly entries: Iterable<Entry>; readonly dead: Iterable<Entry>; readonly kept: FinishedJobs },
): JobPage {
  if (state === 'completed' || state === 'cancelled') {
    const kept = held.kept
      .list(state, options.queue)
      .filter((job) => options.handler === undefined || job.record.handler === options.handler);
    return {
      total: kept.length,
      jobs: kept.slice(options.offset, options.offset + options.limit).map(
        ({ record, ...job }): JobInfo => ({
          ...refOf(record),
          state: job.state,
          fails: job.fails,
          enqueuedAt: record.enqueuedAt,
          runAt: job.runAt,
          lastError: job.error,
          finishedAt: job.finishedAt,
        }),
      ),
    };
  }
  const source = state === 'dead' ? [...held.dead] : [...held.entries];
  const matching = source
    .filter(
      (e) =>
        e.state === state &&
        (options.queue === undefined || e.record.queue === options.queue) &&
        (options.handler === undefined || e.record.handler === options.handler),
    )
    .sort((a, b) => (state === 'dead' ? 0 : a.runAt - b.runAt || a.seq - b.seq));
  return {
    total: matching.length,
    jobs: matching.slice(options.offset, options.offset + options.limit).map(entryInfo),
  };
}
