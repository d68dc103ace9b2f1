/**
 * The table of this replica's shard runs: one {@link ShardRun} per owned
 * shard, how each comes (`acquire`) and goes (a revocation drains its
 * handler, bounded by `revokeTimeoutMs`, then gives its claim back when that
 * is still ours to give), the claims each renewal checks, cron ticks, and
 * the hand-over of every shard on stop. The resolver sees the table through
 * its narrow `RunTable` interface; the worker owns it.
 *
 * @module
 */

import type { ClaimRef } from './discovery/contract.js';
import { AttemptsExhaustedError, reason as errorReason, RevokeTimeoutError } from './errors.js';
import type { ShardContext, Stage } from './handler.js';
import type { Lease } from './lease.js';
import type { CompiledWorkerOptions } from './options.js';
import type { RunTable } from './resolver.js';
import type { Acquisition } from './service-view.js';
import { type RevokeReason, type RunHost, ShardRun } from './shard-run.js';

/** Most held claims one renewal checks (see {@link Runs.heldClaims}). */
const MAX_CHECKED = 1000;

/** On stop, handlers that settle within this long are handed over by revoking the lease alone. */
const FAST_STOP_MS = 20;

/** The events of a worker's shard runs, one payload object each (part of the worker's event map). */
export interface RunEventMap {
  /**
   * This replica claimed a shard: `reason` says how the shard came to be free
   * and `vacantMs` how long it had been free as this replica saw it (see
   * {@link Acquisition}).
   */
  'shard:acquired': { readonly shard: number; readonly token: number } & Acquisition;
  /** This replica stopped owning a shard. */
  'shard:revoked': { readonly shard: number; readonly token: number; readonly reason: RevokeReason };
  /**
   * A revoked shard's handler settled (or `revokeTimeoutMs` ran out) and its
   * claim was given back (`released`), or dropped with the lease or lost
   * claim. `drainMs` is the time from the revocation to then.
   */
  'shard:released': {
    readonly shard: number;
    readonly token: number;
    readonly reason: RevokeReason;
    readonly released: boolean;
    readonly drainMs: number;
  };
  /** A cron tick found the previous run of the shard still going and skipped it. */
  'tick:skipped': { readonly shard: number; readonly scheduledAt: Date };
  /** A handler stage threw (also given to `handler.onError`). */
  'handler:error': { readonly shard: number; readonly stage: Stage; readonly attempt: number; readonly error: unknown };
}

/** Where the runs emit their events (the worker). */
export interface RunEvents {
  emit<K extends keyof RunEventMap>(event: K, payload: RunEventMap[K]): void;
  listenerCount(event: keyof RunEventMap): number;
}

/** What the runs need from their worker. */
export interface RunsHost {
  readonly options: CompiledWorkerOptions;
  readonly events: RunEvents;
  /** Whether `instance` is the current, unexpired registration (synchronous, reads the clock). */
  holds(instance: string): boolean;
  /** Give a claim back (batched); resolves when answered, never rejects. */
  giveBack(instance: string, ref: ClaimRef): Promise<void>;
  /** A revocation in the background finished: its shard may be claimed again, so plan again. */
  revoked(): void;
  /** An infrastructure error (a revoke timeout, a throwing `onError`, …). */
  reportError(error: unknown): void;
}

/** The shard runs of one worker, by shard. */
export class Runs implements RunTable {
  readonly #host: RunsHost;
  readonly #runs = new Map<number, ShardRun>();
  /** Revocations in progress: they drain in the background so that one slow handler delays nothing else. */
  readonly #revocations = new Set<Promise<void>>();
  /** What every shard run gets from the table (one object for all of them). */
  readonly #runHost: RunHost;
  /** The shard the next renewal's check of held claims starts from, when there are too many for one. */
  #checkFrom = 0;
  /** `stop()` marked the member draining: its claims are given back one by one as their handlers settle. */
  #drained = false;

