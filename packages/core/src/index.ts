/**
 * shardwork core: clustered, sharded background workers.
 *
 * @module
 */

export type { Clock } from './clock.js';
export { sleep, systemClock } from './clock.js';
export type {
  Claim,
  ClaimResult,
  Discovery,
  DiscoveryEvent,
  DiscoveryListener,
  InvalidRecord,
  Member,
  MemberInfo,
  Registration,
  Snapshot,
} from './discovery/contract.js';
export type { MemoryDiscoveryOptions, MemoryStoreOptions } from './discovery/memory.js';
export { MemoryDiscovery, MemoryStore, sharedMemoryStore } from './discovery/memory.js';
export type { DiscoveryFactory, DiscoveryModule } from './discovery/registry.js';
export { createDiscovery, DISCOVERY_ENV, registerDiscovery, registeredProtocols } from './discovery/registry.js';
export type { ShardworkErrorCode } from './errors.js';
export {
  AttemptsExhaustedError,
  DiscoveryUnavailableError,
  IllegalStateError,
  InvalidAssignmentError,
  InvalidCronError,
  InvalidOptionsError,
  InvalidParamsError,
  InvalidRecordError,
  isRetryableError,
  LeaseExpiredError,
  LeaseLostError,
  NonRetryableError,
  NotOwnerError,
  RevokeTimeoutError,
  ShardCountMismatchError,
  ShardworkError,
  StartTimeoutError,
  UnknownProtocolError,
} from './errors.js';
