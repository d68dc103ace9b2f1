/**
 * One subscription to the keys of a service: an etcd watch on the service
 * prefix that turns every batch of events into a `change` notification and
 * survives anything that ends the watch.
 *
 * When the watch stream breaks (connection lost, server restarted, watch
 * cancelled by compaction) events may have been missed, so the loop reads the
 * current revision, watches again from the next one, and emits `reset` once
 * the new watch is established, which makes the worker re-list. etcd3 keeps
 * one watch stream per namespace object, so each subscription watches through
 * its own namespace, and {@link ServiceWatch.refresh} switches to a new one:
 * otherwise the new watch would be attached to the stream suspected dead.
 *
 * @module
 */

import type { DiscoveryEvent, DiscoveryListener } from '@shardwork/core';
import type { Etcd3, Namespace, Watcher } from 'etcd3';

/** What a {@link ServiceWatch} needs from its {@link EtcdDiscovery}. */
export interface WatchHost {
  readonly client: Etcd3;
  /** The current revision of the store (one bounded read). */
  currentRevision(root: string): Promise<number>;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

/** The watch loop of one {@link EtcdDiscovery.watch} subscription. */
export class ServiceWatch {
  readonly #host: WatchHost;
  readonly #root: string;
  readonly #listener: DiscoveryListener;
  #active = true;
  #namespace: Namespace;
  #watcher: Watcher | undefined;
  #generation = 0;
  #backoffMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param startRevision - first revision to deliver events for, when the caller
   *   knows up to which revision it has listed; otherwise the watch starts now and
   *   announces itself with a `reset`.
   */
  constructor(host: WatchHost, root: string, listener: DiscoveryListener, startRevision: number | undefined) {
    this.#host = host;
    this.#root = root;
    this.#listener = listener;
    this.#namespace = host.client.namespace('');
    void this.#establish(startRevision, startRevision === undefined ? 'reset' : undefined);
  }

  /**
   * The connection recovered from a failure that the watch stream may not have
   * noticed (a frozen connection shows no error until keepalive gives up):
   * start over on a new stream.
   */
  refresh(): void {
    if (this.#watcher === undefined) return;
    this.#namespace = this.#host.client.namespace('');
    this.#broken(this.#watcher);
  }

  /** Stop for good; the listener is not called after this returns. */
  stop(): void {
    this.#active = false;
    this.#generation += 1;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher !== undefined) cancel(watcher);
  }

  #emit(event: DiscoveryEvent): void {
    if (!this.#active) return;
    try {
      this.#listener(event);
    } catch (error) {
      // A throwing listener must not break the watch stream (etcd3 would rethrow it as uncaught).
      process.emitWarning(
        `shardwork etcd watch listener threw: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  async #establish(startRevision: number | undefined, hint: 'reset' | undefined): Promise<void> {
    const generation = ++this.#generation;
    let start = startRevision;
    if (start === undefined) {
      try {
        start = (await this.#host.currentRevision(this.#root)) + 1;
      } catch {
        if (generation === this.#generation && this.#active) this.#retryLater();
        return;
      }
      if (generation !== this.#generation || !this.#active) return;
    }
    let pendingHint = hint;
    const watcher = this.#namespace.watch().prefix(this.#root).startRevision(String(start)).watcher();
    this.#watcher = watcher;
    const current = () => this.#active && this.#watcher === watcher;
    watcher.on('connected', () => {
      if (!current()) return;
      this.#backoffMs = 0;
      if (pendingHint !== undefined) this.#emit({ type: pendingHint });
      pendingHint = undefined;
    });
    watcher.on('data', (response) => {
      if (current() && response.events.length > 0) this.#emit({ type: 'change' });
    });
    watcher.on('disconnected', () => this.#broken(watcher));
    watcher.on('error', () => this.#broken(watcher));
  }

  #broken(watcher: Watcher): void {
    if (!this.#active || this.#watcher !== watcher) return;
    this.#watcher = undefined;
    cancel(watcher);
    this.#retryLater();
  }

  #retryLater(): void {
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(Math.max(MIN_BACKOFF_MS, this.#backoffMs * 2), MAX_BACKOFF_MS);
    const generation = ++this.#generation;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (generation === this.#generation && this.#active) void this.#establish(undefined, 'reset');
    }, delay);
    this.#timer.unref?.();
  }
}

function cancel(watcher: Watcher): void {
  watcher.cancel().catch(() => undefined);
}
