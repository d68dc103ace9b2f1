/**
 * A job consumer child process for the multi-process job fault tests.
 * Configured by the JSON in SHARDWORK_JOB_REPLICA (see job-faults.ts); appends
 * what its handlers saw and did to a JSON-lines file, each side effect right
 * after a synchronous `ctx.owned` check, and reports on stdout.
 *
 * Run: node --conditions=@shardwork/source --import tsx test/support/job-replica-main.ts
 */

import { appendFileSync } from 'node:fs';
import { sleep } from '@shardwork/core';
import { monotonicMs } from '@shardwork/core/testing';
import { createJobQueue, type JobContext } from '@shardwork/jobs';

/** Configuration of one job replica. */
export interface JobReplicaSpec {
  readonly url: string;
  readonly recordFile: string;
  readonly concurrency: number;
  /** Adapter options over the defaults below (Redis ones by default). */
  readonly adapter?: Record<string, unknown>;
  /** Handlers to register. @defaultValue all of them but `tx` */
  readonly handlers?: readonly ('work' | 'seq' | 'uniq' | 'limited' | 'tick' | 'tx')[];
  /**
   * `tx` (postgres:// only): the table its `ctx.transaction` writes one row
   * `(id, pid, token)` into, with the job's completion.
   */
  readonly effectsTable?: string;
}

/** One line of a record file. */
export interface JobRecordLine {
  readonly k: 'start' | 'effect' | 'end' | 'done' | 'dead';
  readonly id: string;
  readonly h?: string;
  readonly key?: string;
  readonly n?: number;
  readonly u?: number;
  readonly at?: number;
  readonly att?: number;
  readonly tok?: number;
  /** Why a job died (`dead` lines). */
  readonly reason?: string;
  readonly pid: number;
  readonly t: number;
}

const spec = JSON.parse(process.env.SHARDWORK_JOB_REPLICA ?? '{}') as JobReplicaSpec;
const say = (message: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`);
};
const record = (line: Omit<JobRecordLine, 'pid' | 't'>): void => {
  appendFileSync(spec.recordFile, `${JSON.stringify({ ...line, pid: process.pid, t: monotonicMs() })}\n`);
};

type Args = { n?: number; u?: number; ms?: number };
const base = (ctx: JobContext<Args>) => ({
  id: ctx.id,
  h: ctx.handler,
  ...(ctx.key === undefined ? {} : { key: ctx.key }),
  ...(ctx.args.n === undefined ? {} : { n: ctx.args.n }),
  ...(ctx.args.u === undefined ? {} : { u: ctx.args.u }),
  att: ctx.attempt,
  ...(ctx.token === undefined ? {} : { tok: ctx.token }),
});

/** Token of each job's latest attempt here, so that a completion names the attempt it came from. */
const attemptToken = new Map<string, number | undefined>();

/**
 * Start, an owned effect, some work, another owned effect, end. The second
 * effect is fenced as the READMEs tell handlers to: `ctx.assertOwned()` right
 * before it, which throws `NotOwnerError` once ownership is lost; that must
 * never count as a failure of the job (it runs again under the next owner).
 */
async function body(args: Args, ctx: JobContext<Args>): Promise<void> {
  attemptToken.set(ctx.id, ctx.token);
  record({ k: 'start', ...base(ctx), at: ctx.scheduledAt.getTime() });
  if (ctx.owned) record({ k: 'effect', ...base(ctx) });
  await sleep(args.ms ?? 10, ctx.signal).catch(() => undefined);
  ctx.assertOwned();
  record({ k: 'effect', ...base(ctx) });
  record({ k: 'end', ...base(ctx) });
}

const jobs = createJobQueue<{ work: Args; seq: Args; uniq: Args; limited: Args; tick: Args; tx: Args }>(spec.url, {
  concurrency: spec.concurrency,
  adapter: spec.adapter ?? {
    revokeTimeoutMs: 2000,
    commandTimeoutMs: 300,
    connectTimeoutMs: 500,
    startTimeoutMs: 60_000,
  },
});
const wanted = new Set(spec.handlers ?? ['work', 'seq', 'uniq', 'limited', 'tick']);
if (wanted.has('work')) jobs.register('work', body, { backoff: () => 50 });
if (wanted.has('seq')) jobs.register('seq', body, { ordered: true, backoff: () => 50 });
if (wanted.has('uniq')) jobs.register('uniq', body, { unique: (args) => String(args.u), backoff: () => 50 });
if (wanted.has('limited')) jobs.register('limited', body, { maxConcurrency: 2, backoff: () => 50 });
if (wanted.has('tx')) {
  // The effect is a row written in the transaction that completes the job, fenced by the partition's token.
  jobs.register(
    'tx',
    async (args, ctx) => {
      attemptToken.set(ctx.id, ctx.token);
      record({ k: 'start', ...base(ctx), at: ctx.scheduledAt.getTime() });
      await sleep(args.ms ?? 10, ctx.signal).catch(() => undefined);
      await ctx.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${spec.effectsTable} (id, pid, token) VALUES ($1, $2, $3)`, [
          ctx.id,
          process.pid,
          ctx.token,
        ]);
      });
      record({ k: 'end', ...base(ctx) });
    },
    { backoff: () => 50 },
  );
}
if (wanted.has('tick')) {
  jobs.register('tick', body);
  jobs.periodic('tick', '* * * * * *', { handler: 'tick' }, { catchUp: 'all', horizonMs: 60_000 });
}
jobs.on('job:completed', ({ job }) => {
  const tok = attemptToken.get(job.id);
  attemptToken.delete(job.id);
  record({ k: 'done', id: job.id, h: job.handler, ...(tok === undefined ? {} : { tok }) });
});
jobs.on('job:dead', ({ job, attempt, reason }) =>
  record({ k: 'dead', id: job.id, h: job.handler, att: attempt, reason }),
);
jobs.on('error', ({ error }) => say({ type: 'error', message: String(error) }));
const shutdown = (): void => {
  void jobs.stop({ timeoutMs: 3000 }).then(() => {
    say({ type: 'stopped' });
    process.exit(0);
  });
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
await jobs.start();
say({ type: 'ready' });
