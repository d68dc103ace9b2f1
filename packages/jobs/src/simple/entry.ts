/**
 * A job of the `memory://` adapter that has not finished: its {@link Entry},
 * the named moves between its states (anything else is a bug and throws), and
 * the views of it that `getJob`, `list`, the kept jobs and `job:dropped` take.
 *
 * @module
 */

import { IllegalStateError } from '@shardwork/core';
import { refOf } from '../adapter.js';
import type { JobErrorInfo } from '../errors.js';
import type { DropReason } from '../events.js';
import type { CountedState, JobDetails, JobInfo, JobRecord, JobState } from '../job.js';
import { type FinishedJob, parsed } from './finished.js';

/** A job's state in this adapter; `done` means removed (finished jobs are kept apart). */
export type EntryState = CountedState | 'done';

/** Named state changes; anything else is a bug and throws. */
const MOVES: Readonly<Record<EntryState, readonly EntryState[]>> = {
  scheduled: ['ready', 'done'],
  ready: ['running', 'done'],
  running: ['done', 'retrying', 'dead', 'ready'],
  retrying: ['ready', 'done'],
  dead: ['ready', 'done'],
  done: [],
};

/** A job the adapter holds: scheduled, ready, running, retrying or dead. */
export interface Entry {
  record: JobRecord;
  state: EntryState;
  fails: number;
  runAt: number;
  /** Tie-breaker among equal due times: enqueue (or retry) order. */
  seq: number;
  lastError: JobErrorInfo | undefined;
  /** An ordered job that holds its place in its key's line. */
  inLine: boolean;
  /** When its running or last attempt started. */
  startedAt?: number;
  /** JSON text of its last progress. */
  progress?: string;
  /** Set by `cancel` while it runs: whatever the attempt comes to, the job ends cancelled. */
  cancelled?: { readonly reason: string | undefined };
}

/** Move a job to `to`, or throw `IllegalStateError` for a move {@link MOVES} does not name. */
export function moveEntry(entry: Entry, to: EntryState): void {
  if (!MOVES[entry.state].includes(to)) {
    throw new IllegalStateError(`move job ${entry.record.id} to ${to}`, entry.state);
  }
  entry.state = to;
}

/** What `job:dropped` says of a job that `stop()` drops in this state. */
export function dropReason(state: EntryState): DropReason {
  return state === 'scheduled' || state === 'retrying' ? 'scheduled' : state === 'ready' ? 'queued' : 'aborted';
}

/** The kept job of one that completed or was cancelled at `now`. */
export function finishedEntry(
  entry: Entry,
  state: FinishedJob['state'],
  result: string | undefined,
  reason: string | undefined,
  now: number,
): FinishedJob {
  return {
    record: entry.record,
    state,
    fails: entry.fails,
    runAt: entry.runAt,
    startedAt: entry.startedAt,
    finishedAt: now,
    result,
    progress: entry.progress,
    error:
      state === 'cancelled' ? { name: 'JobCancelledError', message: reason ?? 'cancelled', at: now } : entry.lastError,
  };
}

/** The details `getJob` returns for a job that has not finished (or is dead). */
export function entryDetails(entry: Entry): JobDetails {
  const { record } = entry;
  return {
    ...refOf(record),
    state: entry.state as CountedState,
    attempt: entry.state === 'running' ? entry.fails + 1 : entry.fails,
    fails: entry.fails,
    maxFails: undefined,
    priority: record.priority,
    enqueuedAt: record.enqueuedAt,
    scheduledAt: entry.runAt,
    startedAt: entry.startedAt,
    finishedAt: entry.state === 'dead' ? entry.lastError?.at : undefined,
    progress: parsed(entry.progress),
    result: undefined,
    error: entry.lastError,
    partition: undefined,
    owner: undefined,
  };
}

/** A job as `list` shows it. */
export function entryInfo(entry: Entry): JobInfo {
  const { record } = entry;
  return {
    ...refOf(record),
    state: entry.state as JobState,
    fails: entry.fails,
    enqueuedAt: record.enqueuedAt,
    runAt: entry.runAt,
    lastError: entry.lastError,
  };
}
