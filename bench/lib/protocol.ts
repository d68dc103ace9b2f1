/**
 * What the bench parent and its replica-host children (`replica-host.ts`) say
 * to each other: the child's configuration (JSON in an environment variable),
 * commands on the child's stdin and messages on its stdout, one JSON object a
 * line. Times are {@link monotonicMs} values, comparable across processes.
 *
 * @module
 */

/** Name of the environment variable that carries a {@link HostConfig}. */
export const HOST_CONFIG_ENV = 'SHARDWORK_BENCH_HOST';

/** The discovery backends the bench measures. */
export type BenchBackend = 'memory' | 'redis' | 'etcd' | 'postgres';

/** Configuration of one replica-host child. */
export interface HostConfig {
  /** Backend kind; `memory` hosts its own in-process store (all replicas in one process). */
  readonly backend: BenchBackend;
  /** Discovery URL (loopback only); ignored for `memory`. */
  readonly url: string;
  readonly service: string;
  readonly shards: number;
  /** Replicas (Workers) in this process, each with its own backend connection. */
  readonly workers: number;
  readonly leaseTtlMs: number;
  /** Worker `resyncIntervalMs`; the library default when absent. */
  readonly resyncIntervalMs?: number;
  /** Report every acquisition, revocation and renewal (off for the scale runs). */
  readonly events: boolean;
  /** Memory only: report `converged` once all replicas hold their quotas, giving up after this many ms. */
  readonly convergeTimeoutMs?: number;
}

/** A command on the child's stdin. */
export type HostCommand =
  | { readonly cmd: 'start' }
  | { readonly cmd: 'stop' }
  | { readonly cmd: 'stats' }
  /** Start one more replica in this process. */
  | { readonly cmd: 'join' }
  /** Stop this process's newest replica gracefully. */
  | { readonly cmd: 'leave' };

/** Resource usage of a child at one moment. */
export interface HostStats {
  readonly t: number;
  readonly rss: number;
  readonly heapUsed: number;
  /** `process.cpuUsage()` user + system, in ms. */
  readonly cpuMs: number;
  /** Discovery calls made by the replicas of this process, per contract method. */
  readonly calls: Readonly<Record<string, number>>;
  /** What the replicas' resolvers did: passes, snapshots, deltas, versionChecks (summed). */
  readonly resolver: Readonly<Record<string, number>>;
}

/** A message on the child's stdout. */
export type HostMessage =
  | ({ readonly e: 'standby' } & HostStats)
  | { readonly e: 'reg'; readonly w: number; readonly id: string; readonly t: number }
  | { readonly e: 'started'; readonly w: number; readonly id: string; readonly t0: number; readonly t: number }
  | {
      readonly e: 'acq';
      readonly w: number;
      readonly id: string;
      readonly s: number;
      readonly k: number;
      readonly t: number;
    }
  | {
      readonly e: 'rev';
      readonly w: number;
      readonly id: string;
      readonly s: number;
      readonly r: string;
      readonly t: number;
    }
  | { readonly e: 'renew'; readonly w: number; readonly sent: number; readonly t: number }
  | { readonly e: 'lost'; readonly w: number; readonly id: string; readonly t: number }
  | { readonly e: 'down'; readonly w: number; readonly t: number }
  | { readonly e: 'err'; readonly w: number; readonly msg: string }
  | {
      readonly e: 'converged';
      /** Balanced, or `undefined` when it was not within the time given. */
      readonly t: number | undefined;
      readonly allMembers: number | undefined;
      readonly allCovered: number | undefined;
      readonly detail: string;
    }
  | ({ readonly e: 'stats' } & HostStats)
  | { readonly e: 'stopped'; readonly t: number }
  | { readonly e: 'fatal'; readonly msg: string };

/**
 * Milliseconds on CLOCK_MONOTONIC, the same scale in every process of the
 * machine: the formula of `monotonicMs` from `@shardwork/core/testing`,
 * repeated here so that replica processes do not load that entry point (it
 * imports vitest, which would inflate the memory being measured).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
