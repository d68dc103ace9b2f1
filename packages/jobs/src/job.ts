/**
 * The shapes of the job contract: a job as given to `perform*`, as stored by an
 * adapter, as seen by its handler, and as listed by the admin API; plus the
 * types that carry a job's args type from `register` to `perform`.
 *
 * @module
 */

import type { JobArgs } from './args.js';
import type { JobErrorInfo } from './errors.js';

/**
 * The jobs a queue knows, by handler name: `{ send_email: { to: string } }`.
 * Give it as the type parameter of `createJobQueue<MyJobs>()` and `perform`
 * with an unknown name or the wrong args fails to compile.
 */
export type JobMap = object;

/** The map used when none is given: any name, any args object. */
export type AnyJobs = Record<string, JobArgs>;

/** Handler names of a job map. */
export type JobName<J extends JobMap> = keyof J & string;

/** Args of job `N` of map `J`. */
export type ArgsOf<J extends JobMap, N extends JobName<J>> = J[N] extends object ? J[N] : JobArgs;

/** What `perform` takes: Buffalo's `worker.Job` (`Handler`, `Args`, `Queue`) plus an ordering `key`. */
export type Job<J extends JobMap = AnyJobs, N extends JobName<J> = JobName<J>> = {
  /** Name the handler was registered under. */
  readonly handler: N;
  /**
   * Queue the job goes to.
   * @defaultValue the `queue` of the handler's registration, else `'default'`
   */
  readonly queue?: string;
  /**
   * Routing and ordering key: jobs of `ordered` handlers with the same key run
   * one at a time, in order; adapters with partitions route by it.
   */
  readonly key?: string;
} & (Record<never, never> extends ArgsOf<J, N>
  ? {
      /** Plain JSON data. @defaultValue `{}` */
      readonly args?: ArgsOf<J, N>;
    }
  : {
      /** Plain JSON data. */
      readonly args: ArgsOf<J, N>;
    });

/** Options of one `perform`, `performAt` or `performIn` (and, per job, of `performMany`). */
export interface PerformOptions {
  /**
   * The job's id, chosen by the caller instead of a generated nanoid: 1–200
   * printable ASCII characters, no spaces (e.g. `order-42:invoice`). A perform
   * whose id the store still knows (a job queued, running, retrying or dead
   * with it, or one enqueued with it within the adapter's idempotency window)
   * adds nothing and resolves with `duplicate: true`, so a `perform` that
   * rejected with an ambiguous `QueueUnavailableError` (`ambiguous: true`: the
   * job may have been stored) can be sent again with the same id and the job
   * runs once. Adapters that cannot look an id up (`amqp://`) refuse it with
   * `UnsupportedFeatureError`.
   * @defaultValue a nanoid
   */
  readonly id?: string;
  /**
   * This job's priority, 1–100000, in place of its handler's: the next job to
   * run is drawn among the waiting groups of jobs (each handler's jobs at the
   * handler's priority, and the jobs of each priority given here) with
   * probability proportional to the group's priority (gocraft's weighted draw),
   * so `priority: 100` beside handlers at 1 runs about a hundred times as often
   * and a lower priority still runs. Adapters that cannot (`amqp://`) refuse it
   * with `UnsupportedFeatureError`.
   * @defaultValue the handler's `priority`
   */
  readonly priority?: number;
  /**
   * Your own database client, inside a transaction you opened on it: the job
   * is written by that transaction, so it exists if and only if your
   * transaction commits (the outbox problem, solved without an outbox). On
   * `postgres://`, a `pg` `Client` or pooled client (`await pool.connect()`)
   * after `BEGIN`; consumers are woken when you commit. Nothing is retried on
   * your client: an error rejects the perform and leaves the rollback to you.
   * Adapters without a database of yours (`memory://`, `redis://`, `amqp://`)
   * refuse it with `UnsupportedFeatureError` (feature `transactionalEnqueue`).
   * `performAndWait` refuses it: the job cannot run before you commit.
   */
  readonly client?: EnqueueClient;
}

/**
 * A database client of the application, in its transaction (see
 * {@link PerformOptions.client}); each adapter that accepts one says which.
 */
export type EnqueueClient = object;

/** Options of one {@link JobAdapter.enqueue} call beside the records. */
export interface EnqueueOptions {
  /** The caller's client in its transaction (see {@link PerformOptions.client}). */
  readonly client?: EnqueueClient;
}

