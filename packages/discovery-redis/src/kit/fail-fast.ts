/**
 * How every shardwork Redis connection behaves when Redis is away: a call
 * either reaches Redis now or fails at once; nothing is queued while
 * disconnected or resent after a reconnect (a late claim, heartbeat or
 * completion would act on state the caller has already given up on), and
 * reconnects back off with jitter. One place for the settings that the
 * command connections, the cluster nodes and the subscribers share.
 *
 * @module
 */

/** The ioredis settings of a fail-fast connection. */
export const FAIL_FAST = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false,
} as const;

/** Redis reply errors after which a later retry can succeed (failover, loading, busy script). */
export const TRANSIENT_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MOVED|ASK)\b/;

/** Reconnect backoff: 50 ms doubling up to 1 s, with jitter so clients do not reconnect in lockstep. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(1000, 50 * 2 ** Math.min(attempt - 1, 5));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}
