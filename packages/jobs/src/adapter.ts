/**
 * The adapter contract: what a job store (in-process, Redis, RabbitMQ)
 * implements. The {@link JobQueue} facade does everything that is the same for
 * every adapter (checking jobs and options, ids, middleware, running an attempt
 * with its timeout and deciding retry or death, events, lifecycle); an adapter
 * stores jobs and dispatches them with the semantics the conformance suite in
 * `@shardwork/jobs/testing` checks: priorities, `maxConcurrency`, `unique`,
 * `ordered`, due times, pause, the dead set.
 *
 * @module
 */

import type { JobArgs } from './args.js';
import { type FeatureRefusal, type JobFeature, UnsupportedFeatureError } from './errors.js';
import type { DeadReason, JobQueueEventMap } from './events.js';
import type {
  CountedState,
  EnqueueOptions,
  EnqueueResult,
  JobDetails,
  JobInfo,
  JobRecord,
  JobRef,
  JobState,
  JobTransaction,
} from './job.js';
import type { CompiledPeriodic, CompiledQueueOptions, CompiledRegistration } from './options.js';

/** A job an adapter hands to {@link AdapterRuntime.run}. */
export interface RunnableJob extends JobRecord {
  /** Failed attempts so far (the attempt about to run is `fails + 1`). */
  readonly fails: number;
}

/** What the adapter adds to one attempt's context. */
export interface RunExtras {
  /** Aborts the attempt from outside (stop past its timeout, partition lost). */
  readonly signal?: AbortSignal;
  /** Partition of the job, on adapters with partitions. */
  readonly partition?: number;
  /** Fencing token of the partition's ownership. */
  readonly token?: number;
  /** Synchronous ownership check of the partition (core's `ctx.owned`). */
  readonly owned?: () => boolean;
  /**
   * Store the attempt's progress (JSON text, checked and throttled by the
   * runtime). Absent on adapters that keep no progress: `job:progress` is
   * still emitted.
   */
  readonly progress?: (json: string) => void;
  /** `ctx.transaction` of the attempt, on adapters with transactions (see `JobContext.transaction`). */
  readonly transaction?: <T>(work: (tx: JobTransaction) => Promise<T>) => Promise<T>;
}

/** What one attempt came to; the adapter persists it, then calls {@link AdapterRuntime.report}. */
export type AttemptOutcome =
  | {
      readonly type: 'completed';
      readonly durationMs: number;
      /** What the handler returned, as JSON text (`'null'` for nothing). */
      readonly result: string;
    }
  | { readonly type: 'retry'; readonly error: unknown; readonly delayMs: number; readonly durationMs?: number }
  | { readonly type: 'dead'; readonly error: unknown; readonly reason: DeadReason; readonly durationMs?: number }
  /**
   * Aborted from outside ({@link RunExtras.signal}), or ended by lost ownership
   * ({@link RunExtras.owned} false, or the handler's `NotOwnerError`): not a
   * failure; record nothing and put the job back (or leave it to the next owner).
   */
  | { readonly type: 'aborted'; readonly error: unknown };

