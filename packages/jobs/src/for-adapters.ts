/**
 * `@shardwork/jobs/adapter`: what an author of a job adapter (a store or
 * broker behind `createJobQueue`) builds on. Applications use
 * `@shardwork/jobs`; this entry point is the other side of that contract:
 *
 * - the contract itself: {@link JobAdapter}, the {@link AdapterRuntime} the
 *   queue hands an adapter (run an attempt, report its outcome, emit), and
 *   the shapes it stores ({@link JobRecord}) and answers with;
 * - the shared rooms: {@link PartitionedConsumption} (partitions owned through
 *   core's coordinator, one `Worker` per queue), the periodic-tick planner
 *   ({@link planTicks}, {@link TickPump}), {@link partitionOf}, and the
 *   process's `concurrency` shared by its partition consumers ({@link Dispatcher});
 * - the helpers every adapter needs: option compilers, {@link errorInfo},
 *   {@link refOf}, the protocol registration ({@link registerJobQueue});
 * - the errors an adapter throws.
 *
 * The conformance suite every adapter passes is `@shardwork/jobs/testing`.
 *
 * ```ts
 * import { type JobAdapter, PartitionedConsumption, registerJobQueue } from '@shardwork/jobs/adapter';
 * registerJobQueue('mystore', (url, options) => new MyStoreAdapter(url, options));
 * ```
 *
 * @module
 */

export type {
  AdapterRuntime,
  AttemptOutcome,
  BulkOptions,
  CancelResult,
  JobAdapter,
  JobChange,
  JobOutcome,
  JobPage,
  JobStats,
  ListOptions,
  PartitionOwner,
  PauseOptions,
  QueueThroughput,
  RunExtras,
  RunnableJob,
  StateCounts,
  StopResult,
  ThroughputPoint,
} from './adapter.js';
export { consumedQueues, periodicQueue, refOf } from './adapter.js';
export type { JobArgs, JsonValue } from './args.js';
export { canonicalJson, checkArgs, DEFAULT_MAX_ARGS_BYTES } from './args.js';
export { Dispatcher, Slots } from './dispatcher.js';
export type { FeatureRefusal, JobErrorInfo, JobFeature } from './errors.js';
export {
  errorInfo,
  InvalidJobError,
  JobAbortedError,
  JobCancelledError,
  JobNotFoundError,
  QueueCorruptedError,
  QueueDataLostError,
  QueueUnavailableError,
  UnknownHandlerError,
  UnsupportedFeatureError,
} from './errors.js';
export type { DeadReason, DropReason, JobQueueEventMap } from './events.js';
export { compose, failureOutcome } from './execute.js';
export type {
  CountedState,
  EnqueueClient,
  EnqueueOptions,
  EnqueueResult,
  JobDetails,
  JobInfo,
  JobRecord,
  JobRef,
  JobState,
  JobTransaction,
} from './job.js';
export { COUNTED_STATES, JOB_STATES } from './job.js';
export type { CompiledPeriodic, CompiledQueueOptions, CompiledRegistration } from './options.js';
export {
  checkQueueList,
  compilePeriodic,
  compileQueueOptions,
  compileRegistration,
  HANDLER_NAME,
  QUEUE_NAME,
} from './options.js';
export { partitionOf } from './partition.js';
export type { PartitionRun } from './partition-run.js';
export { runPartition } from './partition-run.js';
export type { PartitionedOptions } from './partitioned.js';
export { PartitionedConsumption } from './partitioned.js';
export type { TickCursor, TickPlan, TickPumpOptions, TickWriteResult } from './periodic.js';
export { MAX_TICKS_PER_PLAN, planTicks, TickPump } from './periodic.js';
export type { JobAdapterFactory, JobAdapterModule } from './registry.js';
export { registerJobQueue } from './registry.js';
