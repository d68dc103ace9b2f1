/**
 * shardwork core for backend and adapter authors: what a discovery backend
 * or a job queue adapter is built from, kept apart from the application API
 * of `@shardwork/core`, which makes a different promise to a different reader.
 *
 * ```ts
 * import { type Discovery, encodeMemberRecord, registerDiscovery, retrying } from '@shardwork/core/backend';
 *
 * class MyDiscovery implements Discovery { … }  // checked by describeDiscoveryConformance (`@shardwork/core/testing`)
 * registerDiscovery('mine', (url) => new MyDiscovery(url));
 * ```
 *
 * - the discovery contract (types), and the errors a backend throws or maps to;
 * - the protocol registry's registration side: {@link registerDiscovery},
 *   and {@link ProtocolRegistry} for registries of one's own (job adapters);
 * - the member record codec every backend stores ({@link encodeMemberRecord},
 *   {@link parseMemberRecord}) and the TLS helpers ({@link readTlsFiles},
 *   {@link explainTlsError});
 * - building blocks: the pure planner {@link plan}, {@link settlesWithin},
 *   {@link StateMachine} for lifecycles with a transition table, and
 *   {@link retrying}, the one retry loop.
 *
 * @module
 */

export { settlesWithin } from './clock.js';
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
export type { MemberRecordResult, ParsedMemberRecord } from './discovery/records.js';
export { encodeMemberRecord, parseMemberRecord } from './discovery/records.js';
export type { DiscoveryFactory, DiscoveryModule } from './discovery/registry.js';
export { registerDiscovery } from './discovery/registry.js';
export type { RefusalReason, ShardworkErrorCode } from './errors.js';
export {
  BackendRefusedError,
  DiscoveryUnavailableError,
  InvalidOptionsError,
  InvalidRecordError,
  isRetryableError,
  LeaseExpiredError,
  ServiceRunningError,
  ShardworkError,
  UnknownProtocolError,
} from './errors.js';
export { compileLogger } from './logger.js';
export type { Plan, PlanInput, PlannedRevocation, PlannedRun } from './plan.js';
export { plan } from './plan.js';
export type { ParsedProtocolUrl, ProtocolFactory, ProtocolRegistryOptions } from './protocols.js';
export { ProtocolRegistry } from './protocols.js';
export type { Backoff, BackoffFunction, GiveUpInfo, RetryInfo, RetryingOptions } from './retrying.js';
export { backoffDelays, retrying } from './retrying.js';
export { stopOnSignals } from './signals.js';
export type { TransitionTable } from './states.js';
export { StateMachine } from './states.js';
export type { ReadTlsFilesOptions, TlsFiles, TlsMaterial } from './tls.js';
export { explainTlsError, readTlsFiles } from './tls.js';