/** What the facade gives an adapter (see {@link JobAdapter.attach}). */
export interface AdapterRuntime {
  /** Registered handlers by name (fixed once the queue starts). */
  readonly handlers: ReadonlyMap<string, CompiledRegistration>;
  /** The queue's compiled options. */
  readonly options: CompiledQueueOptions;
  /** Periodic jobs (fixed once the queue starts); consuming adapters enqueue one job per tick. */
  readonly periodics: readonly CompiledPeriodic[];
  /** The record of the job `periodic` enqueues for the tick at `tickMs` (ms since the epoch). */
  periodicRecord(periodic: CompiledPeriodic, tickMs: number): JobRecord;
  /**
   * Run one attempt: `job:started`, middleware, handler, timeout; decide
   * completed, retry (with the delay) or dead. Never rejects. Resolves when the
   * handler settles, or at once when the attempt times out or `extras.signal`
   * aborts (a handler that ignores its signal is not waited for; its
   * `ctx.owned` is false from then on).
   */
  run(job: RunnableJob, extras?: RunExtras): Promise<AttemptOutcome>;
  /** Emit the events of an outcome the adapter has persisted (`job:completed`, `job:failed`, `job:dead`). */
  report(job: RunnableJob, outcome: AttemptOutcome, nextRunAt?: number): void;
  /**
   * Abort the attempt of job `id` running in this process with `reason` (a
   * `JobCancelledError`): its `ctx.signal` aborts, `ctx.owned` turns false,
   * and its `run` resolves at once with `aborted`. Returns whether one ran;
   * if none did, a `run` of the job within the next minute (one fetched
   * ahead) resolves with `aborted` without starting.
   */
  abortAttempt(id: string, reason: unknown): boolean;
  /** Emit an event of the queue's map (e.g. `job:recovered`, `job:dropped`, `record:invalid`, `error`). */
  emit<K extends keyof JobQueueEventMap>(event: K, payload: JobQueueEventMap[K]): void;
}

/** Counts of jobs by state (the states the store holds as work, and the dead set). */
export type StateCounts = Record<CountedState, number>;

/** Attempts that completed and failed in one minute of one queue (`throughput()`). */
export interface ThroughputPoint {
  /** Start of the minute, ms since the epoch. */
  readonly at: number;
  readonly completed: number;
  /** Failed attempts (retried or dead). */
  readonly failed: number;
}

/** A queue's throughput, minute by minute, oldest first (minutes with nothing count 0). */
export interface QueueThroughput {
  readonly queue: string;
  readonly points: readonly ThroughputPoint[];
}

/** How a job finished, as `waitFor` needs it. */
export type JobOutcome = Pick<JobDetails, 'id' | 'state' | 'result' | 'error'>;

/** A change to a job that is not running yet (see {@link JobAdapter.modify}). */
export type JobChange =
  /** Run it now: a scheduled or retrying job becomes ready (a ready one stays). */
  | { readonly type: 'promote' }
  /** Run it at `at` (ms since the epoch) instead: scheduled or retrying jobs. */
  | { readonly type: 'reschedule'; readonly at: number }
  /** Replace its args (checked, with their JSON text): scheduled, ready or retrying jobs. */
  | { readonly type: 'update'; readonly args: JobArgs; readonly argsJson: string };

/** What {@link JobAdapter.cancel} found and did. */
export interface CancelResult {
  readonly id: string;
  /** The state the job was in when the cancel arrived. */
  readonly state: JobState;
  /**
   * Whether this call cancelled it: removed a waiting job, or aborted a
   * running attempt (whose completion the store now refuses). `false` for a
   * job that had already finished.
   */
  readonly cancelled: boolean;
}

/** What `stats()` returns. */
export interface JobStats {
  /** Over every queue. */
  readonly total: StateCounts;
  /** Per queue name. */
  readonly queues: Readonly<Record<string, StateCounts>>;
  /**
   * Per handler name, with whether it is paused and `consumers`: how many live
   * consumer processes registered the handler (absent where the adapter
   * cannot know).
   */
  readonly handlers: Readonly<Record<string, StateCounts & { readonly paused: boolean; readonly consumers?: number }>>;
  /** Queues paused as a whole (`pauseQueue`), where the adapter can pause them. */
  readonly pausedQueues?: readonly string[];
}

/** Paging and filters of `list()`. */
export interface ListOptions {
  readonly queue?: string;
  readonly handler?: string;
  /** @defaultValue 0 */
  readonly offset?: number;
  /** @defaultValue 50 */
  readonly limit?: number;
}

/** One page of `list()`. */
export interface JobPage {
  /** Matching jobs in all pages. */
  readonly total: number;
  readonly jobs: readonly JobInfo[];
}

/** Options of the bulk dead-set actions (`retryDead`, `deleteDead`). */
export interface BulkOptions {
  /**
   * Called as the action goes (after each batch on adapters that work in
   * batches, e.g. 1,000 jobs per script on Redis) with how many jobs it has
   * moved or deleted so far.
   */
  readonly onProgress?: (done: number) => void;
}

