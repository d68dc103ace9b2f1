/**
 * Test helpers for shardwork backends and applications: the discovery
 * conformance suite with its fixtures (`uniqueService`, `memberInfo`,
 * `claimOne`, `releaseOne`) and the ownership-interval checker.
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
export { describeDiscoveryConformance } from './conformance.js';
export { claimOne, memberInfo, releaseOne, uniqueService } from './fixtures.js';
export type { OwnershipInterval, OwnershipRecord, OwnershipReport } from './ownership.js';
export {
  appendOwnershipRecord,
  checkOwnership,
  monotonicMs,
  readOwnershipRecords,
  waitForFullCoverage,
} from './ownership.js';