/** A job for `performMany`: optionally with its own due time and id. */
export type BulkJob<J extends JobMap = AnyJobs, N extends JobName<J> = JobName<J>> = Job<J, N> &
  Omit<PerformOptions, 'client'> & {
    /** Run at or after this time (a `Date` or ms since the epoch). @defaultValue now */
    readonly at?: Date | number;
  };

/** What `perform*` resolves to once the adapter has accepted the job. */
export interface EnqueueResult {
  /**
   * The job's id (a nanoid, or the one given); for a duplicate of a unique
   * job, the id of the job already queued or running.
   */
  readonly id: string;
  /**
   * `true` when nothing was added: a `unique` job with the same unique key was
   * already queued or running, or a job with the given id was already known.
   */
  readonly duplicate: boolean;
}

/** A job as an adapter stores it. Produced by the queue from a checked {@link Job}. */
export interface JobRecord {
  /** nanoid, or the caller's ({@link PerformOptions.id}). */
  readonly id: string;
  /** Whether the caller chose the id: the adapter must add nothing if it knows it already. */
  readonly idGiven?: boolean;
  readonly handler: string;
  readonly queue: string;
  readonly key: string | undefined;
  readonly args: JobArgs;
  /** The args as JSON text, as checked (adapters that serialise store this). */
  readonly argsJson: string;
  /** When `perform*` was called, ms since the epoch. */
  readonly enqueuedAt: number;
  /** When the job is due, ms since the epoch (equal to `enqueuedAt` for `perform`). */
  readonly runAt: number;
  /** For `unique` handlers: the key that at most one queued-or-running job may hold. */
  readonly uniqueKey: string | undefined;
  /**
   * Whether the handler is `ordered` in this process's registration (adapters
   * whose consumers publish their registrations also know it without this).
   */
  readonly ordered: boolean;
  /** The producer's OpenTelemetry span context (W3C `traceparent`), when it had one. */
  readonly traceparent?: string | undefined;
  /** Its own priority ({@link PerformOptions.priority}); absent: its handler's. */
  readonly priority?: number | undefined;
}

/**
 * Where a job is: waiting (`scheduled` for a due time, `ready`, `retrying`
 * after a failed attempt), `running`, or finished: `completed`, `dead` (its
 * attempts are spent, or it failed for good) or `cancelled`. Completed and
 * cancelled jobs are kept per the queue's `keepCompleted`.
 */
export type JobState = 'scheduled' | 'ready' | 'running' | 'retrying' | 'completed' | 'dead' | 'cancelled';

/** Every {@link JobState}, in lifecycle order. */
export const JOB_STATES: readonly JobState[] = [
  'scheduled',
  'ready',
  'running',
  'retrying',
  'completed',
  'dead',
  'cancelled',
];

/** The states `stats()` counts: the jobs the store holds as work, and the dead set. */
export type CountedState = Exclude<JobState, 'completed' | 'cancelled'>;

/** Every {@link CountedState}, in lifecycle order. */
export const COUNTED_STATES: readonly CountedState[] = ['scheduled', 'ready', 'running', 'retrying', 'dead'];

/** The states a job ends in. */
export const FINISHED_STATES: readonly JobState[] = ['completed', 'dead', 'cancelled'];

/**
 * What a handler returned, or what `ctx.progress()` was given: plain JSON
 * (`undefined` when the handler returned nothing).
 */
export type JobResult = unknown;

/** A job looked up by id (`getJob`). */
export interface JobDetails {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly key: string | undefined;
  readonly args: JobArgs;
  readonly state: JobState;
  /** The number of the running or last attempt: 0 before the first starts. */
  readonly attempt: number;
  /** Failed attempts so far. */
  readonly fails: number;
  /** Attempts before it goes dead, from this process's registration (`undefined` where the handler is not registered here). */
  readonly maxFails: number | undefined;
  /**
   * Its priority: its own ({@link PerformOptions.priority}), else its
   * handler's from this process's registration (`undefined` where neither is known).
   */
  readonly priority: number | undefined;
  /** When `perform*` was called, ms since the epoch. */
  readonly enqueuedAt: number;
  /** When it is (or was last) due, ms since the epoch. */
  readonly scheduledAt: number;
  /** When its running or last attempt started. */
  readonly startedAt: number | undefined;
  /** When it completed, died or was cancelled. */
  readonly finishedAt: number | undefined;
  /** The last value its handler gave `ctx.progress()`. */
  readonly progress: JobResult;
  /** What its handler returned (completed jobs). */
  readonly result: JobResult;
  /** The error of its last failed attempt, or why it was cancelled. */
  readonly error: JobErrorInfo | undefined;
  /** Partition of the job, on adapters with partitions. */
  readonly partition: number | undefined;
  /** Member id of the replica that runs it (running jobs, on adapters with partitions). */
  readonly owner: string | undefined;
}

