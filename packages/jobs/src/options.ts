/**
 * Options of a job queue and of each registration, and the single place that
 * validates them, fills defaults and converts forms: {@link compileQueueOptions}
 * and {@link compileRegistration}. Everything after them reads the compiled types.
 *
 * @module
 */

import {
  type CompiledSchedule,
  compileRetry,
  compileSchedule,
  InvalidOptionsError,
  type Logger,
  MAX_TIMER_MS,
  type RetryOptions,
  type ScheduleInput,
} from '@shardwork/core';
import { compileLogger } from '@shardwork/core/backend';
import { canonicalJson, DEFAULT_MAX_ARGS_BYTES, type JobArgs } from './args.js';
import type { AnyJobs, Job, JobHandler } from './job.js';

/** A name of a handler: letters, digits, `_ . : -`, 1–100 characters. */
export const HANDLER_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
/** A queue name: letters, digits, `_ . -`, 1–100 characters (it names a coordinator service on Redis). */
export const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
/** The longest ordering key, in characters. */
export const MAX_KEY_LENGTH = 1000;

/**
 * Delay before the next attempt: given the number of failed attempts so far
 * (1 after the first failure) and the error, return ms, or `null` to give up
 * (the job goes to the dead set).
 */
export type BackoffFunction = (fails: number, error: unknown) => number | null;

/**
 * gocraft/work's (and Sidekiq's) default curve, in ms: `fails⁴ + 15 + rand(30) × (fails + 1)` seconds,
 * so about 16–74 s after the first failure, 31–104 s after the second, 96–189 s after the third.
 */
export const gocraftBackoff: BackoffFunction = (fails) =>
  (fails ** 4 + 15 + Math.floor(Math.random() * 30) * (fails + 1)) * 1000;

/** Options of `register(name, handler, options)`, with gocraft/work's meaning and defaults. */
export interface RegisterOptions<A = JobArgs> {
  /**
   * Attempts before the job goes to the dead set (gocraft's `MaxFails`): the
   * attempt that fails for the `maxFails`-th time is the last.
   * @defaultValue 4
   */
  readonly maxFails?: number;
  /**
   * Delay before each retry: gocraft's default curve, a core-style retry policy
   * (`{ initialIntervalMs, backoffCoefficient, maximumIntervalMs }`; the number
   * of attempts is `maxFails`), or a {@link BackoffFunction}.
   * @defaultValue {@link gocraftBackoff}
   */
  readonly backoff?: BackoffFunction | Omit<RetryOptions, 'maximumAttempts'>;
  /**
   * Bound of one attempt in ms: then `ctx.signal` aborts with `JobTimeoutError`,
   * `ctx.owned` turns false and the attempt counts as failed. `0` = no bound.
   * @defaultValue 0
   */
  readonly timeoutMs?: number;
  /**
   * gocraft's priority, 1–100000: when several handlers have jobs waiting, the
   * next one is drawn at random with probability proportional to its priority,
   * so a higher priority runs more often and a lower one never starves.
   * @defaultValue 1
   */
  readonly priority?: number;
  /**
   * Most attempts of this handler running at once (across the cluster on
   * adapters that share a store). `0` = no limit beyond the queue's `concurrency`.
   * @defaultValue 0
   */
  readonly maxConcurrency?: number;
  /**
   * At most one queued-or-running job per unique key: `true` keys on the args,
   * a function returns the key. A duplicate `perform` resolves with
   * `duplicate: true` and the existing job's id. The key is released when the
   * job completes or dies.
   * @defaultValue false
   */
  readonly unique?: boolean | ((args: A) => string);
  /**
   * Jobs of ordered handlers that share a `key` (within a queue) run one at a
   * time, in the order they became due, across retries: a failed job holds
   * back the later jobs of its key until it completes or dies.
   * @defaultValue false
   */
  readonly ordered?: boolean;
  /**
   * Queue that this handler's jobs go to when `perform` names none.
   * @defaultValue `'default'`
   */
  readonly queue?: string;
}

