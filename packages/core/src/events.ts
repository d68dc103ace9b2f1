/**
 * A small typed event emitter: one payload object per event, and a guard so a
 * throwing listener can never break the worker (its error is re-emitted as
 * `error`, or printed if it was an `error` listener that threw).
 *
 * @module
 */

/** Listener of event `K` of map `M`. */
export type Listener<M, K extends keyof M> = (payload: M[K]) => void;

/** Typed emitter over an event map. */
export class TypedEmitter<M extends { error: { error: unknown } }> {
  readonly #listeners = new Map<keyof M, Set<(payload: never) => void>>();

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => this.off(event, listener);
  }

  /** Add a listener that runs at most once. */
  once<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Remove a listener. */
  off<K extends keyof M>(event: K, listener: Listener<M, K>): void {
    this.#listeners.get(event)?.delete(listener as (payload: never) => void);
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof M): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** @internal Emit to every listener, catching throws. */
  protected emit<K extends keyof M>(event: K, payload: M[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<M, K>)(payload);
      } catch (error) {
        if (event === 'error') {
          console.error('shardwork: an "error" listener threw', error);
        } else if (this.listenerCount('error') === 0) {
          console.warn(`shardwork: a "${String(event)}" listener threw`, error);
        } else {
          this.emit('error', { error } as M['error']);
        }
      }
    }
  }
}
