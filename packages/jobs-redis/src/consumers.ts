/**
 * Which handlers the live consumers of a queue run. A consumer publishes its
 * handler names in the member record of its queue's core `Worker` (the label
 * {@link HANDLERS_LABEL}), so the set lives and dies with the consumer's
 * lease: no key of its own to expire or repair. Producers and admin tools read
 * the queue's members from the coordinator's discovery: `stats()` and `pause()`
 * fresh, `perform` from a view at most {@link VIEW_TTL_MS} old refreshed in the
 * background (never on the enqueue's path), to report jobs that no live
 * consumer can run (`job:unhandled`).
 *
 * @module
 */

import type { Discovery } from '@shardwork/core';

/** The member label that carries a consumer's handler names, comma-separated. */
export const HANDLERS_LABEL = 'shardwork.handlers';

/** How old the producer's view of a queue's consumers may be. */
const VIEW_TTL_MS = 5000;
/** How often one handler of one queue is reported as unhandled. */
const REPORT_EVERY_MS = 60_000;

/** Live consumer processes (`host/pid`) per handler of one queue. */
export type ConsumerCounts = ReadonlyMap<string, ReadonlySet<string>>;

/** See the module documentation. */
export class ConsumerDirectory {
  readonly #discovery: () => Promise<Discovery>;
  readonly #views = new Map<string, { readonly at: number; readonly counts: ConsumerCounts }>();
  readonly #refreshing = new Set<string>();
  readonly #reported = new Map<string, number>();

  /** @param discovery - the coordinator's discovery, made on first use. */
  constructor(discovery: () => Promise<Discovery>) {
    this.#discovery = discovery;
  }

  /** Consumer processes per handler of `queue` now (one discovery read). */
  async counts(queue: string): Promise<ConsumerCounts> {
    const snapshot = await (await this.#discovery()).snapshot(queue);
    const processes = new Map<string, Set<string>>();
    for (const member of snapshot.members) {
      const names = member.labels[HANDLERS_LABEL];
      if (names === undefined || names === '') continue;
      for (const name of names.split(',')) {
        let set = processes.get(name);
        if (set === undefined) {
          set = new Set();
          processes.set(name, set);
        }
        set.add(`${member.host}/${member.pid}`);
      }
    }
    this.#views.set(queue, { at: Date.now(), counts: processes });
    return processes;
  }

  /**
   * Handlers of `jobs` (queue, handler pairs) that no live consumer ran a
   * moment ago, each reported at most once a minute: from the cached view,
   * refreshed in the background when stale (the first perform to a queue
   * reports nothing until the view exists).
   */
  unhandled(jobs: Iterable<{ readonly queue: string; readonly handler: string }>, onError: (e: unknown) => void) {
    const found: { queue: string; handler: string }[] = [];
    const now = Date.now();
    for (const { queue, handler } of jobs) {
      const view = this.#views.get(queue);
      if (view === undefined || now - view.at > VIEW_TTL_MS) this.#refresh(queue, onError);
      if (view === undefined || (view.counts.get(handler)?.size ?? 0) > 0) continue;
      const key = `${queue}\u0000${handler}`;
      if (now - (this.#reported.get(key) ?? 0) < REPORT_EVERY_MS) continue;
      this.#reported.set(key, now);
      found.push({ queue, handler });
    }
    return found;
  }

  #refresh(queue: string, onError: (e: unknown) => void): void {
    if (this.#refreshing.has(queue)) return;
    this.#refreshing.add(queue);
    this.counts(queue)
      .catch(onError)
      .finally(() => this.#refreshing.delete(queue));
  }
}
