/**
 * The finished jobs of the `memory://` adapter: the completed and cancelled
 * jobs it keeps (per queue and state, the newest `count`, none older than
 * `ageMs`) and the callers waiting for jobs to finish.
 *
 * @module
 */

import { refOf } from '../adapter.js';
import type { JobErrorInfo } from '../errors.js';
import type { JobDetails, JobRecord } from '../job.js';
import type { KeepCompleted } from '../options.js';

/** A kept job: completed or cancelled. */
export interface FinishedJob {
  readonly record: JobRecord;
  readonly state: 'completed' | 'cancelled';
  readonly fails: number;
  readonly runAt: number;
  readonly startedAt: number | undefined;
  readonly finishedAt: number;
  /** JSON text of the result (completed jobs). */
  readonly result: string | undefined;
  /** JSON text of the last progress. */
  readonly progress: string | undefined;
  /** The last failed attempt's error, or why it was cancelled. */
  readonly error: JobErrorInfo | undefined;
}

/** Parse JSON text kept by this adapter (`undefined` stays `undefined`). */
export function parsed(json: string | undefined): unknown {
  return json === undefined ? undefined : JSON.parse(json);
}

/** The details `getJob` returns for a kept job. */
export function finishedDetails(job: FinishedJob): JobDetails {
  const { record } = job;
  return {
    ...refOf(record),
    state: job.state,
    attempt: job.startedAt === undefined ? job.fails : job.fails + 1,
    fails: job.fails,
    maxFails: undefined,
    priority: record.priority,
    enqueuedAt: record.enqueuedAt,
    scheduledAt: job.runAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    progress: parsed(job.progress),
    result: parsed(job.result),
    error: job.error,
    partition: undefined,
    owner: undefined,
  };
}

/** See the module documentation. */
export class FinishedJobs {
  readonly #keep: Required<KeepCompleted>;
  /** Per queue and state, by id, oldest first (insertion order is finish order). */
  readonly #kept = new Map<string, Map<string, FinishedJob>>();
  readonly #byId = new Map<string, FinishedJob>();
  readonly #waiters = new Map<string, Set<(job: JobDetails | Error) => void>>();

  constructor(keep: Required<KeepCompleted>) {
    this.#keep = keep;
  }

  /** Keep a finished job (if the policy keeps any) and wake its waiters. */
  add(job: FinishedJob): void {
    const details = finishedDetails(job);
    if (this.#keep.count > 0) {
      const name = `${job.record.queue}\u0000${job.state}`;
      let kept = this.#kept.get(name);
      if (kept === undefined) {
        kept = new Map();
        this.#kept.set(name, kept);
      }
      kept.set(job.record.id, job);
      this.#byId.set(job.record.id, job);
      this.#trim(kept, job.finishedAt);
    }
    this.wake(job.record.id, details);
  }

  /** Drop the jobs past the count, and those older than the age. */
  #trim(kept: Map<string, FinishedJob>, now: number): void {
    for (const [id, job] of kept) {
      if (kept.size <= this.#keep.count && job.finishedAt >= now - this.#keep.ageMs) return;
      kept.delete(id);
      this.#byId.delete(id);
    }
  }

  /** A kept job by id. */
  get(id: string): FinishedJob | undefined {
    const job = this.#byId.get(id);
    if (job === undefined) return undefined;
    if (job.finishedAt < Date.now() - this.#keep.ageMs) {
      const kept = this.#kept.get(`${job.record.queue}\u0000${job.state}`);
      if (kept !== undefined) this.#trim(kept, Date.now());
      return undefined;
    }
    return job;
  }

  /** The kept jobs of a state, oldest first. */
  list(state: 'completed' | 'cancelled', queue: string | undefined): FinishedJob[] {
    const now = Date.now();
    const out: FinishedJob[] = [];
    for (const [name, kept] of this.#kept) {
      const [q, s] = name.split('\u0000');
      if (s !== state || (queue !== undefined && q !== queue)) continue;
      this.#trim(kept, now);
      out.push(...kept.values());
    }
    return out.sort((a, b) => a.finishedAt - b.finishedAt);
  }

  /** Call `done` when job `id` finishes (with its details, or an error to reject with); returns how to stop waiting. */
  wait(id: string, done: (job: JobDetails | Error) => void): () => void {
    let set = this.#waiters.get(id);
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(id, set);
    }
    set.add(done);
    return () => {
      set.delete(done);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
    };
  }

  /**
   * Wait until job `id` finishes: resolves with its details; rejects with the
   * error it is gone with (see {@link FinishedJobs.wake}), or with the signal's
   * reason when it aborts first.
   */
  until(id: string, signal: AbortSignal): Promise<JobDetails> {
    signal.throwIfAborted();
    return new Promise<JobDetails>((resolve, reject) => {
      const onAbort = (): void => {
        stop();
        reject(signal.reason);
      };
      const stop = this.wait(id, (outcome) => {
        signal.removeEventListener('abort', onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Job `id` finished (or is gone, with an error): answer its waiters once. */
  wake(id: string, outcome: JobDetails | Error): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    this.#waiters.delete(id);
    for (const done of set) done(outcome);
  }
}
