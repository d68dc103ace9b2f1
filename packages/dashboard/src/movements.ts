import type { Snapshot } from '@shardwork/core';
import type { Movement } from './views.js';

const MOVEMENTS_KEPT = 50;

/**
 * The latest changes of shard owners, newest first, found by comparing each
 * service's snapshot with the one recorded before it.
 */
export class MovementLog {
  readonly #previous = new Map<string, Map<number, { owner: string; token: number }>>();
  readonly #movements: Movement[] = [];

  /** Compare `snapshot` of `service`, read at `at`, with the previous one; the first is a baseline. */
  record(service: string, snapshot: Snapshot, at: number): void {
    const current = new Map(snapshot.claims.map((c) => [c.shard, { owner: c.owner, token: c.token }]));
    const previous = this.#previous.get(service);
    this.#previous.set(service, current);
    if (previous === undefined) return; // the first look is a baseline, not a movement
    for (let shard = 0; shard < Math.max(snapshot.shardCount ?? 0, ...previous.keys(), -1) + 1; shard++) {
      const before = previous.get(shard);
      const after = current.get(shard);
      if (before?.owner === after?.owner) continue;
      this.#movements.unshift({ at, service, shard, from: before?.owner, to: after?.owner, token: after?.token });
    }
    if (this.#movements.length > MOVEMENTS_KEPT) this.#movements.length = MOVEMENTS_KEPT;
  }

  /** Drop what is known of `service`: the next time the name is seen it is a new service, not a movement. */
  forget(service: string): void {
    this.#previous.delete(service);
  }

  /** A copy of the movements kept, newest first. */
  list(): Movement[] {
    return [...this.#movements];
  }
}
