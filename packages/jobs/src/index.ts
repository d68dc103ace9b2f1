/**
 * shardwork jobs: background jobs with Buffalo's `Perform`/`PerformAt`/
 * `PerformIn` and gocraft/work's features, over an in-process default
 * (`memory://`), Redis or RabbitMQ.
 *
 * ```ts
 * import { createJobQueue } from '@shardwork/jobs';
 *
 * type Jobs = { send_email: { to: string } };
 * const jobs = createJobQueue<Jobs>(process.env.SHARDWORK_JOBS ?? 'memory://');
 * jobs.register('send_email', async (args, ctx) => { await send(args.to, { signal: ctx.signal }); }, { maxFails: 4 });
 * await jobs.start();
 * const { id } = await jobs.perform({ handler: 'send_email', args: { to: 'a@example.com' } });
 * await jobs.performIn({ handler: 'send_email', args: { to: 'b@example.com' } }, 60_000);
 * await jobs.stop({ timeoutMs: 10_000 });
 * ```
 *
 * Adapter authors: `@shardwork/jobs/adapter`; the conformance suite:
 * `@shardwork/jobs/testing`.
 *
 * @module
 */

// Re-exported so that handlers import what they throw from one place.
export { NonRetryableError } from '@shardwork/core';
// The admin API's shapes; JobAdapter is the type of an adapter instance given to createJobQueue.
// Adapter authors build on @shardwork/jobs/adapter.
export type {
  BulkOptions,
  CancelResult,
  JobAdapter,
  JobChange,
  JobPage,
  JobStats,
  ListOptions,
  PartitionOwner,
  PauseOptions,
  QueueThroughput,
  StateCounts,
  StopResult,
  ThroughputPoint,
} from './adapter.js';
export type { JobArgs, JsonValue } from './args.js';
export type { FeatureRefusal, JobErrorInfo, JobFeature, JobsErrorCode } from './errors.js';
export {
  InvalidJobArgsError,
  InvalidJobError,
  InvalidJobResultError,
  JobAbortedError,
  JobArgsTooLargeError,
  JobCancelledError,
  JobDeadError,
  JobNotFoundError,
  JobStateError,
  JobsError,
  JobTimeoutError,
  JobWaitTimeoutError,
  QueueCorruptedError,
  QueueDataLostError,
  QueueUnavailableError,
  UnknownHandlerError,
  UnsupportedFeatureError,
} from './errors.js';
export type { DeadReason, DropReason, JobQueueEventMap, JobQueueState } from './events.js';
export type { CancelOptions, WaitOptions } from './follow.js';
export type {
  AnyJobs,
  ArgsOf,
  BulkJob,
  CountedState,
  EnqueueClient,
  EnqueueResult,
  Job,
  JobContext,
  JobDetails,
  JobHandler,
  JobInfo,
  JobMap,
  JobName,
  JobRef,
  JobResult,
  JobState,
  JobTransaction,
  Middleware,
  PerformOptions,
} from './job.js';
export { COUNTED_STATES, FINISHED_STATES, JOB_STATES } from './job.js';
export type {
  BackoffFunction,
  CatchUp,
  JobQueueOptions,
  KeepCompleted,
  PeriodicOptions,
  RegisterOptions,
} from './options.js';
export { gocraftBackoff } from './options.js';
export type { AdminJobQueue, JobQueueStatus, StartOptions, StopOptions } from './queue.js';
export { createJobQueue, JobQueue } from './queue.js';
export { JOBS_ENV, parseJobQueueUrl, registeredJobQueueProtocols } from './registry.js';
export { SimpleQueue } from './simple/simple-queue.js';
