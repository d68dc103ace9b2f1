/**
 * Test helpers for shardwork job adapters: the conformance suite that every
 * adapter runs unchanged.
 *
 * ```ts
 * import { describeJobQueueConformance } from '@shardwork/jobs/testing';
 * describeJobQueueConformance({ name: 'mine', durable: true, refusesUnknownHandlers: false, create: (o, ns) => … });
 * ```
 *
 * Requires `vitest` (an optional peer dependency).
 *
 * @module
 */

export type { HarnessTransaction, JobQueueHarness } from './conformance/index.js';
export { describeJobQueueConformance } from './conformance/index.js';
