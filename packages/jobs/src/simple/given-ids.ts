/**
 * The ids callers chose (`perform(job, { id })`) that the `memory://` adapter
 * remembers for the queue's idempotency window, after their jobs are gone
 * too, so that a perform tried again with the same id adds nothing.
 *
 * @module
 */

/** See the module documentation. */
export class GivenIds {
  /** Each id with when it is forgotten (in insertion order, so expiry order). */
  readonly #until = new Map<string, number>();

  /** Whether `id` is remembered. */
  has(id: string): boolean {
    return this.#until.has(id);
  }

  /** Remember `id` until `until` (ms since the epoch). */
  add(id: string, until: number): void {
    this.#until.set(id, until);
  }

  /** Forget the ids whose window has passed at `now`. */
  forget(now: number): void {
    for (const [id, until] of this.#until) {
      if (until > now) return;
      this.#until.delete(id);
    }
  }
}
