/**
 * `shardwork jobs …`: the job queue's admin API from the command line.
 *
 * @module
 */

import {
  COUNTED_STATES,
  type CountedState,
  JOB_STATES,
  type JobInfo,
  type JobPage,
  type JobQueue,
  type JobState,
  type JobStats,
  UnknownHandlerError,
} from '@shardwork/jobs';
import cliProgress from 'cli-progress';
import type { JobsClient } from './backend.js';
import { NotFoundError, UsageError } from './errors.js';
import { fitLine, renderTable, shorten } from './format.js';

const STATES = JOB_STATES as readonly JobState[];
/** The states `stats()` counts (its table columns). */
const COUNTED = COUNTED_STATES as readonly CountedState[];
/** States whose jobs wait for a consumer to start them. */
const WAITING: readonly CountedState[] = ['ready', 'scheduled', 'retrying'];

/** Check a state argument, naming the valid ones. */
export function parseState(value: string): JobState {
  if (!(STATES as readonly string[]).includes(value)) {
    throw new UsageError(`Unknown job state "${value}": expected one of ${STATES.join(', ')}`);
  }
  return value as JobState;
}

/** One handler of {@link JobStats}. */
type HandlerStats = JobStats['handlers'][string];

/**
 * A handler whose jobs will wait for ever: some are ready, scheduled or
 * retrying, and the store knows that no live consumer registered it
 * (`consumers === 0`; `undefined`, where the adapter cannot know, is no alarm).
 * Returns how many jobs wait, or 0.
 */
export function waitingWithoutConsumer(counts: HandlerStats): number {
  if (counts.consumers !== 0) return 0;
  return WAITING.reduce((sum, state) => sum + counts[state], 0);
}

/**
 * Render `stats()` as two tables (queues, handlers), then one warning line
 * per handler that has waiting jobs and no live consumer.
 * @param width - terminal width to fit to; `undefined` in a pipe.
 */
export function renderStats(stats: JobStats, width?: number): string {
  const lines: string[] = [];
  const queues = Object.entries(stats.queues).sort(([a], [b]) => a.localeCompare(b));
  if (queues.length === 0) {
    lines.push('no jobs in the store: no queue has any scheduled, ready, running, retrying or dead job');
  } else {
    const rows = queues.map(([name, counts]) => [name, ...COUNTED.map((s) => String(counts[s]))]);
    rows.push(['(total)', ...COUNTED.map((s) => String(stats.total[s]))]);
    lines.push(renderTable(['queue', ...COUNTED], rows, { width, flexible: { 0: 'middle' } }));
  }
  const handlers = Object.entries(stats.handlers).sort(([a], [b]) => a.localeCompare(b));
  if (handlers.length > 0) {
    const rows = handlers.map(([name, counts]) => [
      name,
      ...COUNTED.map((s) => String(counts[s])),
      counts.paused ? 'yes' : 'no',
      // `-`: the store cannot tell (an adapter without consumer registrations).
      counts.consumers === undefined ? '-' : waitingWithoutConsumer(counts) > 0 ? '0 (!)' : String(counts.consumers),
    ]);
    lines.push(renderTable(['handler', ...COUNTED, 'paused', 'consumers'], rows, { width, flexible: { 0: 'middle' } }));
    for (const [name, counts] of handlers) {
      const waiting = waitingWithoutConsumer(counts);
      if (waiting === 0) continue;
      lines.push(
        fitLine(
          `(!) ${name}: ${waiting} job${waiting === 1 ? '' : 's'} waiting, and no live consumer registers this handler: its jobs will wait until a process that registers "${name}" starts.`,
          width,
        ),
      );
    }
  }
  return lines.join('\n');
}

/** What {@link renderJobs} needs to say which page of which jobs it shows. */
export interface JobsPageContext {
  readonly state: JobState;
  readonly offset: number;
  readonly queue?: string | undefined;
  readonly handler?: string | undefined;
  /** Terminal width to fit to; `undefined` in a pipe. */
  readonly width?: number | undefined;
}

/**
 * Render a page of jobs as a table and a `1-50 of 120` line; an empty page is
 * one sentence instead (no jobs at all, or an offset past the last job).
 */
export function renderJobs(page: JobPage, o: JobsPageContext): string {
  const filters = [
    o.handler === undefined ? '' : ` of handler ${o.handler}`,
    o.queue === undefined ? '' : ` in queue ${o.queue}`,
  ].join('');
  if (page.total === 0) return `no ${o.state} jobs${filters}`;
  if (page.jobs.length === 0) {
    return `no ${o.state} jobs${filters} at offset ${o.offset}: there ${page.total === 1 ? 'is 1' : `are ${page.total}`} (offsets 0-${page.total - 1})`;
  }
  const rows = page.jobs.map((j: JobInfo) => [
    j.id,
    j.handler,
    j.queue,
    j.key ?? '-',
    String(j.fails),
    new Date(j.runAt).toISOString(),
    shorten(JSON.stringify(j.args), 40),
    j.lastError === undefined ? '-' : shorten(`${j.lastError.name}: ${j.lastError.message}`, 60),
  ]);
  const t = renderTable(['id', 'handler', 'queue', 'key', 'fails', 'run at', 'args', 'last error'], rows, {
    width: o.width,
    flexible: { 1: 'middle', 2: 'middle', 3: 'middle', 6: 'end', 7: 'end' },
  });
  return `${t}\n${o.offset + 1}-${o.offset + page.jobs.length} of ${page.total}`;
}

/** `JobQueue.pause` with its options (`force`: pause a handler nobody registered yet). */
type PauseCall = (handler: string, options?: { readonly force?: boolean }) => Promise<void>;

/**
 * Pause `handler`. The job layer refuses a handler that no live consumer
 * registered and that no stored job ever used (a typo, most likely) with
 * `UnknownHandlerError`, unless `force`. The refusal is exit 4 (not found),
 * like a job id that is not in the dead set: the name is well-formed input
 * that names nothing the store knows, and `--force` is the way past it.
 */
export async function pauseHandler(client: JobsClient, handler: string, force: boolean): Promise<void> {
  try {
    await client.call((q) => {
      const pause: PauseCall = q.pause.bind(q);
      // Options only when forced: a plain pause is the same call as before `force` existed.
      return force ? pause(handler, { force: true }) : pause(handler);
    });
  } catch (error) {
    if (error instanceof NotFoundError && error.cause instanceof UnknownHandlerError) {
      // Said in the command's terms: the library's message names `{ force: true }`, here it is --force.
      throw new NotFoundError(
        `Not paused: no live consumer registers the handler "${handler}" and the job store has never seen a job of it (a typo?). ` +
          'Check the name (shardwork jobs stats lists the handlers the store knows), or pass --force to pause it anyway, e.g. before its first consumer starts.',
        { cause: error.cause },
      );
    }
    throw error;
  }
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
