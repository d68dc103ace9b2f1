/**
 * One subscription to the keys of a service: an etcd watch on the service
 * prefix that turns every watch response into one `change` notification
 * carrying its changes, and that survives anything that ends the watch.
 *
 * Deltas. A deleted claim is announced with the lowest token a claim created
 * at its deletion's revision could have (`tokenBelow`, see `tokens.ts`):
 * tokens grow with the create revision, so the claim removed is the one below
 * it, and the watch need not ask for previous values (etcd reads each one back
 * for every watcher). Each response becomes one event: `revision` is the revision of
 * its last etcd event, `previous` the revision up to which the stream had
 * delivered everything before it (the start revision − 1 for the first), so
 * consecutive events chain. etcd sends all events of one revision in one
 * response (a lease expiry deletes the member key and its claims at one
 * revision, and arrives as one event). A record that cannot be parsed, a
 * claim without a lease or overwritten after its creation,
 * or a change of the meta record or of a foreign key makes the event a plain
 * hint without `changes`: the listener re-lists and the snapshot reports it.
 *
 * Start. A watch starts right after this connection's latest snapshot of the
 * service, so that nothing between list and watch is missed; without one it
 * starts now, and announces a `reset` only if a snapshot was taken meanwhile
 * from before its start (a listener that lists after the start misses
 * nothing; one that listed before it sees `previous` beyond its revision in
 * the first event).
 *
 * Restarts. When the watch stream breaks (connection lost, server restarted,
 * watch cancelled by compaction) events may have been missed, so the loop
 * reads the current revision, watches again from the next one, and emits
 * `reset` once the new watch is established, which makes the worker re-list.
 * It retries quickly (at most every 100 ms) and {@link ServiceWatch.refresh}
 * cuts any wait short, so a replica is back right after the connection heals.
 * etcd3 keeps one watch stream per namespace object, so every attempt watches
 * through a namespace of its own: a new watch is never attached to a stream
 * suspected dead, nor delayed by etcd3's own reconnect backoff.
 *
 * @module
 */

import type { DiscoveryChange, DiscoveryEvent, DiscoveryListener } from '@shardwork/core';
import type { Etcd3, IEvent, IWatchResponse, Watcher } from 'etcd3';
import { parseServiceKey } from './keys.js';
import { claimFromKv, memberFromKv } from './records.js';
import { tokenBelow } from './tokens.js';

/** What a {@link ServiceWatch} needs from its {@link EtcdDiscovery}. */
export interface WatchHost {
  readonly client: Etcd3;
  /** The current revision of the store (one bounded read). */
  currentRevision(root: string): Promise<number>;
  /** Revision of this connection's latest snapshot of the service, if any. */
  listedAt(): number | undefined;
}

/**
 * When a new watch announces itself with a `reset`: always after a restart
 * (events may have been missed); for a first watch only if a snapshot was
 * taken before the revision it starts from (the changes in between would be
 * missed); never for a watch that starts right after a snapshot.
 */
type Announce = 'always' | 'if-listed-before' | 'never';

/** Delay of the first retry after one that failed; doubled up to {@link MAX_RETRY_MS}. */
const MIN_RETRY_MS = 50;
/** Longest wait between two attempts to re-establish a broken watch. */
const MAX_RETRY_MS = 100;

/** The watch loop of one {@link EtcdDiscovery.watch} subscription. */
export class ServiceWatch {
  readonly #host: WatchHost;
  readonly #root: string;
  readonly #listener: DiscoveryListener;
  #active = true;
  #watcher: Watcher | undefined;
  #generation = 0;
  #retryMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Revision up to which the current watch has delivered every change. */
  #delivered = 0;
  /** When the current watch last heard from etcd (`performance.now()`), 0: not yet. */
  #heardAt = 0;

  /**
   * @param startRevision - first revision to deliver events for, when the caller
   *   knows up to which revision it has listed; otherwise the watch starts now
   *   (and announces a `reset` only if a snapshot from before its start was
   *   taken meanwhile, see {@link WatchHost.listedAt}).
   */
  constructor(host: WatchHost, root: string, listener: DiscoveryListener, startRevision: number | undefined) {
    this.#host = host;
    this.#root = root;
    this.#listener = listener;
    void this.#establish(startRevision, startRevision === undefined ? 'if-listed-before' : 'never');
  }

