/**
 * What the pages show: the views {@link DashboardData} reads for them, each
 * with the banner data of a backend that failed.
 *
 * @module
 */

import type { ServiceHealth, Snapshot } from '@shardwork/core';
import type { CountedState, JobInfo, JobState } from '@shardwork/jobs';
import type { StoreThroughput } from './throughput.js';

/** One change of a shard's owner between two consecutive snapshots. */
export interface Movement {
  readonly at: number;
  readonly service: string;
  readonly shard: number;
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly token: number | undefined;
}

/** Why the last read of a backend failed, and since when the data shown is old. */
export interface BackendProblem {
  readonly backend: string;
  readonly reason: string;
  /** When the data still shown was read, ms since the epoch (undefined: never read). */
  readonly dataFrom: number | undefined;
}

/** One service on the services page. */
export interface ServiceView {
  readonly name: string;
  readonly snapshot: Snapshot;
  /**
   * `ok`, `degraded` (it runs with shards unowned), `stopped` (records but
   * no member and no claim: shown greyed, with a Forget action) or `absent`
   * (no records), as `inspectSnapshot` of `@shardwork/core` says.
   */
  readonly health: ServiceHealth;
}

/** What the services page shows. */
export interface ServicesView {
  readonly services: readonly ServiceView[];
  /** The discovery backend can forget a stopped service (`Discovery.forgetService`). */
  readonly canForget: boolean;
  readonly movements: readonly Movement[];
  readonly readAt: number | undefined;
  readonly problem: BackendProblem | undefined;
}

/** Counts of one queue or handler, with the oldest ready job's wait. */
export interface QueueRow {
  readonly name: string;
  readonly counts: Readonly<Record<CountedState, number>>;
  readonly paused?: boolean;
  /**
   * Handlers only: live consumer processes that registered the handler, as
   * the job backend reports it (`undefined` where it cannot know).
   */
  readonly consumers?: number | undefined;
  readonly waitMs: number | undefined;
  /** Completions per second over the last window, when the queue runs in this process. */
  readonly throughput: number | undefined;
  /** Queues only: attempts completed in the last full minute, as the job store counts them (`throughput()`). */
  readonly completedLastMinute?: number | undefined;
}

/** What the queues page shows. */
export interface QueuesView {
  readonly configured: boolean;
  readonly queues: readonly QueueRow[];
  readonly handlers: readonly QueueRow[];
  readonly total: Readonly<Record<CountedState, number>> | undefined;
  readonly throughputKnown: boolean;
  /** The store's per-minute counts for the charts; `undefined` before the first read. */
  readonly storeThroughput?: StoreThroughput | undefined;
  readonly readAt: number | undefined;
  readonly problem: BackendProblem | undefined;
}

/** One page of jobs in one state. */
export interface JobsView {
  readonly configured: boolean;
  readonly state: JobState;
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly jobs: readonly JobInfo[];
  readonly readAt: number | undefined;
  readonly problem: BackendProblem | undefined;
  /** Set when the job backend cannot list jobs at all (`UnsupportedFeatureError`): its message. */
  readonly unsupported?: string | undefined;
}
