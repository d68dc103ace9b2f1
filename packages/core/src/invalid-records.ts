/**
 * Reporting garbage backend records (`record:invalid`): a record the backend
 * could not parse is reported once per listing that still holds it (not on
 * every pass), and a repaired one each time it is repaired.
 *
 * @module
 */

import type { InvalidRecord } from './discovery/contract.js';
import { InvalidRecordError } from './errors.js';

/** What one report carries (the payload of `record:invalid`). */
export interface InvalidRecordReport {
  readonly error: InvalidRecordError;
  readonly repaired: boolean;
}

/** See the module documentation. */
export class InvalidRecordReports {
  readonly #emit: (report: InvalidRecordReport) => void;
  #reported = new Set<string>();

  constructor(emit: (report: InvalidRecordReport) => void) {
    this.#emit = emit;
  }

  /** The invalid records of the latest listing: report those the previous one did not hold. */
  listed(records: readonly InvalidRecord[]): void {
    const seen = new Set<string>();
    for (const bad of records) {
      const key = `${bad.key}\u0000${bad.reason}`;
      seen.add(key);
      if (!this.#reported.has(key)) {
        this.#emit({ error: new InvalidRecordError(bad.key, bad.reason), repaired: false });
      }
    }
    this.#reported = seen;
  }

  /** Records the backend replaced or deleted where that was safe. */
  repaired(records: readonly InvalidRecord[]): void {
    for (const bad of records) {
      this.#emit({ error: new InvalidRecordError(bad.key, `${bad.reason} (repaired)`), repaired: true });
    }
  }
}
