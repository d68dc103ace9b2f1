/**
 * Errors of the job layer. They extend core's {@link ShardworkError} with the
 * codes of {@link JobsErrorCode}, so one `instanceof ShardworkError` and one
 * `switch (error.code)` cover both packages. Invalid options reuse core's
 * `InvalidOptionsError`, and a handler throws core's `NonRetryableError` to send
 * its job to the dead set at once.
 *
 * @module
 */

import { errorMessage, ShardworkError } from '@shardwork/core';

/** Codes of the job layer's errors. */
export type JobsErrorCode =
  | 'INVALID_JOB'
  | 'INVALID_JOB_ARGS'
  | 'JOB_ARGS_TOO_LARGE'
  | 'UNKNOWN_HANDLER'
  | 'JOB_TIMEOUT'
  | 'JOB_ABORTED'
  | 'UNSUPPORTED_FEATURE'
  | 'QUEUE_UNAVAILABLE'
  | 'QUEUE_DATA_LOST'
  | 'QUEUE_CORRUPTED'
  | 'JOB_NOT_FOUND'
  | 'JOB_CANCELLED'
  | 'JOB_DEAD'
  | 'JOB_WAIT_TIMEOUT'
  | 'INVALID_JOB_RESULT'
  | 'JOB_STATE';

/** Base class of the job layer's errors. */
export class JobsError extends ShardworkError<JobsErrorCode> {
  constructor(code: JobsErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(code, message, options);
    this.name = 'JobsError';
  }
}

/** A job passed to `perform*` is malformed (handler name, queue, key, time). */
export class InvalidJobError extends JobsError {
  /** Path of the offending field, e.g. `jobs[2].queue`. */
  readonly path: string;

  constructor(path: string, problem: string) {
    super('INVALID_JOB', `Invalid job: ${path} ${problem}`);
    this.name = 'InvalidJobError';
    this.path = path;
  }
}

/** Job args that are not plain JSON data. Nothing was enqueued. */
export class InvalidJobArgsError extends JobsError {
  /** Path of the offending value, e.g. `args.user.createdAt`. */
  readonly path: string;

  constructor(path: string, problem: string) {
    super('INVALID_JOB_ARGS', `Invalid job args: ${path} ${problem}; args must be plain JSON data`);
    this.name = 'InvalidJobArgsError';
    this.path = path;
  }
}

/** Job args whose JSON is larger than the queue's `maxArgsBytes`. Nothing was enqueued. */
export class JobArgsTooLargeError extends JobsError {
  /** Path of the args, e.g. `args` or `jobs[3].args`. */
  readonly path: string;
  /** Size of the args as JSON, in bytes. */
  readonly bytes: number;
  /** The limit. */
  readonly limit: number;

