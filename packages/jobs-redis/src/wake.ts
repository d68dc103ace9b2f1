/**
 * Wake-ups of a consumer process: one subscriber connection listens on the
 * wake channel of every queue it consumes (`perform` publishes the partition
 * of a new ready job, or `*`) and wakes the idle partition consumers named,
 * so that a job starts without waiting for the idle re-check. A subscription
 * that failed while the connection stayed up is tried again with backoff;
 * after a reconnect every consumer is woken once, since messages may have
 * been missed while the subscriber was away. A `c:` message names a running
 * job that was cancelled: its attempt is aborted if it runs here.
 *
 * @module
 */

import { backoffDelays } from '@shardwork/core/backend';
import type { RedisConnection } from '@shardwork/discovery-redis/kit';

/** A partition consumer, as far as a wake-up is concerned. */
export interface Wakeable {
  readonly partition: number;
  wake(): void;
}

/** What {@link subscribeWakes} needs. */
export interface WakeOptions {
  readonly connection: RedisConnection;
  /** Wake channel → queue, for every queue consumed. */
  readonly channels: ReadonlyMap<string, string>;
  /** The running partition consumers of each queue. */
  readonly consumers: ReadonlyMap<string, ReadonlySet<Wakeable>>;
  /** A running job was cancelled (a `c:` message): abort its attempt if it runs here. */
  readonly cancelled: (id: string, reason: string | undefined) => void;
  /** Aborted when the adapter closes: no more retries. */
  readonly closed: AbortSignal;
  readonly reportError: (error: unknown) => void;
}

/** Subscribe to the wake channels (see the module documentation); the connection closes the subscriber. */
export function subscribeWakes(o: WakeOptions): void {
  const sub = o.connection.subscriber();
  let readies = 0;
  sub.on('message', (channel: string, message: string) => {
    const queue = o.channels.get(channel);
    if (queue === undefined) return;
    if (message.startsWith('c:')) {
      const cancel = parseCancel(message.slice(2));
      if (cancel !== undefined) o.cancelled(cancel.id, cancel.reason);
      return;
    }
    for (const consumer of o.consumers.get(queue) ?? []) {
      if (message === '*' || Number(message) === consumer.partition) consumer.wake();
    }
  });
  // A subscription that failed while the connection stayed up would leave every idle consumer
  // waiting for its safety re-check (30 s): try again while this connection is the ready one.
  const subscribe = (first: boolean, attempt: number): void => {
    sub
      .subscribe(...o.channels.keys())
      .then(() => {
        if (!first) for (const set of o.consumers.values()) for (const c of set) c.wake();
      })
      .catch((error: unknown) => {
        if (o.closed.aborted || sub.status !== 'ready') return; // the next 'ready' subscribes
        if (attempt === 0) o.reportError(o.connection.mapError(error));
        const delay = backoffDelays({ initialMs: 100, maxMs: 2000 })(attempt + 1, error) ?? 2000;
        setTimeout(() => subscribe(first, attempt + 1), delay).unref();
      });
  };
  sub.on('ready', () => subscribe(readies++ === 0, 0));
  sub.connect().catch(() => undefined);
}

/** A cancel message: `{ id, e: error JSON }` (cancel.lua). */
function parseCancel(text: string): { id: string; reason: string | undefined } | undefined {
  try {
    const { id, e } = JSON.parse(text) as { id?: unknown; e?: unknown };
    if (typeof id !== 'string') return undefined;
    const error = typeof e === 'string' ? (JSON.parse(e) as { message?: unknown }) : undefined;
    return { id, reason: typeof error?.message === 'string' ? error.message : undefined };
  } catch {
    return undefined;
  }
}