  constructor(host: RunsHost) {
    this.#host = host;
    this.#runHost = {
      options: host.options,
      holds: (id) => host.holds(id),
      handlerError: (r, ctx, error) => this.#handlerError(r, ctx, error),
      reportError: (e) => host.reportError(e),
      leaseEnded: (run, reason) => this.#emitRevoked(run, reason),
    };
  }

  /** Every run by shard, revoked ones included until their revocation finishes. */
  get planned(): ReadonlyMap<number, ShardRun> {
    return this.#runs;
  }

  /** Number of runs, revoked ones included. */
  get size(): number {
    return this.#runs.size;
  }

  /** Runs of shards still owned (not being revoked), by shard. */
  owned(): ShardRun[] {
    return [...this.#runs.values()].filter((r) => !r.revoked).sort((a, b) => a.shard - b.shard);
  }

  /** A claim is ours: start its run under `lease` (at once without a schedule, on the next tick with one). */
  acquire(shard: number, token: number, lease: Lease, how: Acquisition): void {
    const run = new ShardRun(this.#runHost, shard, token, lease);
    this.#runs.set(shard, run);
    this.#host.events.emit('shard:acquired', { shard, token, reason: how.reason, vacantMs: how.vacantMs });
    if (this.#host.options.schedule === undefined) run.start(undefined);
  }

  /** Revoke a run in the background: drain its handler, then give its claim back if it is still ours. */
  revoke(shard: number, reason: 'rebalance' | 'claim-lost'): void {
    const run = this.#runs.get(shard);
    if (run === undefined || run.revoked) return;
    run.revoke(reason);
    this.#emitRevoked(run, reason);
    const done: Promise<void> = this.#finish(run, reason).finally(() => {
      this.#revocations.delete(done);
      this.#host.revoked();
    });
    this.#revocations.add(done);
  }

  /** Give claims back that no run acts on (batched). */
  release(instance: string, claims: readonly ClaimRef[]): void {
    for (const ref of claims) void this.#host.giveBack(instance, ref);
  }

  /** Start a pipeline run of every owned shard for a cron tick; a shard whose last run still goes skips it. */
  tick(scheduledAt: Date): void {
    for (const run of this.#runs.values()) {
      if (run.revoked) continue;
      if (!run.start(scheduledAt)) this.#host.events.emit('tick:skipped', { shard: run.shard, scheduledAt });
    }
  }

  /**
   * Claims of `instance` that a run still acts on or drains under, for the
   * next renewal to check: all of them, or the next {@link MAX_CHECKED} in
   * shard order after the last ones checked, so that a replica holding
   * thousands of shards spreads the check over several heartbeats.
   */
  heldClaims(instance: string): ClaimRef[] {
    const held = [...this.#runs.values()]
      .filter((run) => run.instance === instance && run.state !== 'released')
      .sort((a, b) => a.shard - b.shard);
    let picked = held;
    if (held.length > MAX_CHECKED) {
      const from = Math.max(
        0,
        held.findIndex((run) => run.shard >= this.#checkFrom),
      );
      picked = Array.from({ length: MAX_CHECKED }, (_, i) => held[(from + i) % held.length] as ShardRun);
      this.#checkFrom = (picked.at(-1)?.shard ?? -1) + 1;
    }
    return picked.map((run) => ({ shard: run.shard, token: run.token }));
  }

  /**
   * A renewal found claims that are not ours any more (written over behind
   * our back): stop acting on them at once.
   */
  claimsLost(lost: readonly ClaimRef[]): void {
    for (const { shard, token } of lost) {
      const run = this.#runs.get(shard);
      if (run === undefined || run.token !== token) continue;
      // A draining run is revoked already; its claim is gone all the same, so ctx.held turns false.
      if (run.revoked) run.revoke('claim-lost');
      else this.revoke(shard, 'claim-lost');
    }
  }

  /**
   * Wait for the runs of a lost lease to settle (each bounded) and drop them:
   * their claims went with the lease. (Each stopped by itself when the lease's signal aborted.)
   */
  async finishLeaseLost(instance: string): Promise<void> {
    await Promise.all(
      [...this.#runs.values()].filter((r) => r.instance === instance).map((r) => this.#finish(r, 'lease-lost')),
    );
  }

  /**
   * Revoke every owned run and hand its shard over. Handlers that settle at
   * once: revoking the lease afterwards hands every shard over in one step.
   * Otherwise `markDraining` marks the member draining, so that peers plan
   * without it, and each shard is released as soon as its own handler
   * settles (without the mark, peers would give released shards straight
   * back to a member still in their view). Resolves when every revocation,
   * background ones included, is done.
   */
  async stop(markDraining: () => Promise<boolean>): Promise<void> {
    const owned = [...this.#runs.values()].filter((r) => !r.revoked);
    for (const run of owned) if (run.revoke('stop')) this.#emitRevoked(run, 'stop');
    const settledFast = (await Promise.all(owned.map((run) => run.settle(FAST_STOP_MS)))).every(Boolean);
    this.#drained = owned.length > 0 && !settledFast && (await markDraining());
    await Promise.all(owned.map((run) => this.#finish(run, 'stop')));
    await Promise.all([...this.#revocations]);
  }

  /**
   * Whether a revocation gives its claim back: a rebalance does; a stop does
   * when the member drains (otherwise revoking the lease hands everything
   * over at once); a lost lease or claim has nothing left to give.
   */
  #givesBack(reason: RevokeReason): boolean {
    switch (reason) {
      case 'rebalance':
        return true;
      case 'stop':
        return this.#drained;
      case 'lease-lost':
      case 'claim-lost':
        return false;
    }
  }

  /** Wait for a revoked run's handler (bounded), then give its claim back if that is due. Never rejects. */
  async #finish(run: ShardRun, reason: RevokeReason): Promise<void> {
    await this.#settle(run, reason);
    run.markReleased();
    const releasing = this.#givesBack(reason) && this.#host.holds(run.instance);
    if (releasing) await this.#host.giveBack(run.instance, { shard: run.shard, token: run.token });
    this.#emitReleased(run, reason, releasing);
    if (this.#runs.get(run.shard) === run) this.#runs.delete(run.shard);
  }

  /** Wait for a run's pipeline to finish, at most `revokeTimeoutMs`. */
  async #settle(run: ShardRun, reason: RevokeReason): Promise<void> {
    const o = this.#host.options;
    const timeout = o.revokeTimeoutMs;
    if (await run.settle(timeout)) return;
    const context = { reason, cause: run.revokedBy, subject: o.subject };
    this.#host.reportError(new RevokeTimeoutError(run.shard, timeout, context));
  }

  #emitRevoked(run: ShardRun, reason: RevokeReason): void {
    this.#host.events.emit('shard:revoked', { shard: run.shard, token: run.token, reason });
  }

  #emitReleased(run: ShardRun, reason: RevokeReason, released: boolean): void {
    const events = this.#host.events;
    if (events.listenerCount('shard:released') === 0) return;
    const drainMs = run.revokedAt === undefined ? 0 : this.#host.options.clock.now() - run.revokedAt;
    events.emit('shard:released', { shard: run.shard, token: run.token, reason, released, drainMs });
  }

  #handlerError(run: ShardRun, ctx: ShardContext, error: unknown): void {
    const o = this.#host.options;
    const events = this.#host.events;
    events.emit('handler:error', { shard: run.shard, stage: ctx.stage, attempt: ctx.attempt, error });
    const onError = o.handler.onError;
    if (onError === undefined) {
      // Nobody would hear of it: say so once per failing run, and when it gives up.
      if (
        events.listenerCount('handler:error') === 0 &&
        (ctx.attempt === 1 || error instanceof AttemptsExhaustedError)
      ) {
        const { tag, unit } = o.subject;
        o.logger.warn(
          {
            scope: tag.slice('[shardwork '.length, -1),
            service: o.service,
            shard: run.shard,
            token: run.token,
            stage: ctx.stage,
            attempt: ctx.attempt,
            error,
          },
          `${unit} ${run.shard} ${ctx.stage} failed: ${errorReason(error)}`,
        );
      }
      return;
    }
    try {
      onError.call(o.handler, error, ctx);
    } catch (thrown) {
      this.#host.reportError(thrown);
    }
  }
}