  /**
   * The connection recovered from a failure that the watch stream may not have
   * noticed (a frozen connection shows no error until keepalive gives up), or
   * that it is waiting to retry: start over now, on a new stream, and announce
   * a `reset`. A watch that heard from etcd after `failedAt` (the last failed
   * call, `performance.now()`) is known to work and is kept: calls that merely
   * missed their deadline on a loaded server must not make every replica re-list.
   */
  refresh(failedAt?: number): void {
    if (!this.#active) return;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#establish(undefined, 'always');
      return;
    }
    const watcher = this.#watcher;
    // Neither waiting nor watching: an attempt is under way.
    if (watcher === undefined) return;
    if (failedAt !== undefined && this.#heardAt > failedAt) return;
    this.#watcher = undefined;
    cancel(watcher);
    void this.#establish(undefined, 'always');
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

  async #establish(startRevision: number | undefined, announce: Announce): Promise<void> {
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
    const from = start;
    let pendingReset = announce !== 'never';
    this.#delivered = start - 1;
    this.#heardAt = 0;
    const watcher = this.#host.client.namespace('').watch().prefix(this.#root).startRevision(String(start)).watcher();
    this.#watcher = watcher;
    const current = () => this.#active && this.#watcher === watcher;
    watcher.on('connected', () => {
      if (!current()) return;
      this.#heardAt = performance.now();
      this.#retryMs = 0;
      const listedAt = this.#host.listedAt();
      const missed = announce === 'always' || (listedAt !== undefined && listedAt < from - 1);
      if (pendingReset && missed) this.#emit({ type: 'reset' });
      pendingReset = false;
    });
    watcher.on('data', (response: IWatchResponse) => {
      if (!current()) return;
      this.#heardAt = performance.now();
      if (response.events.length > 0) this.#deliver(response.events);
    });
    watcher.on('disconnected', () => this.#broken(watcher));
    watcher.on('error', () => this.#broken(watcher));
  }

  #deliver(events: readonly IEvent[]): void {
    const last = events[events.length - 1];
    const revision = Number(last?.kv.mod_revision ?? this.#delivered);
    const previous = this.#delivered;
    this.#delivered = Math.max(this.#delivered, revision);
    const changes = decodeEvents(this.#root, events);
    this.#emit({
      type: 'change',
      revision: String(revision),
      previous: String(previous),
      ...(changes === undefined ? {} : { changes }),
    });
  }

  #broken(watcher: Watcher): void {
    if (!this.#active || this.#watcher !== watcher) return;
    this.#watcher = undefined;
    cancel(watcher);
    this.#retryLater();
  }

  #retryLater(): void {
    const delay = this.#retryMs;
    this.#retryMs = Math.min(Math.max(MIN_RETRY_MS, this.#retryMs * 2), MAX_RETRY_MS);
    const generation = ++this.#generation;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (generation === this.#generation && this.#active) void this.#establish(undefined, 'always');
    }, delay);
    this.#timer.unref?.();
  }
}

function cancel(watcher: Watcher): void {
  watcher.cancel().catch(() => undefined);
}

/** The changes of one watch response, or `undefined` when one of its events cannot be expressed as a change. */
export function decodeEvents(root: string, events: readonly IEvent[]): DiscoveryChange[] | undefined {
  const changes: DiscoveryChange[] = [];
  for (const event of events) {
    const change = decodeEvent(root, event);
    if (change === undefined) return undefined;
    if (change !== 'none') changes.push(change);
  }
  return changes;
}

/**
 * One etcd event as a change; `'none'` for the `released` marker, which
 * changes no member or claim; `undefined` for anything a listener must re-list for.
 */
export function decodeEvent(root: string, event: IEvent): DiscoveryChange | 'none' | undefined {
  const named = parseServiceKey(root, event.kv.key.toString('utf8'));
  const deleted = event.type === 'Delete';
  if (named.kind === 'marker') return deleted ? undefined : 'none';
  if (named.kind === 'member') {
    if (deleted) return { type: 'member:removed', id: named.id };
    const member = memberFromKv(named.id, event.kv);
    return member.ok ? { type: 'member:put', member: member.value } : undefined;
  }
  if (named.kind === 'claim') {
    if (deleted) {
      // Tokens grow with the create revision: the deleted claim is the one
      // created before this deletion, so no previous value is needed (asking
      // etcd for it costs a read per event per watcher).
      return { type: 'claim:removed', shard: named.shard, tokenBelow: tokenBelow(event.kv.mod_revision) };
    }
    // shardwork only creates claims: an overwrite came from elsewhere, so let the snapshot judge it.
    if (String(event.kv.version) !== '1') return undefined;
    const claim = claimFromKv(named.shard, event.kv);
    if (!claim.ok) return undefined;
    const { shard, owner, token } = claim.value;
    return { type: 'claim:put', claim: { shard, owner, token } };
  }
  // The meta record (the shard count is part of the snapshot) or a key shardwork does not write.
  return undefined;
}
