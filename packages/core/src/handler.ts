/**
 * The handler contract: what user code implements (goworker's
 * Before/Do/After/ErrorMessage plus `watch`) and the context each stage gets.
 *
 * @module
 */

import type { Member } from './discovery/contract.js';

/** The stages of the per-shard pipeline. */
export type Stage = 'before' | 'do' | 'after';

/** What a handler stage receives: one context per pipeline run of one shard. */
export interface ShardContext {
  /** Service name. */
  readonly service: string;
  /** The shard this run is for, in `[0, shardCount)`. */
  readonly shard: number;
  /** Total number of shards of the service. */
  readonly shardCount: number;
  /** The shard's parameter (`params`), if any. */
  readonly param: string | undefined;
  /**
   * Fencing token of this ownership: strictly greater than every token of
   * earlier owners of any shard of the service. Pass it to stores that can
   * reject stale writers.
   */
  readonly token: number;
  /** Aborts when the shard is revoked, the lease is lost or the worker stops. */
  readonly signal: AbortSignal;
  /** Member id of this replica's current registration. */
  readonly instance: string;
  /** Fire time of the cron tick that started this run; `undefined` without a schedule. */
  readonly scheduledAt: Date | undefined;
  /** Attempt number (1-based) of the stage currently running. */
  readonly attempt: number;
  /** The stage currently running. */
  readonly stage: Stage;
  /** Free-form bag shared by `before`, `do` and `after` of one run. */
  readonly data: Record<string, unknown>;
  /**
   * Synchronous ownership check: `true` while the shard is not revoked and the
   * monotonic clock is before the lease's self-fencing deadline. Unlike
   * `signal`, it is right even when the process was frozen and timers have not
   * run yet; check it (or call {@link ShardContext.assertOwned}) right before
   * every side effect, with no `await` in between.
   */
  readonly owned: boolean;
  /** Throw `NotOwnerError` unless {@link ShardContext.owned}. */
  assertOwned(): void;
  /**
   * Like {@link ShardContext.owned}, but it stays `true` while a revoked shard's
   * handler drains (a rebalance or a graceful stop): the claim is only released
   * once the handler settles (or `revokeTimeoutMs` passes), so until then no
   * other replica can own the shard. `false` once the lease deadline passes or
   * the claim is gone. For handlers that hand work over during a drain.
   */
  readonly held: boolean;
}

/** The slice of this replica, given to `watch` whenever it changes. */
export interface WatchInfo {
  /** This replica's member id. */
  readonly instance: string;
  /** Shards this replica owns now, ascending. */
  readonly shards: readonly number[];
  /** Total number of shards. */
  readonly shardCount: number;
  /** The view: live members in join order. */
  readonly members: readonly Member[];
  /** Parameters of the owned shards. */
  readonly params: Readonly<Record<number, string>>;
}

/** A stage function. */
export type StageFunction = (ctx: ShardContext) => void | Promise<void>;

/** The handler: goworker's Before/Do/After/ErrorMessage, plus `watch`. */
export interface Handler {
  /** Runs first; retried per the retry policy. A final failure skips `do` and `after`. */
  before?: StageFunction;
  /**
   * The work. Without a schedule it runs once per acquisition (loop inside it
   * until `ctx.signal` aborts for a long-running consumer); with a schedule, once
   * per tick. Retried per the retry policy.
   */
  do: StageFunction;
  /** Runs after a successful `do`; retried per the retry policy. */
  after?: StageFunction;
  /**
   * Receives every error a stage throws, then `AttemptsExhaustedError` when the
   * policy gives up. Errors caused by the shard's own abort are not reported.
   */
  onError?: (error: unknown, ctx: ShardContext) => void;
  /** Called whenever this replica's slice changes. */
  watch?: (info: WatchInfo) => void;
}