/** Who owns one partition of a queue (adapters with partitions). */
export interface PartitionOwner {
  readonly queue: string;
  readonly partition: number;
  /** Member id of the owner, `undefined` while nobody owns it. */
  readonly owner: string | undefined;
  /** Host and pid of the owner, as it registered. */
  readonly host: string | undefined;
  readonly pid: number | undefined;
  /** Fencing token of the current claim. */
  readonly token: number | undefined;
  /** Fencing token the store accepts writes with (equal to `token` once the owner took over). */
  readonly fence: number | undefined;
}

/** Options of `pause()`. */
export interface PauseOptions {
  /**
   * Pause a handler nothing knows yet (a consumer that will start later).
   * @defaultValue false
   */
  readonly force?: boolean;
}

/** What `stop()` reports. */
export interface StopResult {
  /** Running attempts aborted at the timeout. */
  readonly aborted: number;
  /** Jobs that an in-process adapter dropped (scheduled, queued or aborted); 0 for durable adapters. */
  readonly dropped: number;
}

/** A job store. See the module documentation. */
export interface JobAdapter {
  /** Adapter kind for messages and `status()`: `memory`, `redis`, `amqp`. */
  readonly kind: string;
  /** Whether jobs outlive the process (stop puts aborted jobs back instead of dropping them). */
  readonly durable: boolean;
  /**
   * Check a registration against what the adapter can do, before it is added;
   * throw `UnsupportedFeatureError` for a feature it lacks, naming every
   * feature of the registration it lacks (`new UnsupportedFeatureError(kind,
   * refusals)`). The queue gathers the refusals of all registrations into
   * one error.
   */
  checkRegistration?(registration: CompiledRegistration): void;
  /** Features the adapter lacks altogether (the conformance suite skips their cases and checks the refusal). */
  readonly unsupported?: readonly JobFeature[];
  /**
   * Called once, right after the adapter is created and before any other
   * method: the runtime stays valid for the adapter's life.
   */
  attach(runtime: AdapterRuntime): void;
  /**
   * Store jobs: all or none. A job whose `uniqueKey` is held by a queued or
   * running job (or by an earlier job of the same batch) is not added; its
   * result names the holder. Rejects with `QueueUnavailableError` when the
   * store cannot be reached, and with `UnknownHandlerError` if the adapter
   * refuses unregistered handlers (only the in-process one can know).
   */
  enqueue(records: readonly JobRecord[], options?: EnqueueOptions): Promise<EnqueueResult[]>;
  /**
   * Whether {@link JobAdapter.enqueue} takes `options.client` (the caller's
   * database client in its transaction). Without it the queue refuses a
   * client with `UnsupportedFeatureError` (`transactionalEnqueue`).
   */
  readonly acceptsClient?: boolean;
  /** Begin consuming the registered handlers' jobs. */
  start(): Promise<void>;
  /**
   * Stop consuming: start nothing new, wait up to `timeoutMs` for running
   * attempts, then abort them and put them back (durable) or drop them.
   */
  stop(timeoutMs: number): Promise<StopResult>;
  /** Release connections and timers. Idempotent. */
  close(): Promise<void>;
  /** Counts by queue, handler and state. */
  stats(): Promise<JobStats>;
  /** A page of the jobs in a state, oldest first. */
  list(state: JobState, options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions): Promise<JobPage>;
  /** Move one dead job (or all, without `id`) back to ready; returns how many. */
  retryDead(id?: string, options?: BulkOptions): Promise<number>;
  /** Delete one dead job (or all, without `id`); returns how many. */
  deleteDead(id?: string, options?: BulkOptions): Promise<number>;
  /** Partition owners of every known queue, for adapters with partitions. */
  partitions?(): Promise<PartitionOwner[]>;
  /**
   * Stop starting jobs of a handler (they stay queued) until
   * {@link JobAdapter.unpause}. Rejects with `UnknownHandlerError` for a
   * handler the adapter knows nothing of (not registered here, by a live
   * consumer, or by any job in the store), unless `options.force`.
   */
  pause(handler: string, options?: PauseOptions): Promise<void>;
  unpause(handler: string): Promise<void>;
  /**
   * Completed and failed attempts per queue and minute over the last
   * `minutes` (at most 120), counted in the store by every consumer; absent
   * where the adapter keeps no counts.
   */
  throughput?(minutes: number, queue?: string): Promise<QueueThroughput[]>;
  /** Stop starting any job of `queue` (they stay queued) until {@link JobAdapter.unpauseQueue}; cluster-wide where the store is shared. */
  pauseQueue?(queue: string): Promise<void>;
  unpauseQueue?(queue: string): Promise<void>;
  /**
   * A job by id, in any state (finished ones while kept), `undefined` when
   * unknown. `maxFails` may be left `undefined`: the queue fills it from its
   * registration.
   */
  getJob?(id: string): Promise<JobDetails | undefined>;
  /**
   * Cancel a job (see `JobQueue.cancel`): a waiting one is removed (its holds
   * released), a running one is marked so the store refuses its completion,
   * and its attempt aborted wherever it runs (`AdapterRuntime.abortAttempt`),
   * unless `waitingOnly`: then a running job is left as it is (`cancelled: false`).
   * `undefined` when the job is unknown.
   */
  cancel?(id: string, reason: string | undefined, waitingOnly?: boolean): Promise<CancelResult | undefined>;
  /**
   * Resolve with the job once it has finished (completed, dead or cancelled):
   * at once if it has, else when it does, with no polling. `undefined` when
   * the job is unknown. Rejects with `signal.reason` when `signal` aborts.
   */
  awaitFinished?(id: string, signal: AbortSignal): Promise<JobOutcome | undefined>;
  /**
   * Change a job that is not running yet (`promote`, `reschedule`, `update`):
   * resolves with the state it was found in and whether the change applied
   * (`false`, with nothing changed, when the state does not allow it);
   * `undefined` when the job is unknown.
   */
  modify?(id: string, change: JobChange): Promise<{ readonly state: JobState; readonly applied: boolean } | undefined>;
}

