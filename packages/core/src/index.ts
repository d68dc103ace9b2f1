/**
 * shardwork core: clustered, sharded background workers. This entry point is
 * the application's: the worker, its options and events, the errors it
 * throws, the built-in memory backend, backends by URL and the inspection of
 * a service. Backend and adapter authors build on `@shardwork/core/backend`;
 * tests of backends and applications use `@shardwork/core/testing`.
 *
 * ```ts
 * import { Worker } from '@shardwork/core';
 *
 * const worker = new Worker({
 *   service: 'billing-sync',
 *   shards: 8,
 *   discovery: process.env.SHARDWORK_DISCOVERY, // memory:// when unset
 *   handler: {
 *     async do(ctx) {
 *       ctx.assertOwned(); // right before each side effect
 *     },
 *   },
 * });
 * await worker.start();
 * ```
 *
 * @module
 */

import * as backend from './backend.js';

export type {
  Assignment,
  AssignmentInput,
  AssignmentMember,
  AssignmentStrategy,
  StrategyName,
} from './assignment.js';
export { balanced, computeAssignment, quotas, range, roundRobin, strategies } from './assignment.js';
export type { Clock } from './clock.js';
export { MAX_TIMER_MS, sleep, systemClock } from './clock.js';
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
export { createDiscovery, DISCOVERY_ENV, parseDiscoveryUrl, registeredProtocols } from './discovery/registry.js';
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
export type { ConsoleLoggerOptions, LogFields, Logger, LogLevel } from './logger.js';
export { consoleLogger, silentLogger } from './logger.js';
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
export type { ParsedProtocolUrl } from './protocols.js';
export type { ResolverCounters } from './resolver.js';
export type { RetryOptions, RetryPolicy, RetryPolicyFunction } from './retry.js';
export { compileRetry } from './retry.js';
export type { CompiledSchedule, ScheduleInput, Ticker } from './schedule.js';
export { compileSchedule, startTicker, ticksBetween } from './schedule.js';
export type { AcquireReason, Acquisition } from './service-view.js';
export type { RevokeReason } from './shard-run.js';
export type { WorkerEventMap, WorkerState, WorkerStatus } from './worker.js';
export { Worker } from './worker.js';

// ── Moved to @shardwork/core/backend ───────────────────────────────────────
// Still here so that nothing importing them from the main entry point breaks;
// new code imports them from `@shardwork/core/backend`.

/** @deprecated Import from `@shardwork/core/backend`. */
export type DiscoveryFactory = backend.DiscoveryFactory;
/** @deprecated Import from `@shardwork/core/backend`. */
export type DiscoveryModule = backend.DiscoveryModule;
/** @deprecated Import from `@shardwork/core/backend`. */
export const registerDiscovery: typeof backend.registerDiscovery = backend.registerDiscovery;
/** @deprecated Import from `@shardwork/core/backend`. */
export type ProtocolFactory<T, A extends unknown[] = []> = backend.ProtocolFactory<T, A>;
/** @deprecated Import from `@shardwork/core/backend`. */
export type ProtocolRegistryOptions<T, A extends unknown[]> = backend.ProtocolRegistryOptions<T, A>;
/** @deprecated Import from `@shardwork/core/backend`. */
export const ProtocolRegistry: typeof backend.ProtocolRegistry = backend.ProtocolRegistry;
/** @deprecated Import from `@shardwork/core/backend`. */
export type ProtocolRegistry<T, A extends unknown[] = []> = backend.ProtocolRegistry<T, A>;
/** @deprecated Import from `@shardwork/core/backend`. */
export type MemberRecordResult = backend.MemberRecordResult;
/** @deprecated Import from `@shardwork/core/backend`. */
export type ParsedMemberRecord = backend.ParsedMemberRecord;
/** @deprecated Import from `@shardwork/core/backend`. */
export const encodeMemberRecord: typeof backend.encodeMemberRecord = backend.encodeMemberRecord;
/** @deprecated Import from `@shardwork/core/backend`. */
export const parseMemberRecord: typeof backend.parseMemberRecord = backend.parseMemberRecord;
/** @deprecated Import from `@shardwork/core/backend`. */
export type ReadTlsFilesOptions = backend.ReadTlsFilesOptions;
/** @deprecated Import from `@shardwork/core/backend`. */
export type TlsFiles = backend.TlsFiles;
/** @deprecated Import from `@shardwork/core/backend`. */
export type TlsMaterial = backend.TlsMaterial;
/** @deprecated Import from `@shardwork/core/backend`. */
export const readTlsFiles: typeof backend.readTlsFiles = backend.readTlsFiles;
/** @deprecated Import from `@shardwork/core/backend`. */
export const explainTlsError: typeof backend.explainTlsError = backend.explainTlsError;
/** @deprecated Import from `@shardwork/core/backend`. */
export type Plan = backend.Plan;
/** @deprecated Import from `@shardwork/core/backend`. */
export type PlanInput = backend.PlanInput;
/** @deprecated Import from `@shardwork/core/backend`. */
export type PlannedRevocation = backend.PlannedRevocation;
/** @deprecated Import from `@shardwork/core/backend`. */
export type PlannedRun = backend.PlannedRun;
/** @deprecated Import from `@shardwork/core/backend`. */
export const plan: typeof backend.plan = backend.plan;
/** @deprecated Import from `@shardwork/core/backend`. */
export const settlesWithin: typeof backend.settlesWithin = backend.settlesWithin;
export { redactUrl, unencodedUserinfo } from './url-secrets.js';