/** A registration after {@link compileRegistration}. */
export interface CompiledRegistration {
  readonly name: string;
  readonly handler: JobHandler<JobArgs>;
  readonly maxFails: number;
  readonly backoff: BackoffFunction;
  readonly timeoutMs: number;
  readonly priority: number;
  readonly maxConcurrency: number;
  /** The unique key of a job's args, or `undefined` when the handler is not unique. */
  readonly uniqueKey: ((args: JobArgs) => string) | undefined;
  readonly ordered: boolean;
  readonly queue: string;
}

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(option, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

function compileBackoff(name: string, input: RegisterOptions['backoff']): BackoffFunction {
  if (input === undefined) return gocraftBackoff;
  if (typeof input === 'function') return input;
  if (typeof input !== 'object' || input === null) {
    throw new InvalidOptionsError(`${name}.backoff`, input, 'a function or { initialIntervalMs, backoffCoefficient }');
  }
  if ('maximumAttempts' in input) {
    throw new InvalidOptionsError(
      `${name}.backoff.maximumAttempts`,
      (input as RetryOptions).maximumAttempts,
      'absent: the number of attempts of a job is maxFails',
    );
  }
  return compileRetry(input, `${name}.backoff`);
}

/** Validate a registration and fill defaults. Throws `InvalidOptionsError` naming the option. */
export function compileRegistration(
  name: string,
  handler: unknown,
  options: RegisterOptions<never> | undefined,
): CompiledRegistration {
  if (typeof name !== 'string' || !HANDLER_NAME.test(name)) {
    throw new InvalidOptionsError('name', name, 'a handler name of 1–100 letters, digits, "_", ".", ":" or "-"');
  }
  if (typeof handler !== 'function') throw new InvalidOptionsError(`${name}.handler`, handler, 'a function');
  const o = (options ?? {}) as RegisterOptions<JobArgs>;
  if (typeof o !== 'object' || o === null) throw new InvalidOptionsError(`${name}.options`, o, 'an object');
  const known = new Set([
    'maxFails',
    'backoff',
    'timeoutMs',
    'priority',
    'maxConcurrency',
    'unique',
    'ordered',
    'queue',
  ]);
  for (const key of Object.keys(o)) {
    if (!known.has(key))
      throw new InvalidOptionsError(`${name}.${key}`, (o as Record<string, unknown>)[key], 'a known option');
  }
  const unique = o.unique ?? false;
  let uniqueKey: CompiledRegistration['uniqueKey'];
  if (unique === true) uniqueKey = (args) => canonicalJson(args);
  else if (typeof unique === 'function') uniqueKey = unique;
  else if (unique !== false)
    throw new InvalidOptionsError(`${name}.unique`, unique, 'a boolean or a function (args) => key');
  const ordered = o.ordered ?? false;
  if (typeof ordered !== 'boolean') throw new InvalidOptionsError(`${name}.ordered`, ordered, 'a boolean');
  const queue = o.queue ?? 'default';
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) {
    throw new InvalidOptionsError(`${name}.queue`, queue, 'a queue name of 1–100 letters, digits, "_", "." or "-"');
  }
  return {
    name,
    handler: handler as JobHandler<JobArgs>,
    maxFails: integer(`${name}.maxFails`, o.maxFails ?? 4, 1, 1_000_000),
    backoff: compileBackoff(name, o.backoff),
    timeoutMs: integer(`${name}.timeoutMs`, o.timeoutMs ?? 0, 0, MAX_TIMER_MS),
    priority: integer(`${name}.priority`, o.priority ?? 1, 1, 100_000),
    maxConcurrency: integer(`${name}.maxConcurrency`, o.maxConcurrency ?? 0, 0, 1_000_000),
    uniqueKey,
    ordered,
    queue,
  };
}