/** The `JobRef` of a record. */
export function refOf(job: JobRef): JobRef {
  return { id: job.id, handler: job.handler, queue: job.queue, key: job.key, args: job.args };
}

/** The queue a periodic job's ticks go to: the job's, else its handler's registration's, else `default`. */
export function periodicQueue(runtime: AdapterRuntime, periodic: CompiledPeriodic): string {
  return periodic.job.queue ?? runtime.handlers.get(periodic.job.handler)?.queue ?? 'default';
}

/**
 * The queues a consuming process consumes: `explicit` if given, else the
 * queues of its registrations and periodic jobs, sorted.
 */
export function consumedQueues(runtime: AdapterRuntime, explicit: readonly string[] | undefined): string[] {
  if (explicit !== undefined) return [...explicit];
  const queues = new Set<string>();
  for (const reg of runtime.handlers.values()) queues.add(reg.queue);
  for (const p of runtime.periodics) queues.add(periodicQueue(runtime, p));
  return [...queues].sort();
}

/**
 * Ask the adapter about every registration and refuse them all in one error
 * that names every feature it lacks (not one per run of the program).
 */
export function checkRegistrations(adapter: JobAdapter, registrations: readonly CompiledRegistration[]): void {
  const refusals: FeatureRefusal[] = [];
  let kind = adapter.kind;
  for (const registration of registrations) {
    try {
      adapter.checkRegistration?.(registration);
    } catch (error) {
      if (!(error instanceof UnsupportedFeatureError)) throw error;
      kind = error.adapter;
      for (const r of error.refusals) refusals.push({ ...r, handler: r.handler ?? registration.name });
    }
  }
  if (refusals.length > 0) throw new UnsupportedFeatureError(kind, refusals);
}
