/**
 * `shardwork jobs show|wait|cancel ID`: one job of the store, by id.
 *
 * @module
 */

import {
  type CancelResult,
  JobCancelledError,
  JobDeadError,
  type JobDetails,
  JobWaitTimeoutError,
} from '@shardwork/jobs';
import type { JobsClient } from './backend.js';
import { JobFailedError, NotFoundError, UsageError, WaitTimeoutError } from './errors.js';
import { fitLine } from './format.js';

/** A job's details as `name: value` lines (times as ISO dates, JSON values inline). */
export function renderJob(job: JobDetails, width?: number): string {
  const time = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());
  const json = (value: unknown): string => (value === undefined ? '-' : JSON.stringify(value));
  const lines: [string, string][] = [
    ['id', job.id],
    ['state', job.state],
    ['handler', job.handler],
    ['queue', job.queue],
    ['key', job.key ?? '-'],
    ['args', json(job.args)],
    ['attempt', `${job.attempt}${job.maxFails === undefined ? '' : ` of ${job.maxFails}`} (${job.fails} failed)`],
    ['priority', job.priority === undefined ? '-' : String(job.priority)],
    ['enqueued', time(job.enqueuedAt)],
    ['scheduled', time(job.scheduledAt)],
    ['started', time(job.startedAt)],
    ['finished', time(job.finishedAt)],
    ['progress', json(job.progress)],
    ['result', json(job.result)],
    ['error', job.error === undefined ? '-' : `${job.error.name}: ${job.error.message}`],
    ['partition', job.partition === undefined ? '-' : String(job.partition)],
  ];
  return lines.map(([name, value]) => fitLine(`${`${name}:`.padEnd(11)}${value}`, width)).join('\n');
}

/** `jobs show ID`: the job, or exit 4. */
export async function showJob(client: JobsClient, id: string): Promise<JobDetails> {
  const job = await client.call((q) => q.getJob(id));
  if (job === undefined) {
    throw new NotFoundError(`No job ${id} in ${client.target}: never enqueued, or finished and no longer kept`);
  }
  return job;
}

/**
 * `jobs wait ID`: the job's result once it completes; exit 7 when it goes
 * dead or is cancelled, 8 when `withinMs` passes first (it goes on).
 */
export async function waitJob(client: JobsClient, id: string, withinMs: number, timeoutMs: number): Promise<unknown> {
  try {
    // The store's own timeout comes on top of the wait.
    return await client.call((q) => q.waitFor(id, { timeoutMs: withinMs }), withinMs + timeoutMs);
  } catch (error) {
    if (error instanceof JobDeadError) throw new JobFailedError(error.message, { cause: error });
    if (error instanceof JobCancelledError) throw new JobFailedError(error.message, { cause: error });
    if (error instanceof JobWaitTimeoutError) throw new WaitTimeoutError(error.message, { cause: error });
    throw error;
  }
}

/** `jobs cancel ID`: what was found and done, as one line. */
export function renderCancel(result: CancelResult): string {
  return result.cancelled
    ? `cancelled job ${result.id} (it was ${result.state})`
    : `job ${result.id} was not cancelled: it had already finished (${result.state})`;
}

/** What `jobs purge` may empty. */
const PURGEABLE = ['ready', 'scheduled', 'retrying'] as const;

/** Options of {@link purgeJobs}. */
export interface PurgeOptions {
  readonly state: string;
  readonly yes: boolean;
  readonly queue?: string | undefined;
  readonly handler?: string | undefined;
  /** Called after each page with the jobs cancelled so far. */
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * `jobs purge <state> --yes`: cancel every job in a waiting state (of a queue
 * or handler), a page of 1,000 at a time. Without `--yes` it only counts them
 * and refuses (exit 1). Returns how many were cancelled.
 */
export async function purgeJobs(client: JobsClient, o: PurgeOptions): Promise<number> {
  if (!(PURGEABLE as readonly string[]).includes(o.state)) {
    throw new UsageError(`jobs purge takes ${PURGEABLE.join(', ')} (got "${o.state}"); dead jobs: jobs delete --all`);
  }
  const state = o.state as (typeof PURGEABLE)[number];
  const filter = {
    ...(o.queue === undefined ? {} : { queue: o.queue }),
    ...(o.handler === undefined ? {} : { handler: o.handler }),
  };
  const first = await client.call((q) => q.list(state, { ...filter, limit: 1000 }));
  if (!o.yes) {
    throw new UsageError(
      `jobs purge would cancel ${first.total} ${state} job${first.total === 1 ? '' : 's'}${o.queue === undefined ? '' : ` of queue ${o.queue}`}${o.handler === undefined ? '' : ` of handler ${o.handler}`}: add --yes to do it`,
    );
  }
  let done = 0;
  let page = first;
  while (page.jobs.length > 0) {
    let moved = 0;
    for (const job of page.jobs) {
      const result = await client
        .call((q) => q.cancel(job.id, { reason: 'purged', waitingOnly: true }))
        .catch((error: unknown) => {
          // Started or finished meanwhile: not ours to purge any more.
          if (error instanceof NotFoundError) return undefined;
          throw error;
        });
      if (result?.cancelled === true) {
        done++;
        moved++;
      }
    }
    o.onProgress?.(done, first.total);
    if (moved === 0) break;
    page = await client.call((q) => q.list(state, { ...filter, limit: 1000 }));
  }
  return done;
}
