/**
 * One partition's consumption in partitioned mode: the `do` of its shard in
 * core's `Worker`. It consumes the partition queue on a connection of its own
 * until the partition ends, and ends it in one of two ways:
 *
 * - **Hand-over or stop** (the claim is still ours): cancel the consumer
 *   (nothing new arrives; the next owner subscribes only once core releases
 *   the claim), let the jobs this replica holds run to the end within
 *   `revokeTimeoutMs`, then return whatever is left by dropping the connection.
 * - **Lost lease**: the next owner may already be subscribed, waiting for this
 *   consumer to go (single active consumer). Cancelling first would hand it
 *   the queue while this replica still holds older messages, and it would run
 *   a key's later jobs before them. So the consumer is not cancelled: nothing
 *   more starts here, and the connection is dropped, which hands the queue
 *   over with every message this replica held back at its front, in order.
 *
 * Either way the connection goes only once the moves in flight (a retry or
 * an early job republished into the delay chain) have acknowledged their
 * deliveries and the broker has processed those acknowledgements; a delivery
 * returned after its job was republished would run twice.
 *
 * Its modes, in a table that throws on any other move: `consuming` →
 * `handing-over` (the first way) or `dropping` (the second) → `settling` (the
 * moves in flight end, the connection goes) → `ended`.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import type { ShardContext } from '@shardwork/core';
import { StateMachine, settlesWithin, type TransitionTable } from '@shardwork/core/backend';
import { JobAbortedError } from '@shardwork/jobs/adapter';
import type { Connection } from 'rabbitmq-client';
import type { Broker } from './broker.js';
import type { QueueConsumer } from './consumer.js';
import type { JobRunner, Source, SourcedTask } from './runner.js';
import type { Topology } from './topology.js';

/** A partition's mode; see the module documentation. */
export type PartitionMode = 'consuming' | 'handing-over' | 'dropping' | 'settling' | 'ended';

const MODES: TransitionTable<PartitionMode> = {
  consuming: ['handing-over', 'dropping'],
  'handing-over': ['settling'],
  dropping: ['settling'],
  settling: ['ended'],
  ended: [],
};

/** Longest wait for the moves in flight (and the acknowledgements before them) before the connection is dropped. */
const SETTLE_BEFORE_DROP_MS = 2000;

/** What a partition needs from the adapter. */
export interface PartitionHost {
  readonly broker: Broker;
  readonly topology: Topology;
  readonly runner: JobRunner;
  /** Unacknowledged deliveries per partition (the queue's concurrency). */
  readonly prefetch: number;
  readonly revokeTimeoutMs: number;
  /** Aborts when the adapter stops. */
  readonly stopping: AbortSignal;
  /** Aborts when a stop ran out of time: running jobs are aborted. */
  readonly aborting: AbortSignal;
  /** Subscribe to `source.from` on `conn` (a consumer the caller alone closes). */
  consume(source: Source, prefetch: number, conn: Connection): QueueConsumer;
}

/** Consume partition `ctx.shard` of `queue` until it ends (see the module documentation). */
export async function consumePartition(host: PartitionHost, queue: string, ctx: ShardContext): Promise<void> {
  const from = host.topology.partitionQueue(queue, ctx.shard);
  const abort = new AbortController();
  const ending = AbortSignal.any([ctx.signal, host.stopping]);
  setMaxListeners(0, abort.signal, ending);
  const source: Source = {
    queue,
    from,
    partition: ctx.shard,
    token: ctx.token,
    // While a hand-over drains, the claim is still ours and nobody else consumes the queue: held jobs may act.
    owned: () => ctx.held,
    aborted: abort.signal,
    ending,
  };
  const mode = new StateMachine<PartitionMode>(`partition ${ctx.shard} of ${queue}`, MODES, 'consuming');
  const conn = host.broker.openConnection(from);
  const consumer = host.consume(source, host.prefetch, conn);
  await once(ending);
  const dispatcher = host.runner.dispatcher;
  const mine = (task: SourcedTask): boolean => task.source === source;
  const graceful = host.stopping.aborted || ctx.held;
  mode.to(graceful ? 'handing-over' : 'dropping');
  if (graceful) {
    await consumer.cancel();
    // What this replica holds of the partition: running, or waiting for a slot or its key's line.
    const held = dispatcher.idle(mine);
    if (host.stopping.aborted) {
      // stop() bounds the wait and aborts everything at its timeout.
      await Promise.race([held, once(host.aborting)]);
    } else {
      await settlesWithin(held, Math.max(0, host.revokeTimeoutMs - 1000));
    }
  } else {
    consumer.hold();
  }
  mode.to('settling');
  abort.abort(new JobAbortedError(`partition ${ctx.shard} of ${queue} ${graceful ? 'handed over' : 'lost'}`));
  dispatcher.dropWaiting(mine);
  const began = Date.now();
  const left = (): number => Math.max(0, SETTLE_BEFORE_DROP_MS - (Date.now() - began));
  await settlesWithin(dispatcher.idle(mine), left());
  await settlesWithin(host.runner.moves(source), left());
  if (!graceful || consumer.unsettled > 0) {
    await settlesWithin(consumer.flush(), left());
    conn.unsafeDestroy();
  }
  await consumer.close();
  await settlesWithin(conn.close(), 1000).then((closed) => closed || conn.unsafeDestroy());
  mode.to('ended');
}

/** Resolves when `signal` aborts. */
export function once(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
