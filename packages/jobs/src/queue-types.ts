/**
 * The shapes `JobQueue` takes and returns around its lifecycle: the
 * options of `start()` and `stop()`, the `status()` snapshot, and the table of
 * lifecycle moves it allows.
 *
 * @module
 */

import type { TransitionTable } from '@shardwork/core/backend';
import type { JobQueueState } from './events.js';

/** Allowed lifecycle moves; anything else is a bug and throws. */
export const TRANSITIONS: TransitionTable<JobQueueState> = {
  idle: ['starting', 'stopping'],
  starting: ['running', 'stopping', 'stopped'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** Snapshot returned by `JobQueue.status()`. */
export interface JobQueueStatus {
  readonly state: JobQueueState;
  /** Adapter kind, once it is loaded (`memory`, `redis`, `amqp`). */
  readonly adapter: string | undefined;
  /** Whether this process runs jobs (started); a process that never starts only enqueues. */
  readonly consuming: boolean;
  /** Registered handler names. */
  readonly handlers: readonly string[];
  /** Attempts running in this process now. */
  readonly running: number;
  /** What this process did since it was created. */
  readonly counts: {
    readonly enqueued: number;
    readonly duplicates: number;
    readonly started: number;
    readonly completed: number;
    readonly failed: number;
    readonly dead: number;
  };
}

/** Options of `JobQueue.start()`. */
export interface StartOptions {
  /** Stop the queue (gracefully, with the default timeout) when this signal aborts, like Buffalo's `Start(ctx)`. */
  readonly signal?: AbortSignal;
}

/** Options of `JobQueue.stop()`. */
export interface StopOptions {
  /**
   * How long running attempts may take before they are aborted (and put back,
   * on durable adapters).
   * @defaultValue the queue's `stopTimeoutMs` (10000)
   */
  readonly timeoutMs?: number;
}
