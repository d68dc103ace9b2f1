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
 * @module
 */

// Re-exported so that handlers import what they throw from one place.
export { NonRetryableError } from '@shardwork/core';
export type {
  AdapterRuntime,
  AttemptOutcome,
  BulkOptions,
  JobAdapter,
  JobPage,
  JobStats,
  ListOptions,
  PartitionOwner,
  PauseOptions,
  RunExtras,
  RunnableJob,
  StateCounts,
  StopResult,
} from './adapter.js';
export { consumedQueues, periodicQueue, refOf } from './adapter.js';
export type { JobArgs, JsonValue } from './args.js';
export { canonicalJson, checkArgs, DEFAULT_MAX_ARGS_BYTES } from './args.js';
export type { FeatureRefusal, JobErrorInfo, JobFeature, JobsErrorCode } from './errors.js';
export {
  errorInfo,
  InvalidJobArgsError,
  InvalidJobError,
  JobAbortedError,
  JobArgsTooLargeError,
  JobNotFoundError,
  JobsError,
  JobTimeoutError,
  QueueCorruptedError,
  QueueDataLostError,
  QueueUnavailableError,
  UnknownHandlerError,
  UnsupportedFeatureError,
} from './errors.js';
export type { DeadReason, DropReason, JobQueueEventMap, JobQueueState } from './events.js';
export { compose, failureOutcome } from './execute.js';
export type {
  AnyJobs,
  ArgsOf,
  BulkJob,
  EnqueueResult,
  Job,
  JobContext,
  JobHandler,
  JobInfo,
  JobMap,
  JobName,
  JobRecord,
  JobRef,
  JobState,
  Middleware,
  PerformOptions,
} from './job.js';
export { JOB_STATES } from './job.js';
export type {
  BackoffFunction,
  CatchUp,
  CompiledPeriodic,
  CompiledQueueOptions,
  CompiledRegistration,
  JobQueueOptions,
  PeriodicOptions,
  RegisterOptions,
} from './options.js';
export {
  checkQueueList,
  compilePeriodic,
  compileQueueOptions,
  compileRegistration,
  gocraftBackoff,
  HANDLER_NAME,
  QUEUE_NAME,
} from './options.js';
export { partitionOf } from './partition.js';
export type { TickCursor, TickPlan, TickPumpOptions, TickWriteResult } from './periodic.js';
export { MAX_TICKS_PER_PLAN, planTicks, TickPump } from './periodic.js';
export type { AdminJobQueue, JobQueueStatus, StartOptions, StopOptions } from './queue.js';
export { createJobQueue, JobQueue } from './queue.js';
export type { JobAdapterFactory, JobAdapterModule } from './registry.js';
export { JOBS_ENV, parseJobQueueUrl, registeredJobQueueProtocols, registerJobQueue } from './registry.js';
export { SimpleQueue } from './simple/simple-queue.js';