/** A job as listed by the admin API. */
export interface JobInfo {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly key: string | undefined;
  readonly args: JobArgs;
  readonly state: JobState;
  /** Failed attempts so far. */
  readonly fails: number;
  /** When it was enqueued, ms since the epoch. */
  readonly enqueuedAt: number;
  /** When it is (or was last) due, ms since the epoch. */
  readonly runAt: number;
  /** The error of the last failed attempt (or why it was cancelled). */
  readonly lastError: JobErrorInfo | undefined;
  /** When it finished (completed, dead or cancelled jobs), ms since the epoch. */
  readonly finishedAt?: number;
}

/** What events carry about a job. */
export interface JobRef {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly key: string | undefined;
  readonly args: JobArgs;
}

/** What a handler (and middleware) receives with each attempt. */
export interface JobContext<A = JobArgs> {
  /** The job's id. */
  readonly id: string;
  /** Handler name. */
  readonly handler: string;
  /** The job's args (a JSON round trip of what was performed). */
  readonly args: A;
  readonly queue: string;
  readonly key: string | undefined;
  /** Attempt number, 1-based (failed attempts so far + 1). */
  readonly attempt: number;
  /** When `perform*` was called. */
  readonly enqueuedAt: Date;
  /** When the job was due (`performAt`/`performIn` time, or the retry time). */
  readonly scheduledAt: Date;
  /**
   * Aborts when the attempt times out (`timeoutMs`), when the queue stops past
   * its timeout, or when this replica loses the job's partition.
   */
  readonly signal: AbortSignal;
  /** Partition of the job, on adapters with partitions. */
  readonly partition: number | undefined;
  /** Fencing token of this replica's ownership of the partition, on adapters with partitions. */
  readonly token: number | undefined;
  /**
   * Synchronous check: `true` while this attempt may still act (not timed out,
   * not aborted, and on adapters with partitions, the partition's lease is
   * held). Check it, or call {@link JobContext.assertOwned}, right before each
   * side effect.
   */
  readonly owned: boolean;
  /** Throw (core's `NotOwnerError` or the abort reason) unless {@link JobContext.owned}. */
  assertOwned(): void;
  /** A bag shared by the middleware and the handler of one attempt. */
  readonly data: Record<string, unknown>;
  /**
   * Report progress: a number 0–100 or a small JSON object (at most 4 KiB).
   * Stored with the job (`getJob(id).progress`) and emitted as `job:progress`;
   * calls closer together than the queue's `progressIntervalMs` are merged
   * (the last value is stored when the interval ends), so a tight loop cannot
   * flood the store. Throws `InvalidJobError` for anything else.
   */
  progress(value: number | Record<string, unknown>): void;
  /**
   * Run `work` in one database transaction with this job's completion, on
   * adapters with transactions (`postgres://`): `work`'s writes (on `tx`) and
   * the job's completion (its result: what `work` returns) commit together,
   * and only while this process still owns the job's partition (the
   * partition's fencing token is checked in the transaction, and a new owner
   * waits for it). Otherwise nothing of it commits and it rejects with core's
   * `NotOwnerError` (rethrow it: the job runs again under the new owner).
   * Call it once, as the handler's last step: the job has completed when it
   * resolves. Rejects with `UnsupportedFeatureError` on other adapters.
   */
  transaction<T>(work: (tx: JobTransaction) => Promise<T>): Promise<T>;
}

/**
 * The connection of a handler's transaction ({@link JobContext.transaction}):
 * on `postgres://`, node-postgres's `PoolClient`, inside `BEGIN`. Typed here
 * by what every such client offers; cast to `pg.PoolClient` for the rest.
 */
export interface JobTransaction {
  // biome-ignore lint/suspicious/noExplicitAny: rows are the caller's to type, as in node-postgres.
  query<R = any>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

/**
 * A job handler: Buffalo's `worker.Handler`. Throw to fail the attempt. What
 * it returns (plain JSON, at most the queue's `maxArgsBytes`) is the job's
 * result: kept with the completed job and what `waitFor` resolves with.
 */
export type JobHandler<A = JobArgs> = (args: A, ctx: JobContext<A>) => unknown;

/**
 * Middleware around every attempt, chained in `use` order. Call `next()` to run
 * the rest of the chain and the handler; return without calling it to finish the
 * job without running the handler; throw to fail the attempt.
 */
export type Middleware = (ctx: JobContext, next: () => Promise<void>) => unknown;
