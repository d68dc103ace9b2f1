/**
 * One owned shard: its claim token, its `AbortController`, the handler
 * pipeline (before → do → after, each stage retried by the policy) and the
 * bounded wait for it to settle when the shard is revoked. A run lives under
 * the lease that claimed it: its signal aborts when the lease ends, and the
 * run revokes itself then (nobody revokes the runs of a lost lease in a loop).
 *
 * @module
 */

import { settlesWithin } from './clock.js';
import { AttemptsExhaustedError, NotOwnerError } from './errors.js';
import type { ShardContext, Stage, StageFunction } from './handler.js';
import type { Lease } from './lease.js';
import type { CompiledWorkerOptions } from './options.js';
import { retrying } from './retrying.js';
import { StateMachine, type TransitionTable } from './states.js';

/** Why a shard stopped being owned. */
export type RevokeReason = 'rebalance' | 'lease-lost' | 'claim-lost' | 'stop';

/**
 * - `owned`: the claim is ours and the handler may act;
 * - `revoking`: the signal aborted, the handler drains; the claim is still
 *   held, so `ctx.held` stays true and nobody else can own the shard;
 * - `released`: the claim is gone or being given back.
 */
export type RunState = 'owned' | 'revoking' | 'released';

const RUN_TRANSITIONS: TransitionTable<RunState> = {
  owned: ['revoking', 'released'],
  revoking: ['released'],
  released: [],
};

/** What a run needs from its worker. */
export interface RunHost {
  readonly options: CompiledWorkerOptions;
  /** Whether `instance` is the current, unexpired registration (synchronous, reads the clock). */
  holds(instance: string): boolean;
  /** A stage threw (reported as `handler:error` and to `onError`). */
  handlerError(run: ShardRun, ctx: ShardContext, error: unknown): void;
  /** An infrastructure error (a throwing retry policy, …). */
  reportError(error: unknown): void;
  /** The run revoked itself because its lease ended (`lease-lost`, or `stop` for a released one). */
  leaseEnded(run: ShardRun, reason: RevokeReason): void;
}

/** One owned shard and its handler pipeline. */
export class ShardRun {
  /** The shard. */
  readonly shard: number;
  /** Fencing token of the claim. */
  readonly token: number;
  /** Member id that holds the claim. */
  readonly instance: string;
  readonly #host: RunHost;
  readonly #lease: Lease;
  readonly #controller = new AbortController();
  readonly #state = new StateMachine<RunState>('shard run', RUN_TRANSITIONS, 'owned');
  #current: Promise<void> | undefined;

