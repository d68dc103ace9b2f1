/**
 * The life of one partition's consumer, shared by the adapters with
 * partitions (Redis, PostgreSQL): consume until the partition is lost, handed
 * over or the queue stops; then end its attempts the way each case needs, and
 * say when it ended early so that core runs it again.
 *
 * - Lease lost or claim gone: the attempts are aborted at once (the next
 *   owner's takeover puts them back).
 * - Handed to another replica while the claim is still ours: running
 *   attempts may finish for `revokeTimeoutMs - 1 s`, then the rest are
 *   aborted, before core releases the claim.
 * - The queue stopping past its timeout: `aborting` aborts them.
 *
 * @module
 */

import { type ShardContext, sleep } from '@shardwork/core';
import { JobAbortedError } from './errors.js';

/** What {@link runPartition} drives: one partition's consumer. */
export interface PartitionRun {
  /** Core's context of the partition's claim. */
  readonly ctx: ShardContext;
  /** The queue, for the message of an early end. */
  readonly queue: string;
  /** Aborts when the adapter stops fetching (`stop()` began). */
  readonly stopping: AbortSignal;
  /** Aborts when running attempts must be aborted (`stop()` reached its timeout). */
  readonly aborting: AbortSignal;
  /** How long a partition handed over lets its running attempts finish, ms. */
  readonly revokeTimeoutMs: number;
  /** Attempts running now. */
  running(): number;
  /** Abort every running attempt with `reason`. */
  abortAll(reason: unknown): void;
  /** Resolves once no attempt runs and every write is done. */
  drained(): Promise<void>;
  /** Take the partition over and fetch until `stop` aborts (or a write gives up). */
  consume(stop: AbortSignal): Promise<void>;
  /** After consuming ended, before the attempts are ended (stop schedules). */
  ending?(): Promise<void>;
  /** Once everything is drained. */
  ended?(): void;
}

/** Run a partition's consumer to its end (see the module documentation). */
export async function runPartition(run: PartitionRun): Promise<void> {
  const { ctx } = run;
  const stop = AbortSignal.any([ctx.signal, run.stopping]);
  const onLost = (): void => {
    if (!ctx.held) run.abortAll(ctx.signal.reason);
  };
  ctx.signal.addEventListener('abort', onLost, { once: true });
  const onAbortAll = (): void => run.abortAll(new JobAbortedError('the queue stopped past its timeout'));
  run.aborting.addEventListener('abort', onAbortAll, { once: true });
  try {
    await run.consume(stop);
  } finally {
    await run.ending?.();
    ctx.signal.removeEventListener('abort', onLost);
    if (!run.stopping.aborted && ctx.held && run.running() > 0) {
      await Promise.race([run.drained(), sleep(Math.max(0, run.revokeTimeoutMs - 1000))]);
      run.abortAll(new JobAbortedError(`partition ${ctx.shard} handed over`));
    } else if (!ctx.held) {
      run.abortAll(ctx.signal.reason);
    }
    await run.drained();
    run.aborting.removeEventListener('abort', onAbortAll);
    run.ended?.();
  }
  // Ended while the claim is still ours (a write that kept failing, a stale
  // fence): throw, so that the core worker runs this partition's consumer
  // again instead of leaving the partition without one.
  if (!ctx.signal.aborted && !run.stopping.aborted) {
    throw new Error(`the consumer of partition ${ctx.shard} of queue ${run.queue} ended early; restarting it`);
  }
}
