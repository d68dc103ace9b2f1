/**
 * Gauges fed by several sources: every instrumented worker or queue adds a
 * source, and a scrape combines their observations per label set.
 *
 * @module
 */

import type { Labels, Observation } from './recorder.js';

/** Reads one source's current observations. */
export type Source = () => readonly Observation[] | Promise<readonly Observation[]>;

/**
 * How observations of several sources with the same labels combine: `sum` for
 * what each source holds itself (shards owned, jobs running), `max` for a view
 * every source shares (members of a service, depth of a queue read by two
 * queue objects on one backend).
 */
export type Combine = 'sum' | 'max';

/** A gauge's set of sources. */
export class GaugeSources {
  readonly #sources = new Set<Source>();
  readonly #combine: Combine;

  constructor(combine: Combine) {
    this.#combine = combine;
  }

  /** Add a source; returns a function that removes it. */
  add(source: Source): () => void {
    this.#sources.add(source);
    return () => {
      this.#sources.delete(source);
    };
  }

  /** All sources' observations, combined per label set. A throwing source is skipped. */
  async read(): Promise<readonly Observation[]> {
    const all = await Promise.all([...this.#sources].map(async (s) => [...(await s())]).map((p) => p.catch(() => [])));
    const byKey = new Map<string, { labels: Labels; value: number }>();
    for (const o of all.flat()) {
      const key = JSON.stringify(Object.entries(o.labels).sort(([a], [b]) => (a < b ? -1 : 1)));
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, { labels: o.labels, value: o.value });
      else seen.value = this.#combine === 'sum' ? seen.value + o.value : Math.max(seen.value, o.value);
    }
    return [...byKey.values()];
  }
}
