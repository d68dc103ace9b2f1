/**
 * A coverage observer: its own backend connection (never cut, never paused)
 * that polls the service and counts the shards claimed by *healthy* members —
 * live in the backend and not belonging to a replica the harness has killed,
 * stopped, paused or cut off. A frozen or partitioned replica's claims outlive
 * it until its lease expires, so counting them would hide the outage.
 *
 * @module
 */

import type { Discovery } from '@shardwork/core';
import type { CoverageSample, EventOutcome } from './check.js';

/** Options of {@link CoverageObserver}. */
export interface ObserverOptions {
  readonly discovery: Discovery;
  readonly service: string;
  readonly shardCount: number;
  /** The run's clock. */
  readonly now: () => number;
  /** Member ids whose claims do not count (read at each poll). */
  readonly excluded: () => ReadonlySet<string>;
  /** Outcomes to stamp with `recoveredAt`. */
  readonly outcomes: readonly EventOutcome[];
  /** Called when an outcome is stamped. */
  readonly onRecovered?: (outcome: EventOutcome) => void;
  /** @defaultValue 50 */
  readonly pollMs?: number;
}

/** Polls until {@link stop}; `samples` grows as it goes. */
export class CoverageObserver {
  readonly samples: CoverageSample[] = [];
  readonly #o: ObserverOptions;
  #stopped = false;
  #loop: Promise<void> | undefined;
  /** Send time of the last poll that found every shard covered. */
  #lastFullSentAt = Number.NEGATIVE_INFINITY;

  constructor(options: ObserverOptions) {
    this.#o = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  /** Whether a poll sent at or after `t` found every shard covered. */
  fullSince(t: number): boolean {
    return this.#lastFullSentAt >= t;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    while (!this.#stopped) {
      const sentAt = o.now();
      const excluded = o.excluded();
      let covered: number | undefined;
      let detail: string;
      try {
        const snap = await o.discovery.snapshot(o.service);
        const healthy = new Set(snap.members.filter((m) => !excluded.has(m.id)).map((m) => m.id));
        covered = new Set(snap.claims.filter((c) => healthy.has(c.owner)).map((c) => c.shard)).size;
        detail = `${covered}/${o.shardCount} shards by ${healthy.size} healthy of ${snap.members.length} members`;
      } catch (error) {
        detail = `backend unreachable: ${error instanceof Error ? error.message : String(error)}`;
      }
      const at = o.now();
      this.samples.push({ at, covered, detail });
      if (covered === o.shardCount) {
        this.#lastFullSentAt = sentAt;
        for (const outcome of o.outcomes) {
          if (outcome.recoveredAt !== undefined || outcome.doneAt === undefined || outcome.doneAt > sentAt) continue;
          outcome.recoveredAt = at;
          o.onRecovered?.(outcome);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? 50));
    }
  }
}
