/**
 * A small typed event emitter: one payload object per event, and a guard so a
 * throwing listener can never break the worker (its error is re-emitted as
 * `error`, or printed if it was an `error` listener that threw).
 *
 * Every `error` payload is an {@link ErrorPayload}: still `{ error }`, so
 * `on('error', ({ error }) => …)` works as it always did, and it prints its
 * error: `String(e)` in `on('error', (e) => …)` no longer gives `[object Object]`.
 *
 * @module
 */

import { type InspectOptionsStylized, inspect } from 'node:util';
import { describe, reason } from './errors.js';
import { consoleLogger, type Logger } from './logger.js';

/**
 * The payload of every `error` event of a shardwork emitter (a `Worker`, a
 * job queue). Its shape is `{ error }`, as it always was; unlike a plain
 * object it prints the error it carries: `String(payload)` and
 * `` `${payload}` `` give `"Name: message"`, `payload.message` the error's
 * message, and `console.error(payload)` / `util.inspect` show the error
 * itself, stack and all.
 *
 * ```ts
 * worker.on('error', ({ error }) => log(error)); // as before
 * worker.on('error', (e) => console.warn(`backend trouble: ${e}`)); // prints the error
 * ```
 */
export class ErrorPayload<E = unknown> {
  /** The error reported (usually an `Error`, but a listener may throw anything). */
  readonly error: E;

  constructor(error: E) {
    this.error = error;
  }

  /** The error's message (`describe`d when it is not an `Error`). */
  get message(): string {
    return reason(this.error);
  }

  /** `"Name: message"` for an `Error`, the value itself for a string, a short rendering otherwise. */
  toString(): string {
    const error: unknown = this.error;
    if (error instanceof Error) return error.toString();
    return typeof error === 'string' ? error : describe(error);
  }

  /** `console.log(payload)` and `util.inspect(payload)` show the error, not a wrapper around it. */
  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    return show(this.error, options);
  }
}

/**
 * The payload of an `error` event for `error`: what a `TypedEmitter`
 * subclass should emit (`this.emit('error', errorPayload(error))`). Plain
 * `{ error }` objects are turned into one by the emitter anyway; extra fields
 * of such an object are kept.
 */
export function errorPayload<E>(error: E): ErrorPayload<E> {
  return new ErrorPayload(error);
}

function asErrorPayload(payload: unknown): ErrorPayload {
  if (payload instanceof ErrorPayload) return payload;
  if (typeof payload !== 'object' || payload === null) return new ErrorPayload(payload);
  const wrapped = new ErrorPayload((payload as { error?: unknown }).error);
  // Other fields of the emitter's payload are kept, as own properties (one
  // named like a getter of ErrorPayload, `message`, shadows it rather than throw).
  for (const [key, value] of Object.entries(payload)) {
    if (key !== 'error') Object.defineProperty(wrapped, key, { value, enumerable: true, configurable: true });
  }
  return wrapped;
}

/** Listener of event `K` of map `M`. */
export type Listener<M, K extends keyof M> = (payload: M[K]) => void;

/** Typed emitter over an event map. */
export class TypedEmitter<M extends { error: { error: unknown } }> {
  readonly #listeners = new Map<keyof M, Set<(payload: never) => void>>();
  /** Where a throwing listener is reported when nobody else can be told; subclasses set their own. */
  protected logger: Logger = consoleLogger();

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

  /**
   * @internal Emit to every listener, catching throws. An `error` payload is
   * delivered as an {@link ErrorPayload} whatever the caller passed, so that
   * every emitter built on this one prints its errors the same way.
   */
  protected emit<K extends keyof M>(event: K, payload: M[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    const delivered = event === 'error' ? (asErrorPayload(payload) as M[K]) : payload;
    for (const listener of [...set]) {
      try {
        (listener as Listener<M, K>)(delivered);
      } catch (error) {
        if (event === 'error') {
          this.logger.error({ event: 'error', error }, `an "error" listener threw: ${reason(error)}`);
        } else if (this.listenerCount('error') === 0) {
          this.logger.warn({ event: String(event), error }, `a "${String(event)}" listener threw: ${reason(error)}`);
        } else {
          this.emit('error', errorPayload(error) as M['error']);
        }
      }
    }
  }
}
