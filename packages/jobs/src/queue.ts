/**
 * {@link JobQueue}: Buffalo's `worker.Worker` (`Register`, `Start`, `Stop`,
 * `Perform`, `PerformAt`, `PerformIn`) over any adapter, and
 * {@link createJobQueue}, which picks the adapter by URL.
 *
 * @module
 */

import { IllegalStateError, InvalidOptionsError, type ScheduleInput, TypedEmitter } from '@shardwork/core';
import { StateMachine, stopOnSignals } from '@shardwork/core/backend';
import {
  type BulkOptions,
  type CancelResult,
  checkRegistrations,
  type JobAdapter,
  type JobPage,
  type JobStats,
  type ListOptions,
  type PartitionOwner,
  type PauseOptions,
  type QueueThroughput,
  type StopResult,
} from './adapter.js';
import { InvalidJobError, UnknownHandlerError, UnsupportedFeatureError } from './errors.js';
import type { JobQueueEventMap, JobQueueState } from './events.js';
import { type CancelOptions, cancelJob, lookUp, modifyJob, type WaitOptions, waitForJob } from './follow.js';
import type {
  AnyJobs,
  ArgsOf,
  BulkJob,
  EnqueueClient,
  EnqueueOptions,
  EnqueueResult,
  Job,
  JobDetails,
  JobHandler,
  JobMap,
  JobName,
  JobRecord,
  JobState,
  Middleware,
  PerformOptions,
} from './job.js';
import {
  type CompiledPeriodic,
  type CompiledQueueOptions,
  type CompiledRegistration,
  compilePeriodic,
  compileQueueOptions,
  compileRegistration,
  type JobQueueOptions,
  type PeriodicOptions,
  type RegisterOptions,
} from './options.js';
import { QueueAdmin } from './queue-admin.js';
import { type JobQueueStatus, type StartOptions, type StopOptions, TRANSITIONS } from './queue-types.js';
import { buildRecord, dueTime, type RawJobOptions } from './record.js';
import { createJobAdapter, parseJobQueueUrl } from './registry.js';
import { QueueRuntime } from './runtime.js';
import { activeTraceparent, loadTracing } from './tracing.js';

export type { JobQueueStatus, StartOptions, StopOptions } from './queue-types.js';

/**
 * A background job queue.
 *
 * ```ts
 * type Jobs = { send_email: { to: string } };
 * const jobs = createJobQueue<Jobs>(process.env.SHARDWORK_JOBS ?? 'memory://');
 * jobs.register('send_email', async (args, ctx) => mailer.send(args.to, { signal: ctx.signal }), { maxFails: 5 });
 * await jobs.start();
 * const { id } = await jobs.perform({ handler: 'send_email', args: { to: 'a@example.com' } });
 * await jobs.stop({ timeoutMs: 10_000 });
 * ```
 */
export class JobQueue<J extends JobMap = AnyJobs> extends TypedEmitter<JobQueueEventMap> {
  readonly #options: CompiledQueueOptions;
  readonly #source: string | JobAdapter;
  readonly #handlers = new Map<string, CompiledRegistration>();
  readonly #middleware: Middleware[] = [];
  readonly #periodics: CompiledPeriodic[] = [];
  readonly #lifecycle = new StateMachine<JobQueueState>('job queue', TRANSITIONS, 'idle');
  #adapter: JobAdapter | undefined;
  #loading: Promise<JobAdapter> | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<StopResult> | undefined;
  /** Jobs this process is enqueueing: a local consumer may fetch one before perform() returns. */
  readonly #runtime: QueueRuntime;
  /** Removes the SIGTERM/SIGINT handlers of `handleSignals`. */
  #removeSignalHandlers: (() => void) | undefined;
  readonly #admin = new QueueAdmin({ load: () => this.#load(), handlers: this.#handlers });

