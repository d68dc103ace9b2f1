/**
 * Test helpers for shardwork backends and applications: the discovery
 * conformance suite and the ownership-interval checker.
 *
 * ```ts
 * import { describeDiscoveryConformance } from '@shardwork/core/testing';
 * describeDiscoveryConformance({ name: 'mine', ttlMs: 1000, connect: () => new MyDiscovery() });
 * ```
 *
 * Requires `vitest` (an optional peer dependency) for the conformance suite.
 *
 * @module
 */

export type { ConformanceHarness } from './conformance.js';
export { describeDiscoveryConformance, memberInfo, uniqueService } from './conformance.js';
export type { OwnershipInterval, OwnershipRecord, OwnershipReport } from './ownership.js';
export {
  appendOwnershipRecord,
  checkOwnership,
  monotonicMs,
  readOwnershipRecords,
  waitForFullCoverage,
} from './ownership.js';
