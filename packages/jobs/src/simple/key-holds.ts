/**
 * The holds on keys of the `memory://` adapter (JOBS.md's unique and ordered
 * jobs): which job holds each unique key, and each ordered key's line of jobs,
 * head first. Only a line's head may run; the next one becomes ready when the
 * head completes, dies or is dropped.
 *
 * @module
 */

import type { JobRecord } from '../job.js';

/** A job that can hold keys. */
export interface KeyHolder {
  readonly record: JobRecord;
  /** An ordered job that holds its place in its key's line. */
  inLine: boolean;
}

/** See the module documentation. */
export class KeyHolds<T extends KeyHolder> {
  readonly #unique = new Map<string, string>();
  readonly #lines = new Map<string, T[]>();
  readonly #lineKeyOf: (job: T) => string | undefined;

  /** @param lineKeyOf - the line a job waits in: its queue and key when its handler is ordered, else undefined. */
  constructor(lineKeyOf: (job: T) => string | undefined) {
    this.#lineKeyOf = lineKeyOf;
  }

  /** The id of the job that holds `uniqueKey`, if one does. */
  uniqueHolder(uniqueKey: string): string | undefined {
    return this.#unique.get(uniqueKey);
  }

  /** Let job `id` hold `uniqueKey`. */
  holdUnique(uniqueKey: string, id: string): void {
    this.#unique.set(uniqueKey, id);
  }

  /**
   * A job became due: take its place at the end of its key's line (once).
   * True when it may run now: it is not ordered, or heads its line.
   */
  joinLine(job: T): boolean {
    const lineKey = this.#lineKeyOf(job);
    if (lineKey === undefined || job.inLine) return true;
    job.inLine = true;
    const line = this.#lines.get(lineKey);
    if (line !== undefined) {
      line.push(job); // waits for the jobs of its key ahead of it
      return false;
    }
    this.#lines.set(lineKey, [job]);
    return true;
  }

  /**
   * The job completed, died or was dropped: release its unique key and its
   * place in its line. Returns the job that now heads the line and may run,
   * when the released one headed it.
   */
  release(job: T): T | undefined {
    const uniqueKey = job.record.uniqueKey;
    if (uniqueKey !== undefined && this.#unique.get(uniqueKey) === job.record.id) this.#unique.delete(uniqueKey);
    if (!job.inLine) return undefined;
    job.inLine = false;
    const lineKey = this.#lineKeyOf(job) as string;
    const line = this.#lines.get(lineKey);
    if (line === undefined) return undefined;
    const at = line.indexOf(job);
    if (at >= 0) line.splice(at, 1);
    const next = line[0];
    if (next === undefined) this.#lines.delete(lineKey);
    return at === 0 ? next : undefined;
  }
}