  /**
   * @param adapter - a URL (`memory://`, `redis://…`, `amqp://…`; checked now,
   *   connected on first use) or an adapter instance.
   *   @defaultValue `process.env.SHARDWORK_JOBS`, else `memory://`
   * @param options - queue options; invalid ones throw `InvalidOptionsError` at once.
   */
  constructor(adapter?: string | JobAdapter, options?: JobQueueOptions) {
    super();
    this.#options = compileQueueOptions(options);
    this.logger = this.#options.logger;
    this.#runtime = new QueueRuntime({
      handlers: this.#handlers,
      options: this.#options,
      periodics: this.#periodics,
      middleware: this.#middleware,
      emit: (event, payload) => this.emit(event, payload),
      listenerCount: (event) => this.listenerCount(event),
    });
    if (adapter === undefined || typeof adapter === 'string') {
      this.#source = parseJobQueueUrl(adapter).url;
    } else if (typeof adapter === 'object' && adapter !== null && typeof adapter.enqueue === 'function') {
      this.#source = adapter;
    } else {
      throw new InvalidOptionsError('adapter', adapter, 'a URL string or a JobAdapter instance');
    }
  }

  /** Current lifecycle state. */
  get state(): JobQueueState {
    return this.#lifecycle.state;
  }

  /**
   * Register the handler of jobs named `name` (before `start()`). Registering
   * in a process that never starts is harmless and gives `perform` the
   * handler's `unique` and `queue` options.
   * Throws `InvalidOptionsError` naming a bad option, or `UnsupportedFeatureError`
   * when the adapter cannot honour one.
   */
  register<N extends JobName<J>>(
    name: N,
    handler: JobHandler<ArgsOf<J, N>>,
    options?: RegisterOptions<ArgsOf<J, N>>,
  ): this {
    if (this.#lifecycle.state !== 'idle') throw new IllegalStateError('register a handler', this.#lifecycle.state);
    if (this.#handlers.has(name)) throw new InvalidOptionsError('name', name, 'a handler name not registered yet');
    const registration = compileRegistration(name, handler, options as RegisterOptions<never>);
    // An adapter given as an instance checks at once; one given by URL when it loads (start or first perform).
    const known = this.#adapter ?? (typeof this.#source === 'object' ? this.#source : undefined);
    if (known !== undefined) checkRegistrations(known, [registration]);
    this.#handlers.set(name, registration);
    return this;
  }

  /**
   * Enqueue `job` at every tick of a cron schedule (gocraft's
   * `PeriodicallyEnqueue`), while this queue consumes. Across replicas that
   * share a store each tick is enqueued exactly once, by one replica; ticks
   * that nobody enqueued (every replica down) are caught up per `catchUp`.
   * The job's `scheduledAt` is its tick. Call before `start()`.
   */
  periodic<N extends JobName<J>>(
    name: string,
    schedule: ScheduleInput,
    job: Job<J, N>,
    options?: PeriodicOptions,
  ): this {
    if (this.#lifecycle.state !== 'idle') throw new IllegalStateError('add a periodic job', this.#lifecycle.state);
    if (this.#periodics.some((p) => p.name === name)) {
      throw new InvalidOptionsError('periodic.name', name, 'a name not used by another periodic job');
    }
    const periodic = compilePeriodic(name, schedule, job as Job<AnyJobs>, options);
    this.#record(job, Date.now(), `${name}.job`, Date.now()); // refuse a bad job now, not at the first tick
    this.#periodics.push(periodic);
    return this;
  }

  /** Add middleware around every attempt; middleware runs in the order added. */
  use(middleware: Middleware): this {
    if (typeof middleware !== 'function') throw new InvalidOptionsError('middleware', middleware, 'a function');
    if (this.#lifecycle.state !== 'idle') throw new IllegalStateError('add middleware', this.#lifecycle.state);
    this.#middleware.push(middleware);
    return this;
  }

  /** Begin running jobs. Resolves once the adapter consumes. */
  start(options: StartOptions = {}): Promise<void> {
    if (this.#lifecycle.state !== 'idle') return Promise.reject(new IllegalStateError('start', this.#lifecycle.state));
    const signal = options.signal;
    if (signal !== undefined && typeof signal.addEventListener !== 'function') {
      return Promise.reject(new InvalidOptionsError('signal', signal, 'an AbortSignal'));
    }
    this.#setState('starting');
    this.#starting = (async () => {
      const adapter = await this.#load();
      // An in-process store runs only this process's handlers: a periodic job for another would fail every tick.
      const orphan = adapter.durable ? undefined : this.#periodics.find((p) => !this.#handlers.has(p.job.handler));
      if (orphan !== undefined) {
        throw new UnknownHandlerError(
          orphan.job.handler,
          [...this.#handlers.keys()].sort(),
          `The periodic job "${orphan.name}" needs it: register it before start().`,
        );
      }
      await adapter.start();
      if (this.#lifecycle.state === 'starting') {
        this.#setState('running');
        if (this.#options.handleSignals) this.#removeSignalHandlers = stopOnSignals(() => void this.stop());
      }
    })().catch(async (error: unknown) => {
      await this.#adapter?.close().catch(() => undefined);
      if (this.#lifecycle.state === 'starting') this.#setState('stopped');
      throw error;
    });
    if (signal !== undefined) {
      const onAbort = (): void => void this.stop();
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    return this.#starting;
  }

  /**
   * Stop: start nothing new, wait up to `timeoutMs` for running attempts, then
   * abort them (durable adapters put them back; the in-process one reports them
   * with `job:dropped`, like the scheduled and queued jobs it drops), and close
   * the adapter. Never hangs past the timeout plus the adapter's close.
   * Idempotent; also closes a producer-only queue that never started.
   */
  stop(options: StopOptions = {}): Promise<StopResult> {
    if (this.#stopping !== undefined) return this.#stopping;
    const timeoutMs = options.timeoutMs ?? this.#options.stopTimeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(new InvalidOptionsError('timeoutMs', timeoutMs, 'a number of ms ≥ 0'));
    }
    if (this.#lifecycle.state === 'stopped') return Promise.resolve({ aborted: 0, dropped: 0 });
    this.#stopping = (async () => {
      if (this.#lifecycle.state === 'starting') await this.#starting?.catch(() => undefined);
      if (this.#lifecycle.state === 'stopped') return { aborted: 0, dropped: 0 };
      this.#setState('stopping');
      this.#removeSignalHandlers?.();
      await this.#loading?.catch(() => undefined);
      const adapter = this.#adapter;
      let result: StopResult = { aborted: 0, dropped: 0 };
      if (adapter !== undefined) {
        try {
          result = await adapter.stop(timeoutMs);
        } finally {
          await adapter.close().catch((error: unknown) => this.#reportError(error));
        }
      }
      this.#setState('stopped');
      return result;
    })();
    return this.#stopping;
  }

  /** `await using jobs = createJobQueue(…)` stops it at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Enqueue a job to run now. Resolves with its id once the adapter has
   * accepted it. `options.id` chooses the id (a retry with the same id adds
   * nothing: see {@link PerformOptions.id}).
   */
  async perform<N extends JobName<J>>(job: Job<J, N>, options?: PerformOptions): Promise<EnqueueResult> {
    return this.#enqueueOne(job, undefined, options);
  }

  /** Enqueue a job to run at or after `at` (a `Date` or ms since the epoch; a past time runs now). */
  async performAt<N extends JobName<J>>(
    job: Job<J, N>,
    at: Date | number,
    options?: PerformOptions,
  ): Promise<EnqueueResult> {
    return this.#enqueueOne(job, dueTime(at, 'at'), options);
  }

  /** Enqueue a job to run in `ms` milliseconds. */
  async performIn<N extends JobName<J>>(job: Job<J, N>, ms: number, options?: PerformOptions): Promise<EnqueueResult> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidJobError('ms', `must be a number of ms ≥ 0 (got ${String(ms)})`);
    }
    return this.#enqueueOne(job, Date.now() + ms, options);
  }

  /**
   * Enqueue many jobs in one call (one round trip on adapters with a server):
   * all are checked first, and either all are accepted or none. Each may carry
   * its own `at`. Results are in input order. `options.client`: your database
   * client in your transaction, as for {@link PerformOptions.client}.
   */
  async performMany<N extends JobName<J>>(
    jobs: readonly BulkJob<J, N>[],
    options: EnqueueOptions = {},
  ): Promise<EnqueueResult[]> {
    if (!Array.isArray(jobs)) throw new InvalidJobError('jobs', 'must be an array');
    const client = clientOf(options, 'options');
    this.#assertAccepting();
    const now = Date.now();
    const records = jobs.map((job, i) =>
      this.#record(job, job?.at === undefined ? now : dueTime(job.at, `jobs[${i}].at`), `jobs[${i}]`, now, job ?? {}),
    );
    const given = new Set<string>();
    for (const [i, r] of records.entries()) {
      if (!r.idGiven) continue;
      if (given.has(r.id)) throw new InvalidJobError(`jobs[${i}].id`, `repeats the id ${JSON.stringify(r.id)}`);
      given.add(r.id);
    }
    return this.#submit(records, client);
  }

  /**
   * Enqueue a job to run now and wait for its result (request/response): the
   * handler's return value, or the rejection `waitFor` gives. For a duplicate
   * (a `unique` job already queued, an id already known) it waits for that job.
   */
  async performAndWait<N extends JobName<J>>(
    job: Job<J, N>,
    options: PerformOptions & WaitOptions = {},
  ): Promise<unknown> {
    const { timeoutMs, signal, ...perform } = options;
    if (perform.client !== undefined) {
      throw new InvalidJobError(
        'options.client',
        'cannot be given to performAndWait: the job exists only once your transaction commits, so it cannot run while you wait inside it; perform with { client }, commit, then waitFor(id)',
      );
    }
    const { id } = await this.perform(job, perform);
    return this.waitFor(id, {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /**
   * A job by id, in any state; finished jobs while the queue keeps them (see
   * `keepCompleted`). `undefined` for an unknown id.
   */
  async getJob(id: string): Promise<JobDetails | undefined> {
    return lookUp(await this.#load(), this.#handlers, id);
  }

  /**
   * Wait until job `id` finishes: resolves with what its handler returned;
   * rejects with `JobDeadError` (carrying its last error) when it goes dead,
   * `JobCancelledError` when it is cancelled, `JobNotFoundError` for a job
   * the store does not know (or no longer keeps), `JobWaitTimeoutError` past
   * `timeoutMs`, or the signal's reason. Works from any process that shares
   * the store, for a job that finished before the call too, and without
   * polling: a finished job wakes only the processes waiting for it.
   */
  async waitFor(id: string, options: WaitOptions = {}): Promise<unknown> {
    return waitForJob(await this.#load(), id, options);
  }

  /**
   * Cancel job `id`. A scheduled, ready or retrying job is removed (its unique
   * key released, the next job of its ordered key let through). A running job's
   * attempt is aborted wherever it runs: its `ctx.signal` aborts with
   * `JobCancelledError`, `ctx.owned` turns false, and the store refuses its
   * completion should it finish anyway. Resolves with the state it was found
   * in and whether it was cancelled (`false` for a job that had already
   * finished); rejects with `JobNotFoundError` for an unknown id.
   */
  async cancel(id: string, options: CancelOptions = {}): Promise<CancelResult> {
    return cancelJob(await this.#load(), id, options);
  }

  /**
   * Run a scheduled or retrying job now (a ready one is left as it is).
   * `JobStateError` for a running or finished job, `JobNotFoundError` for an
   * unknown one; nothing is changed then.
   */
  async promote(id: string): Promise<void> {
    await modifyJob(await this.#load(), id, 'promote', undefined, this.#options.maxArgsBytes);
  }

  /** Run a scheduled or retrying job at `at` (a `Date` or ms since the epoch) instead. Errors as {@link JobQueue.promote}. */
  async reschedule(id: string, at: Date | number): Promise<void> {
    await modifyJob(await this.#load(), id, 'reschedule', at, this.#options.maxArgsBytes);
  }

  /**
   * Replace the args of a job that has not started (scheduled, ready or
   * retrying), checked as `perform` checks them. Its unique key stays the one
   * it was enqueued with. Errors as {@link JobQueue.promote}.
   */
  async update<N extends JobName<J>>(id: string, change: { readonly args: ArgsOf<J, N> }): Promise<void> {
    await modifyJob(await this.#load(), id, 'update', change, this.#options.maxArgsBytes);
  }

  /** A snapshot of this process's view of the queue. */
  status(): JobQueueStatus {
    return {
      state: this.#lifecycle.state,
      adapter: this.#adapter?.kind,
      consuming: this.#lifecycle.state === 'running',
      handlers: [...this.#handlers.keys()].sort(),
      running: this.#runtime.running,
      counts: { ...this.#runtime.counts },
    };
  }

  /** Counts of jobs by queue, handler and state, over the whole store. */
  async stats(): Promise<JobStats> {
    return this.#admin.stats();
  }

  /** A page of the jobs in `state`, oldest first, with their last errors. */
  async list(state: JobState, options: ListOptions = {}): Promise<JobPage> {
    return this.#admin.list(state, options);
  }

  /**
   * Move a dead job (or every dead job, without `id`) back to ready. Returns
   * how many moved. `onProgress` follows a large bulk move.
   */
  async retryDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#admin.retryDead(id, options);
  }

  /** Delete a dead job (or every dead job, without `id`). Returns how many were deleted. */
  async deleteDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#admin.deleteDead(id, options);
  }

  /** Who owns each partition of each queue, with tokens (empty for adapters without partitions). */
  async partitions(): Promise<PartitionOwner[]> {
    return this.#admin.partitions();
  }

  /**
   * Start no more jobs of `handler` (they stay queued) until
   * {@link JobQueue.unpause}; cluster-wide where the store is shared. A
   * handler nothing knows (not registered here or by a live consumer, no job
   * of it in the store) is refused with `UnknownHandlerError`, a typo being
   * likelier than a consumer yet to come; `{ force: true }` pauses it anyway.
   */
  async pause(handler: string, options: PauseOptions = {}): Promise<void> {
    await this.#admin.pause(handler, options);
  }

  /** Resume a paused handler. */
  async unpause(handler: string): Promise<void> {
    await this.#admin.unpause(handler);
  }

  /**
   * Completed and failed attempts per queue and minute over the last
   * `minutes` (default 60, at most 120), oldest first, counted in the store by
   * every consumer (`memory://`: this process). For a throughput chart; an
   * adapter that keeps no counts (`amqp://`) refuses with
   * `UnsupportedFeatureError`.
   */
  async throughput(options: { readonly minutes?: number; readonly queue?: string } = {}): Promise<QueueThroughput[]> {
    return this.#admin.throughput(options);
  }

  /**
   * Start no more jobs of any handler in `queue` (they stay queued, running
   * ones finish) until {@link JobQueue.unpauseQueue}; cluster-wide where the
   * store is shared. Beside `pause(handler)`, which pauses one handler in every
   * queue. `amqp://` refuses it.
   */
  async pauseQueue(queue: string): Promise<void> {
    await this.#admin.pauseQueue(queue);
  }

  /** Resume a paused queue. */
  async unpauseQueue(queue: string): Promise<void> {
    await this.#admin.unpauseQueue(queue);
  }

  // ── internals ────────────────────────────────────────────────────────────

  #setState(to: JobQueueState): void {
    const from = this.#lifecycle.to(to);
    this.emit('state', { from, to });
  }

  #assertAccepting(): void {
    if (this.#lifecycle.state === 'stopping' || this.#lifecycle.state === 'stopped')
      throw new IllegalStateError('perform', this.#lifecycle.state);
  }

  async #enqueueOne(job: unknown, runAt: number | undefined, options: unknown): Promise<EnqueueResult> {
    this.#assertAccepting();
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidJobError('options', `must be an object { id?, priority? } (got ${String(options)})`);
    }
    const now = Date.now();
    const client = clientOf(options ?? {}, 'options');
    const [result] = await this.#submit(
      [this.#record(job, runAt ?? now, 'job', now, (options ?? {}) as PerformOptions, 'options')],
      client,
    );
    return result as EnqueueResult;
  }

  async #submit(records: JobRecord[], client?: EnqueueClient): Promise<EnqueueResult[]> {
    if (records.length === 0) return [];
    const adapter = await this.#load();
    this.#assertAccepting();
    if (client !== undefined && adapter.acceptsClient !== true) {
      throw new UnsupportedFeatureError(
        adapter.kind,
        'transactionalEnqueue',
        'it does not keep jobs in a database of yours, so a perform cannot join your transaction; use postgres://, or perform after your commit',
      );
    }
    const traceparent = activeTraceparent();
    return this.#runtime.submit(
      adapter,
      traceparent === undefined ? records : records.map((r) => ({ ...r, traceparent })),
      client === undefined ? undefined : { client },
    );
  }

  /** The adapter, created (and its package loaded) on first use. */
  #load(): Promise<JobAdapter> {
    this.#loading ??= (async () => {
      const source = this.#source;
      const adapter = typeof source === 'string' ? await createJobAdapter(source, this.#options) : source;
      checkRegistrations(adapter, [...this.#handlers.values()]);
      adapter.attach(this.#runtime);
      this.#adapter = adapter;
      // Before the first perform or attempt: whether @opentelemetry/api is there.
      await loadTracing();
      return adapter;
    })();
    return this.#loading;
  }

  #reportError(error: unknown): void {
    this.#runtime.reportError(error);
  }

  /** Check a job and build its record (see record.ts). */
  #record(
    job: unknown,
    runAt: number,
    path: string,
    now: number,
    options?: RawJobOptions,
    optionsPath?: string,
  ): JobRecord {
    return buildRecord(
      { handlers: this.#handlers, maxArgsBytes: this.#options.maxArgsBytes },
      job,
      runAt,
      path,
      now,
      options,
      optionsPath,
    );
  }
}

/**
 * A job queue of any job map, as operating tools (metrics, the dashboard, the
 * CLI) take it: its events, state and admin API, none of which depend on the
 * job types, so a `JobQueue<MyJobs>` fits.
 */
export type AdminJobQueue = Pick<
  JobQueue,
  | 'on'
  | 'state'
  | 'status'
  | 'stats'
  | 'list'
  | 'getJob'
  | 'waitFor'
  | 'cancel'
  | 'promote'
  | 'retryDead'
  | 'deleteDead'
  | 'partitions'
  | 'pause'
  | 'unpause'
  | 'pauseQueue'
  | 'unpauseQueue'
  | 'throughput'
  | 'stop'
>;

/**
 * Create a job queue. The adapter is chosen by URL (`memory://`, the default;
 * `redis://…`; `amqp://…`), else by `SHARDWORK_JOBS`; its package loads on
 * first use. A malformed URL or an unknown scheme throws at once.
 */
export function createJobQueue<J extends JobMap = AnyJobs>(
  adapter?: string | JobAdapter,
  options?: JobQueueOptions,
): JobQueue<J> {
  return new JobQueue<J>(adapter, options);
}

/** The `client` of perform options, checked to be an object when given. */
function clientOf(options: { readonly client?: unknown }, path: string): EnqueueClient | undefined {
  const { client } = options;
  if (client === undefined) return undefined;
  if (typeof client !== 'object' || client === null) {
    throw new InvalidJobError(
      `${path}.client`,
      `must be your database client inside your transaction (got ${String(client)}); leave it out to enqueue on the queue's own connection`,
    );
  }
  return client;
}