/** Options of a job queue (`createJobQueue(url, options)`); adapters read the ones they use. */
export interface JobQueueOptions {
  /**
   * Most job attempts this process runs at once.
   * @defaultValue 10
   */
  readonly concurrency?: number;
  /**
   * Largest args, as JSON bytes, that `perform` accepts.
   * @defaultValue 1048576 (1 MiB)
   */
  readonly maxArgsBytes?: number;
  /**
   * Default bound of `stop()` in ms, after which running jobs are aborted.
   * @defaultValue 10000
   */
  readonly stopTimeoutMs?: number;
  /**
   * How long an id chosen by the caller (`perform(job, { id })`) is
   * remembered after the perform: another perform with that id within this
   * time adds nothing, even when the first job already completed. Beyond it,
   * the id is known only while its job is still stored. Costs one small key
   * per such job on Redis for this long.
   * @defaultValue 3600000 (one hour)
   */
  readonly idempotencyWindowMs?: number;
  /**
   * Where the queue's own messages go (a failure nobody listens for, an error
   * with no `error` listener, a job nobody consumes, the adapter's retries at
   * `debug`), and its adapter's workers' too: pino's shape, fields first
   * (`queue`, `handler`, `jobId`, `attempt`, `partition`, `error`; see core's
   * `Logger`). Given a logger, nothing is printed to the console.
   * @defaultValue `consoleLogger()` of `@shardwork/core`: level `warn`
   */
  readonly logger?: Logger;
  /**
   * Which completed and cancelled jobs are kept, with their results, for
   * `getJob`, `list('completed' | 'cancelled')` and `waitFor`: per queue, the
   * newest `count` of each state, none older than `ageMs` (`redis://` drops
   * the older ones in batches: up to a tenth more may be kept between two
   * trims). `false` keeps none
   * (`waitFor` then needs to be called before the job finishes).
   * @defaultValue `{ count: 1000, ageMs: 86400000 }` (the last 1,000, at most a day)
   */
  readonly keepCompleted?: KeepCompleted | false;
  /**
   * Least time between two stores of one attempt's `ctx.progress()`: calls in
   * between are merged, the last value stored when the interval ends.
   * @defaultValue 250
   */
  readonly progressIntervalMs?: number;
  /**
   * Stop gracefully (`stop()` with `stopTimeoutMs`) on the first SIGTERM or
   * SIGINT once started, as core's `Worker` does: what a Kubernetes pod or
   * Ctrl-C asks for. The handlers are removed when the queue stops.
   * @defaultValue false
   */
  readonly handleSignals?: boolean;
  /** Adapter-specific options, passed through to the adapter's factory. */
  readonly adapter?: Readonly<Record<string, unknown>>;
}

/** Retention of finished jobs (see {@link JobQueueOptions.keepCompleted}). */
export interface KeepCompleted {
  /** Newest jobs of each state kept per queue. @defaultValue 1000 */
  readonly count?: number;
  /** Oldest a kept job may be, in ms since it finished. @defaultValue 86400000 (a day) */
  readonly ageMs?: number;
}

/** Queue options after {@link compileQueueOptions}. */
export interface CompiledQueueOptions {
  readonly concurrency: number;
  readonly maxArgsBytes: number;
  readonly stopTimeoutMs: number;
  readonly idempotencyWindowMs: number;
  /** `count` 0 keeps none. */
  readonly keepCompleted: Required<KeepCompleted>;
  readonly progressIntervalMs: number;
  readonly handleSignals: boolean;
  readonly logger: Logger;
  readonly adapter: Readonly<Record<string, unknown>>;
}

/**
 * Check an adapter's `queues` option (the queues a process consumes): a
 * non-empty array of queue names, or `undefined`. Throws `InvalidOptionsError`.
 */
export function checkQueueList(queues: unknown): readonly string[] | undefined {
  if (queues === undefined) return undefined;
  if (!Array.isArray(queues) || queues.length === 0) {
    throw new InvalidOptionsError('queues', queues, 'a non-empty array of queue names');
  }
  for (const [i, q] of queues.entries()) {
    if (typeof q !== 'string' || !QUEUE_NAME.test(q)) {
      throw new InvalidOptionsError(`queues[${i}]`, q, 'a queue name of 1–100 letters, digits, "_", "." or "-"');
    }
  }
  return queues as readonly string[];
}

