/**
 * `shardwork jobs …`: the job queue's admin API from the command line.
 *
 * @module
 */

import { JOB_STATES, type JobInfo, type JobQueue, type JobState, type JobStats } from '@shardwork/jobs';
import cliProgress from 'cli-progress';
import type { JobsClient } from './backend.js';
import { NotFoundError, UsageError } from './errors.js';
import { table } from './format.js';

const STATES = JOB_STATES as readonly JobState[];

/** Check a state argument, naming the valid ones. */
export function parseState(value: string): JobState {
  if (!(STATES as readonly string[]).includes(value)) {
    throw new UsageError(`Unknown job state "${value}": expected one of ${STATES.join(', ')}`);
  }
  return value as JobState;
}

/** Render `stats()` as two tables (queues, handlers). */
export function renderStats(stats: JobStats): string {
  const lines: string[] = [];
  const q = table(['queue', ...STATES]);
  for (const [name, counts] of Object.entries(stats.queues).sort(([a], [b]) => a.localeCompare(b))) {
    q.push([name, ...STATES.map((s) => String(counts[s]))]);
  }
  q.push(['(total)', ...STATES.map((s) => String(stats.total[s]))]);
  lines.push(q.toString());
  const handlers = Object.entries(stats.handlers).sort(([a], [b]) => a.localeCompare(b));
  if (handlers.length > 0) {
    const h = table(['handler', ...STATES, 'paused']);
    for (const [name, counts] of handlers)
      h.push([name, ...STATES.map((s) => String(counts[s])), counts.paused ? 'yes' : 'no']);
    lines.push(h.toString());
  }
  return lines.join('\n');
}

/** Render a page of jobs as a table. */
export function renderJobs(jobs: readonly JobInfo[], total: number, offset: number): string {
  const t = table(['id', 'handler', 'queue', 'key', 'fails', 'run at', 'args', 'last error']);
  for (const j of jobs) {
    const args = JSON.stringify(j.args);
    t.push([
      j.id,
      j.handler,
      j.queue,
      j.key ?? '-',
      String(j.fails),
      new Date(j.runAt).toISOString(),
      args.length > 40 ? `${args.slice(0, 39)}…` : args,
      j.lastError === undefined ? '-' : `${j.lastError.name}: ${j.lastError.message}`.slice(0, 60),
    ]);
  }
  const range = jobs.length === 0 ? 'none' : `${offset + 1}-${offset + jobs.length}`;
  return `${t.toString()}\n${range} of ${total}`;
}

/** Parse the `argsJson` argument of `enqueue`. */
export function parseArgs(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(`argsJson is not valid JSON (${(error as Error).message}): ${text}`);
  }
}

/** What `retry`/`delete` do to dead jobs. */
export type DeadAction = 'retry' | 'delete';

/** Options of {@link runDeadAction}. */
export interface DeadActionOptions {
  readonly action: DeadAction;
  readonly id: string | undefined;
  readonly all: boolean;
  /** Where the progress bar goes; only when it is a TTY. */
  readonly progressStream: NodeJS.WritableStream | undefined;
  readonly timeoutMs: number;
}

/** Retry or delete one dead job or all of them; returns how many. */
export async function runDeadAction(client: JobsClient, o: DeadActionOptions): Promise<number> {
  if (o.all === (o.id !== undefined)) {
    throw new UsageError(`jobs ${o.action}: give either a job id or --all`);
  }
  const act = (id: string | undefined, onProgress?: (done: number) => void) => (q: JobQueue) =>
    o.action === 'retry'
      ? q.retryDead(id, onProgress === undefined ? {} : { onProgress })
      : q.deleteDead(id, onProgress === undefined ? {} : { onProgress });
  if (o.id !== undefined) {
    const n = await client.call(act(o.id));
    if (n === 0) throw new NotFoundError(`No dead job ${o.id}`);
    return n;
  }
  let bar: cliProgress.SingleBar | undefined;
  if (o.progressStream !== undefined) {
    const total = (await client.call((q) => q.stats())).total.dead;
    if (total > 0) {
      bar = new cliProgress.SingleBar(
        { stream: o.progressStream, format: `${o.action} dead jobs [{bar}] {value}/{total}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    }
  }
  try {
    // A bulk action over many jobs may take longer than one call's timeout; it
    // gets ten times the budget, the progress bar shows it is alive.
    return await client.call(
      act(undefined, bar && ((done) => bar?.update(Math.min(done, bar.getTotal())))),
      o.timeoutMs * 10,
    );
  } finally {
    bar?.stop();
  }
}
