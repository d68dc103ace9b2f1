/**
 * Batched releases of claims: a stop or a rebalance whose handlers settle
 * together gives its claims back in one or two requests, not one per shard.
 *
 * @module
 */

import type { ClaimRef, Discovery } from './discovery/contract.js';

/**
 * Claims given back while a release request is in flight go out together in
 * the next `releaseMany` of that member: a stop or a rebalance whose handlers
 * settle together costs one or two requests, not one per shard, and an
 * isolated release waits for nothing.
 */
export class ReleaseBatcher {
  readonly #discovery: Discovery;
  readonly #service: string;
  readonly #reportError: (error: unknown) => void;
  /** Per member: the batch being collected, and whether a request is in flight. */
  readonly #members = new Map<string, { queued: Queued[]; inFlight: boolean }>();

  constructor(discovery: Discovery, service: string, reportError: (error: unknown) => void) {
    this.#discovery = discovery;
    this.#service = service;
    this.#reportError = reportError;
  }

  /** Queue a release; resolves when its request is answered (never rejects: failures are reported). */
  add(instance: string, ref: ClaimRef): Promise<void> {
    let state = this.#members.get(instance);
    if (state === undefined) {
      state = { queued: [], inFlight: false };
      this.#members.set(instance, state);
    }
    const queued = state.queued;
    const done = new Promise<void>((resolve) => queued.push({ ref, resolve }));
    if (!state.inFlight) void this.#drain(instance, state);
    return done;
  }

  async #drain(instance: string, state: { queued: Queued[]; inFlight: boolean }): Promise<void> {
    state.inFlight = true;
    // Let releases queued in the same turn join the first request.
    await Promise.resolve();
    while (state.queued.length > 0) {
      const batch = state.queued.splice(0);
      try {
        await this.#discovery.releaseMany(
          this.#service,
          instance,
          batch.map((q) => q.ref),
        );
      } catch (error) {
        this.#reportError(error);
      }
      for (const q of batch) q.resolve();
    }
    state.inFlight = false;
    if (this.#members.get(instance) === state) this.#members.delete(instance);
  }
}

interface Queued {
  readonly ref: ClaimRef;
  readonly resolve: () => void;
}