/** Validate queue options and fill defaults. Throws `InvalidOptionsError` naming the option. */
export function compileQueueOptions(options: JobQueueOptions | undefined): CompiledQueueOptions {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new InvalidOptionsError('options', o, 'an object');
  const adapter = o.adapter ?? {};
  if (typeof adapter !== 'object' || adapter === null) {
    throw new InvalidOptionsError('adapter', adapter, 'an object of adapter options');
  }
  return {
    concurrency: integer('concurrency', o.concurrency ?? 10, 1, 100_000),
    maxArgsBytes: integer('maxArgsBytes', o.maxArgsBytes ?? DEFAULT_MAX_ARGS_BYTES, 2, 512 * 1024 * 1024),
    stopTimeoutMs: integer('stopTimeoutMs', o.stopTimeoutMs ?? 10_000, 0, MAX_TIMER_MS),
    idempotencyWindowMs: integer('idempotencyWindowMs', o.idempotencyWindowMs ?? 3_600_000, 0, 30 * 86_400_000),
    keepCompleted: compileKeep(o.keepCompleted),
    progressIntervalMs: integer('progressIntervalMs', o.progressIntervalMs ?? 250, 0, 3_600_000),
    handleSignals: flag('handleSignals', o.handleSignals ?? false),
    logger: compileLogger(o.logger),
    adapter,
  };
}

function flag(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionsError(option, value, 'true or false');
  return value;
}

function compileKeep(keep: KeepCompleted | false | undefined): Required<KeepCompleted> {
  if (keep === false) return { count: 0, ageMs: 0 };
  if (keep === undefined) return { count: 1000, ageMs: 86_400_000 };
  if (typeof keep !== 'object' || keep === null) {
    throw new InvalidOptionsError('keepCompleted', keep, '{ count?, ageMs? } or false');
  }
  return {
    count: integer('keepCompleted.count', keep.count ?? 1000, 0, 10_000_000),
    ageMs: integer('keepCompleted.ageMs', keep.ageMs ?? 86_400_000, 1, 365 * 86_400_000),
  };
}

/** What to do, when a replica takes over a periodic job, about ticks that nobody enqueued. */
export type CatchUp = 'skip' | 'once' | 'all';

/** Options of `periodic(name, schedule, job, options)`. */
export interface PeriodicOptions {
  /**
   * Ticks missed while no replica owned the schedule (all stopped, or a
   * failover), within `horizonMs`: `skip` enqueues none of them, `once` the
   * newest one, `all` every one (at most 1000).
   * @defaultValue `'once'`
   */
  readonly catchUp?: CatchUp;
  /**
   * How far back missed ticks count.
   * @defaultValue 3600000 (one hour)
   */
  readonly horizonMs?: number;
}

/** A periodic job after {@link compilePeriodic}. */
export interface CompiledPeriodic {
  /** Identity of the schedule (its last enqueued tick is kept under this name). */
  readonly name: string;
  readonly schedule: CompiledSchedule;
  /** The job each tick enqueues. */
  readonly job: Job<AnyJobs>;
  readonly catchUp: CatchUp;
  readonly horizonMs: number;
}

/** Validate a periodic job. Throws `InvalidOptionsError` or `InvalidCronError`. */
export function compilePeriodic(
  name: string,
  schedule: ScheduleInput,
  job: Job<AnyJobs>,
  options: PeriodicOptions | undefined,
): CompiledPeriodic {
  if (typeof name !== 'string' || !HANDLER_NAME.test(name)) {
    throw new InvalidOptionsError('periodic.name', name, 'a name of 1–100 letters, digits, "_", ".", ":" or "-"');
  }
  const compiled = compileSchedule(schedule);
  if (compiled === undefined) throw new InvalidOptionsError(`${name}.schedule`, schedule, 'a cron expression');
  const o = options ?? {};
  const catchUp = o.catchUp ?? 'once';
  if (catchUp !== 'skip' && catchUp !== 'once' && catchUp !== 'all') {
    throw new InvalidOptionsError(`${name}.catchUp`, catchUp, '"skip", "once" or "all"');
  }
  return {
    name,
    schedule: compiled,
    job,
    catchUp,
    horizonMs: integer(`${name}.horizonMs`, o.horizonMs ?? 3_600_000, 0, 366 * 86_400_000),
  };
}
