/**
 * shardwork core: clustered, sharded background workers.
 *
 * @module
 */

export type {
  Assignment,
  AssignmentInput,
  AssignmentMember,
  AssignmentStrategy,
  StrategyName,
} from './assignment.js';
export { balanced, computeAssignment, quotas, range, roundRobin, strategies } from './assignment.js';
export type { Clock } from './clock.js';
export { MAX_TIMER_MS, settlesWithin, sleep, systemClock } from './clock.js';
export type {
  Claim,
  ClaimBatch,
  ClaimRef,
  ClaimResult,
  Discovery,
  DiscoveryChange,
  DiscoveryEvent,
  DiscoveryListener,
  EnsureGroupOptions,
  GroupSettings,
  InvalidRecord,
  Member,
  MemberInfo,
  Registration,
  RenewResult,
  Snapshot,
  StoredGroup,
} from './discovery/contract.js';
export type { ServiceHealth, ServiceInspection } from './discovery/inspect.js';
export { inspectSnapshot, serviceHealth } from './discovery/inspect.js';
export type { MemoryDiscoveryOptions, MemoryStoreOptions } from './discovery/memory.js';
export { MemoryDiscovery, MemoryStore, sharedMemoryStore } from './discovery/memory.js';
export type { MemberRecordResult, ParsedMemberRecord } from './discovery/records.js';
export { encodeMemberRecord, parseMemberRecord } from './discovery/records.js';
export type { DiscoveryFactory, DiscoveryModule } from './discovery/registry.js';
export {
  createDiscovery,
  DISCOVERY_ENV,
  parseDiscoveryUrl,
  registerDiscovery,
  registeredProtocols,
} from './discovery/registry.js';
export type { RefusalReason, RevokeTimeoutContext, ShardworkErrorCode } from './errors.js';
export {
  AttemptsExhaustedError,
  BackendRefusedError,
  DiscoveryUnavailableError,
  describe as describeValue,
  IllegalStateError,
  InvalidAssignmentError,
  InvalidCronError,
  InvalidOptionsError,
  InvalidParamsError,
  InvalidRecordError,
  isRetryableError,
  LeaseExpiredError,
  LeaseLostError,
  LeaseTtlMismatchError,
  NonRetryableError,
  NotOwnerError,
  RevokeTimeoutError,
  reason as errorMessage,
  ServiceRunningError,
  ShardCountMismatchError,
  ShardworkError,
  StartTimeoutError,
  UnknownProtocolError,
} from './errors.js';
export type { Listener } from './events.js';
export { ErrorPayload, errorPayload, TypedEmitter } from './events.js';
export type { ClaimsHeldBack, HoldBackReason } from './hold-back.js';
export type {
  CompiledWorkerOptions,
  Handler,
  ShardContext,
  Stage,
  StageFunction,
  Subject,
  WatchInfo,
  WorkerOptions,
  WorkerSubject,
} from './options.js';
export { compileOptions } from './options.js';
export type { ShardParamsInput } from './params.js';
export { parseParams } from './params.js';
export type { Plan, PlanInput, PlannedRevocation, PlannedRun } from './plan.js';
export { plan } from './plan.js';
export type { ParsedProtocolUrl, ProtocolFactory, ProtocolRegistryOptions } from './protocols.js';
export { ProtocolRegistry } from './protocols.js';
export type { ResolverCounters } from './resolver.js';
export type { RetryOptions, RetryPolicy, RetryPolicyFunction } from './retry.js';
export { compileRetry } from './retry.js';
export type { Backoff, BackoffFunction, GiveUpInfo, RetryInfo, RetryingOptions } from './retrying.js';
export { backoffDelays, retrying } from './retrying.js';
export type { CompiledSchedule, ScheduleInput, Ticker } from './schedule.js';
export { compileSchedule, startTicker, ticksBetween } from './schedule.js';
export type { AcquireReason, Acquisition } from './service-view.js';
export type { RevokeReason } from './shard-run.js';
export type { ReadTlsFilesOptions, TlsFiles, TlsMaterial } from './tls.js';
export { explainTlsError, readTlsFiles } from './tls.js';
export type { WorkerEventMap, WorkerState, WorkerStatus } from './worker.js';
export { Worker } from './worker.js';
