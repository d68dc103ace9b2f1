/**
 * Explicit state machines: every lifecycle (worker, lease, shard run) names
 * its legal transitions in a table, and a transition the table does not list
 * throws instead of silently corrupting the object.
 *
 * @module
 */

import { IllegalStateError } from './errors.js';

/** For each state, the states it may move to. */
export type TransitionTable<S extends string> = { readonly [K in S]: readonly S[] };

/** A state with its table; {@link StateMachine.to} checks every move. */
export class StateMachine<S extends string> {
  readonly #name: string;
  readonly #table: TransitionTable<S>;
  #state: S;

  constructor(name: string, table: TransitionTable<S>, initial: S) {
    this.#name = name;
    this.#table = table;
    this.#state = initial;
  }

  /** The current state. */
  get state(): S {
    return this.#state;
  }

  /** Whether moving to `to` is legal now. */
  can(to: S): boolean {
    return this.#table[this.#state].includes(to);
  }

  /**
   * Move to `to` and return the state left.
   * @throws IllegalStateError when the table has no such transition.
   */
  to(to: S): S {
    const from = this.#state;
    if (!this.#table[from].includes(to)) throw new IllegalStateError(`move ${this.#name} to ${to}`, from);
    this.#state = to;
    return from;
  }
}