  /**
   * A run of `shard` under `lease`. Its signal (`ctx.signal`) derives from
   * the lease's: it aborts with the lease's reason when the lease ends, or
   * with its own when the run is revoked. (Not `AbortSignal.any`: Node 20
   * never collects a composite signal that a handler left an abort listener
   * on, nodejs/node#55328, which would leak one signal per shard run; a
   * listener on the lease, removed when the run is released, does the same.)
   */
  constructor(host: RunHost, shard: number, token: number, lease: Lease) {
    this.#host = host;
    this.shard = shard;
    this.token = token;
    this.instance = lease.instance;
    this.#lease = lease;
    lease.signal.addEventListener('abort', this.#leaseEnded, { once: true });
  }

  /** The lease ended: stop at once. A run revoked already has its signal aborted, and drains on. */
  readonly #leaseEnded = (): void => {
    if (this.#state.state !== 'owned') return;
    const reason = this.#lease.state === 'lost' ? 'lease-lost' : 'stop';
    this.revoke(reason, this.#lease.signal.reason);
    this.#host.leaseEnded(this, reason);
  };

  /** The run's state. */
  get state(): RunState {
    return this.#state.state;
  }

  /** No longer owned: revoking or released. */
  get revoked(): boolean {
    return this.#state.state !== 'owned';
  }

  /** Monotonic time of the first {@link ShardRun.revoke}. */
  revokedAt: number | undefined;

  /** What revoked the run (the reason its signal aborted with), `undefined` while owned. */
  get revokedBy(): unknown {
    return this.#controller.signal.aborted ? this.#controller.signal.reason : undefined;
  }

  /** Whether a pipeline run is in progress. */
  get running(): boolean {
    return this.#current !== undefined;
  }

  /** `ctx.owned`: not revoked and the lease deadline not passed. */
  owned(): boolean {
    return this.#state.state === 'owned' && this.#host.holds(this.instance);
  }

  /** `ctx.held`: the claim is still ours (also while draining) and the lease deadline not passed. */
  held(): boolean {
    return this.#state.state !== 'released' && this.#host.holds(this.instance);
  }

  /**
   * Start a pipeline run (once per acquisition without a schedule, once per
   * tick with one). Returns false when one is still running (the tick is skipped).
   */
  start(scheduledAt: Date | undefined): boolean {
    if (this.revoked || this.#current !== undefined) return false;
    const done = this.#pipeline(scheduledAt)
      .catch((error: unknown) => this.#host.reportError(error))
      .finally(() => {
        if (this.#current === done) this.#current = undefined;
      });
    this.#current = done;
    return true;
  }

  /**
   * Abort the handler: its signal aborts with `cause`, by default a
   * `NotOwnerError` naming `reason`. A claim lost behind our back
   * (`claim-lost`) is gone already, so `ctx.held` turns false at once; after
   * any other reason the claim is held while the handler drains. Returns
   * false when the run was already revoked.
   */
  revoke(reason: RevokeReason, cause?: Error): boolean {
    if (this.#state.state === 'released') return false;
    const first = this.#state.state === 'owned';
    this.#state.to(reason === 'claim-lost' ? 'released' : 'revoking');
    if (first) {
      this.revokedAt = this.#host.options.clock.now();
      this.#controller.abort(cause ?? new NotOwnerError(this.shard, this.token, reason, this.#host.options.subject));
    }
    return first;
  }

  /** The claim is gone or about to be released: `ctx.held` is false from here on. */
  markReleased(): void {
    if (this.#state.state !== 'released') this.#state.to('released');
    this.#lease.signal.removeEventListener('abort', this.#leaseEnded);
  }

  /** Wait for the pipeline in progress, at most `timeoutMs`; false when it did not settle in time. */
  async settle(timeoutMs: number): Promise<boolean> {
    const current = this.#current;
    return current === undefined || (await settlesWithin(current, timeoutMs));
  }

  async #pipeline(scheduledAt: Date | undefined): Promise<void> {
    const o = this.#host.options;
    const run = this;
    const ctx = {
      service: o.service,
      shard: this.shard,
      shardCount: o.shardCount,
      param: o.params.get(this.shard),
      token: this.token,
      signal: this.#controller.signal,
      instance: this.instance,
      scheduledAt,
      attempt: 1,
      stage: 'before' as Stage,
      data: {} as Record<string, unknown>,
      get owned(): boolean {
        return run.owned();
      },
      get held(): boolean {
        return run.held();
      },
      assertOwned(): void {
        if (!run.owned()) throw new NotOwnerError(run.shard, run.token, 'revoked or lease deadline passed', o.subject);
      },
    };
    const { before, after } = o.handler;
    const stages: [Stage, StageFunction | undefined][] = [
      ['before', before],
      ['do', o.handler.do],
      ['after', after],
    ];
    // Let the claim's caller finish its bookkeeping before user code runs.
    await Promise.resolve();
    for (const [stage, fn] of stages) {
      if (fn === undefined) continue;
      ctx.stage = stage;
      if (!(await this.#runStage(ctx, fn))) return;
    }
  }

  /**
   * Run one stage, retried by the worker's policy; `true` when it succeeded.
   * Every failure goes to `onError` (none after the signal aborted: the run
   * is over), a non-retryable one ends the stage, and so does the policy
   * giving up, with `AttemptsExhaustedError`.
   */
  async #runStage(ctx: ShardContext & { attempt: number }, fn: StageFunction): Promise<boolean> {
    const signal = this.#controller.signal;
    const o = this.#host.options;
    try {
      await retrying(
        async (attempt) => {
          ctx.attempt = attempt;
          try {
            await fn.call(o.handler, ctx);
          } catch (error) {
            if (!signal.aborted) this.#host.handlerError(this, ctx, error);
            throw error;
          }
        },
        {
          signal,
          backoff: (attempt, error) => {
            try {
              return o.retry(attempt, error);
            } catch (policyError) {
              this.#host.reportError(policyError);
              return null;
            }
          },
          giveUp: (error, { attempt }) => {
            this.#host.handlerError(this, ctx, new AttemptsExhaustedError(ctx.stage, attempt, error));
            return error;
          },
        },
      );
      return true;
    } catch {
      return false;
    }
  }
}