  constructor(path: string, bytes: number, limit: number, largest: string | undefined) {
    super(
      'JOB_ARGS_TOO_LARGE',
      `Job args too large: ${path} is ${bytes} bytes as JSON, over the limit of ${limit} (maxArgsBytes)` +
        (largest === undefined ? '' : `; the largest field is ${largest}`) +
        '. Store large data elsewhere and pass a reference.',
    );
    this.name = 'JobArgsTooLargeError';
    this.path = path;
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** `perform` named a handler that this (in-process) queue has not registered. Nothing was enqueued. */
export class UnknownHandlerError extends JobsError {
  /** The handler name. */
  readonly handler: string;

  /**
   * @param known - the handlers that are registered.
   * @param hint - what to do instead of the default "call register() before perform()".
   */
  constructor(handler: string, known: readonly string[], hint = 'Call register() before perform().') {
    super(
      'UNKNOWN_HANDLER',
      `No handler registered for job "${handler}" (registered: ${known.length === 0 ? 'none' : known.join(', ')}). ${hint}`,
    );
    this.name = 'UnknownHandlerError';
    this.handler = handler;
  }
}

/** A job attempt ran longer than its `timeoutMs`: its signal aborted and the attempt failed. Retryable. */
export class JobTimeoutError extends JobsError {
  /** The bound that was exceeded. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super('JOB_TIMEOUT', `Job attempt timed out after ${timeoutMs} ms`, { retryable: true });
    this.name = 'JobTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A running job was aborted from outside: the queue stopped past its timeout,
 * or (on adapters with partitions) this replica lost the job's partition. The
 * attempt does not count as a failure; durable adapters run the job again.
 */
export class JobAbortedError extends JobsError {
  constructor(why: string) {
    super('JOB_ABORTED', `Job aborted: ${why}`, { retryable: true });
    this.name = 'JobAbortedError';
  }
}

/** Features an adapter may not offer; `register` refuses options that need them. */
export type JobFeature =
  | 'unique'
  | 'ordered'
  | 'priority'
  | 'maxConcurrency'
  | 'pause'
  | 'admin'
  | 'scheduled'
  | 'timeout'
  | 'jobId'
  | 'jobPriority'
  | 'lookup'
  | 'results'
  | 'cancel'
  | 'transaction'
  | 'transactionalEnqueue';

/** An adapter cannot offer a feature that a registration asked for. */
export class UnsupportedFeatureError extends JobsError {
  /** The feature (the first, when several were refused at once). */
  readonly feature: JobFeature;
  /** Adapter kind, e.g. `amqp`. */
  readonly adapter: string;
  /** Every feature refused, with why and, where a registration asked for it, its handler. */
  readonly refusals: readonly FeatureRefusal[];

  constructor(adapter: string, feature: JobFeature, why: string);
  constructor(adapter: string, refusals: readonly FeatureRefusal[]);
  constructor(adapter: string, feature: JobFeature | readonly FeatureRefusal[], why = '') {
    const refusals = typeof feature === 'string' ? [{ feature, why }] : feature;
    const first = refusals[0] ?? { feature: 'admin' as const, why };
    super(
      'UNSUPPORTED_FEATURE',
      refusals.length === 1
        ? `The ${adapter} job adapter does not support ${first.feature}${first.handler === undefined ? '' : ` (handler "${first.handler}")`}: ${first.why}`
        : `The ${adapter} job adapter does not support ${refusals.length} features asked for: ${refusals
            .map((r) => `${r.feature}${r.handler === undefined ? '' : ` (handler "${r.handler}")`}: ${r.why}`)
            .join('; ')}`,
    );
    this.name = 'UnsupportedFeatureError';
    this.feature = first.feature;
    this.adapter = adapter;
    this.refusals = refusals;
  }
}

/** One feature an adapter refused. */
export interface FeatureRefusal {
  readonly feature: JobFeature;
  readonly why: string;
  /** The registration that asked for it. */
  readonly handler?: string;
}

/** The job store or broker cannot be reached. Retryable; `perform` rejects with it once its retries are spent. */
export class QueueUnavailableError extends JobsError {
  /** Adapter kind, e.g. `redis`. */
  readonly adapter: string;
  /**
   * Whether the write may have reached the store: a request was sent and its
   * reply never came (a timeout, a connection that dropped with the request
   * in flight, a write the primary took but its replicas did not confirm).
   * A rejected `perform` with `ambiguous: true` may still run its job: send
   * it again with the same id (`perform(job, { id })`) to get it once.
   * `false` means nothing was sent (refused connection, no connection).
   */
  readonly ambiguous: boolean;

  constructor(adapter: string, detail: string, cause?: unknown, ambiguous = false) {
    super(
      'QUEUE_UNAVAILABLE',
      `Job queue ${adapter} unavailable: ${detail}${
        ambiguous
          ? ' (the write may have reached the store: send it again with the same id, perform(job, { id }), to get it once)'
          : ''
      }`,
      { cause, retryable: true },
    );
    this.name = 'QueueUnavailableError';
    this.adapter = adapter;
    this.ambiguous = ambiguous;
  }
}

/**
 * A key that holds a queue's jobs has a value of another type (written by
 * hand or by another program): the queue cannot run until it is removed.
 * Not retryable. (Garbage in a bookkeeping key is repaired instead and
 * reported with `record:invalid`.)
 */
export class QueueCorruptedError extends JobsError {
  /** The queue. */
  readonly queue: string;
  /** The key with garbage. */
  readonly key: string;

  constructor(adapter: string, queue: string, key: string, found: string, expected: string) {
    super(
      'QUEUE_CORRUPTED',
      `Job queue ${adapter}: the key ${key} of queue "${queue}" holds a ${found}, not the ${expected} of its jobs. ` +
        `Nothing was changed. Move it away (RENAME) to inspect it, or delete it to start the queue over (its jobs are lost).`,
    );
    this.name = 'QueueCorruptedError';
    this.queue = queue;
    this.key = key;
  }
}

/**
 * The store lost its data (e.g. Redis restarted without persistence): the
 * queue's marker is gone or different. Reported as an `error` event by every
 * process that saw the old data; the queue is recreated and carries on, but the
 * jobs that were in it are gone.
 */
export class QueueDataLostError extends JobsError {
  /** The queue. */
  readonly queue: string;

  constructor(adapter: string, queue: string, detail: string) {
    super(
      'QUEUE_DATA_LOST',
      `Job queue ${adapter} lost the data of queue "${queue}": ${detail}. Jobs accepted before are gone; ` +
        'run Redis with appendonly yes (and appendfsync everysec or always) to keep them.',
    );
    this.name = 'QueueDataLostError';
    this.queue = queue;
  }
}

/** An admin call named a job that is not in the state it needs (e.g. retrying a job that is not dead). */
export class JobNotFoundError extends JobsError {
  /** The job id. */
  readonly id: string;

  constructor(id: string, where: string) {
    super('JOB_NOT_FOUND', `No job ${id} ${where}`);
    this.name = 'JobNotFoundError';
    this.id = id;
  }
}

/**
 * The job was cancelled (`cancel(id)`): a running attempt's `ctx.signal`
 * aborts with it, and `waitFor` rejects with it. Not retryable.
 */
export class JobCancelledError extends JobsError {
  /** The job id. */
  readonly id: string;
  /** The reason given to `cancel`. */
  readonly reason: string | undefined;

  constructor(id: string, reason?: string) {
    super('JOB_CANCELLED', `Job ${id} was cancelled${reason === undefined ? '' : `: ${reason}`}`);
    this.name = 'JobCancelledError';
    this.id = id;
    this.reason = reason;
  }
}

/**
 * `waitFor` of a job that went to the dead set: the message is its last
 * error's, and `lastError` says what it was (the error itself may have been
 * thrown in another process). Not retryable.
 */
export class JobDeadError extends JobsError {
  /** The job id. */
  readonly id: string;
  /** The error of its last attempt. */
  readonly lastError: JobErrorInfo | undefined;

  constructor(id: string, lastError: JobErrorInfo | undefined) {
    super(
      'JOB_DEAD',
      `Job ${id} is dead: ${lastError === undefined ? 'no error was recorded' : `${lastError.name}: ${lastError.message}`}`,
    );
    this.name = 'JobDeadError';
    this.id = id;
    this.lastError = lastError;
  }
}

/** `waitFor` gave up after its `timeoutMs`; the job goes on. Retryable (wait again). */
export class JobWaitTimeoutError extends JobsError {
  /** The job id. */
  readonly id: string;
  /** The bound that passed. */
  readonly timeoutMs: number;

  constructor(id: string, timeoutMs: number) {
    super('JOB_WAIT_TIMEOUT', `Job ${id} did not finish within ${timeoutMs} ms (it goes on; wait again)`, {
      retryable: true,
    });
    this.name = 'JobWaitTimeoutError';
    this.id = id;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A handler returned something that cannot be stored as its job's result (not
 * plain JSON, or larger than `maxArgsBytes`). The attempt fails for good (the
 * job goes dead: the same code would return the same again). Not retryable.
 */
export class InvalidJobResultError extends JobsError {
  constructor(handler: string, why: string) {
    super(
      'INVALID_JOB_RESULT',
      `The result of handler "${handler}" ${why}: return plain JSON (objects, arrays, strings, finite numbers, booleans, null), or nothing`,
    );
    this.name = 'InvalidJobResultError';
  }
}

/** A serialisable summary of an error, as stored with a failed or dead job. */
export interface JobErrorInfo {
  /** `error.name`, or `typeof` for thrown non-errors. */
  readonly name: string;
  /** The message. */
  readonly message: string;
  /** `error.code` when it has one. */
  readonly code?: string;
  /** When it happened, ms since the epoch. */
  readonly at: number;
}

/** Summarise a thrown value for storage. */
export function errorInfo(error: unknown, at: number): JobErrorInfo {
  const name = error instanceof Error ? error.name : typeof error;
  const code = (error as { code?: unknown } | null)?.code;
  return {
    name,
    message: errorMessage(error).slice(0, 2000),
    ...(typeof code === 'string' ? { code } : {}),
    at,
  };
}

/**
 * A change asked of a job in a state that does not allow it (`update` of a
 * running job, `promote` of a completed one): nothing was changed. Not
 * retryable.
 */
export class JobStateError extends JobsError {
  /** The job id. */
  readonly id: string;
  /** The state the job is in. */
  readonly state: string;

  constructor(id: string, state: string, action: string, allowed: readonly string[]) {
    super(
      'JOB_STATE',
      `Cannot ${action} job ${id}: it is ${state}; ${action} works on ${allowed.join(', ')} jobs. Nothing was changed.`,
    );
    this.name = 'JobStateError';
    this.id = id;
    this.state = state;
  }
}
