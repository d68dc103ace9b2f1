/**
 * Fault handling for the etcd3 client that shardwork creates. etcd3's defaults
 * (three retries globally, a circuit breaker per host that stays open for 5 s,
 * and a watch backoff growing to 30 s) hide outages behind long waits; the
 * worker needs calls that fail fast with a clear error, since it retries by
 * itself and fences on its own deadline. So:
 * - per host: no circuit breaker; a host whose call just failed on the
 *   connection is skipped for a second while another host is healthy;
 * - globally: a call that found its host unreachable (`UNAVAILABLE`, which
 *   includes "no leader" on a member cut off from the quorum) moves on to the
 *   next host, at most once per host; nothing else is retried;
 * - the watch stream reconnects after 50 ms, doubling to at most 1 s.
 *
 * The policy types come from cockatiel through etcd3's declarations; these
 * small objects implement them structurally so that no extra dependency is needed.
 *
 * @module
 */

import { GRPCUnavailableError, type IOptions, isRecoverableError } from 'etcd3';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;
type GlobalPolicy = NonNullable<FaultHandling['global']>;
type WatchBackoff = NonNullable<FaultHandling['watchBackoff']>;

/** How long a host whose call failed on the connection is avoided. */
const HOST_SKIP_MS = 1000;

/** Thrown by a host policy to make etcd3 move on to another host without calling. */
export class HostSkippedError extends Error {
  constructor(host: string) {
    super(`etcd host ${host} skipped after a recent connection failure`);
    this.name = 'HostSkippedError';
  }
}

const noEvent = () => ({ dispose() {} });

type PolicyFn<T> = (context: { signal: AbortSignal }) => PromiseLike<T> | T;

function policy(execute: <T>(fn: PolicyFn<T>, signal?: AbortSignal) => Promise<T>): HostPolicy & GlobalPolicy {
  return { onSuccess: noEvent, onFailure: noEvent, execute } as unknown as HostPolicy & GlobalPolicy;
}

function contextSignal(signal: AbortSignal | undefined): AbortSignal {
  return signal ?? new AbortController().signal;
}

/** The fault-handling options for a client of `hostCount` endpoints. */
export function faultHandling(hostCount: number): FaultHandling {
  const failedUntil = new Map<string, number>();
  const allFailing = (now: number) =>
    failedUntil.size >= hostCount && [...failedUntil.values()].every((until) => until > now);

  const host = (name: string): HostPolicy =>
    policy(async (fn, signal) => {
      const now = Date.now();
      const until = failedUntil.get(name) ?? 0;
      // With one host, or when every host failed lately, calling is better than failing unseen.
      if (hostCount > 1 && until > now && !allFailing(now)) throw new HostSkippedError(name);
      try {
        // A success does not clear the mark: opening a stream "succeeds" even
        // on a dead host (the error comes later), so the mark simply expires.
        return await fn({ signal: contextSignal(signal) });
      } catch (error) {
        if (error instanceof Error && isRecoverableError(error)) failedUntil.set(name, Date.now() + HOST_SKIP_MS);
        throw error;
      }
    });

  const global: GlobalPolicy = policy(async (fn, signal) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn({ signal: contextSignal(signal) });
      } catch (error) {
        if (attempt >= hostCount || !(error instanceof GRPCUnavailableError)) throw error;
      }
    }
  });

  return { host, global, watchBackoff: cappedBackoff(0) };
}

/** 50 ms, doubling to 1 s. `next()` of the initial value gives the first real delay. */
function cappedBackoff(duration: number): WatchBackoff {
  return {
    duration,
    next: () => cappedBackoff(duration === 0 ? 50 : Math.min(duration * 2, 1000)),
  } as WatchBackoff;
}
