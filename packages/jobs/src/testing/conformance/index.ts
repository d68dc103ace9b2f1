/**
 * The job adapter conformance suite: one set of vitest tests that every
 * adapter runs unchanged: in-process with fake time, Redis and RabbitMQ
 * against real servers with real time. A kit (`kit.ts`) and a file per
 * feature, each a function of the kit.
 *
 * ```ts
 * import { describeJobQueueConformance } from '@shardwork/jobs/testing';
 * describeJobQueueConformance({
 *   name: 'redis',
 *   durable: true,
 *   refusesUnknownHandlers: false,
 *   create: (options, namespace) => createJobQueue(`${url}?prefix=${namespace}:`, options),
 * });
 * ```
 *
 * @module
 */

import { describe } from 'vitest';
import { describeAdmin } from './admin.js';
import { describeBadInput } from './bad-input.js';
import { describeConcurrency } from './concurrency.js';
import { describeDueTimes } from './due-times.js';
import { describeEnqueue } from './enqueue.js';
import { describeEvents } from './events.js';
import { describeFollow } from './follow.js';
import { conformanceKit, type JobQueueHarness } from './kit.js';
import { describeLifecycle } from './lifecycle.js';
import { describeMiddleware } from './middleware.js';
import { describeOrdered } from './ordered.js';
import { describePeriodic } from './periodic.js';
import { describeRetries } from './retries.js';
import { describeUnique } from './unique.js';

export type { HarnessTransaction, JobQueueHarness } from './kit.js';

/** Register the conformance tests for one adapter inside the current vitest file. */
export function describeJobQueueConformance(harness: JobQueueHarness): void {
  describe(`job queue conformance: ${harness.name}`, () => {
    const kit = conformanceKit(harness);
    describeEnqueue(kit);
    describeDueTimes(kit);
    describePeriodic(kit);
    describeRetries(kit);
    describeMiddleware(kit);
    describeUnique(kit);
    describeOrdered(kit);
    describeConcurrency(kit);
    describeAdmin(kit);
    describeFollow(kit);
    describeLifecycle(kit);
    describeEvents(kit);
    describeBadInput(kit);
  });
}
