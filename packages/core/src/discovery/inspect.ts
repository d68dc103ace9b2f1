/**
 * Reading a service for operating tools (the CLI, the dashboard), where a
 * listing may cost more than the resolver's, and where a service has a
 * health: running with every shard owned, degraded, or stopped.
 *
 * @module
 */

import type { Discovery, Snapshot } from './contract.js';

/**
 * - `ok`: live members own every shard;
 * - `degraded`: the service runs (it has live members or claims) but some
 *   shards are unowned, or its shard count is unreadable;
 * - `stopped`: its group record (or garbage under its name) is there, but no
 *   member and no claim: every replica stopped. Not an alarm: remove the
 *   records with {@link Discovery.forgetService} if it is gone for good;
 * - `absent`: the backend holds nothing for it.
 */
export type ServiceHealth = 'ok' | 'degraded' | 'stopped' | 'absent';

/** A snapshot with what operating tools derive from it. */
export interface ServiceInspection extends Snapshot {
  readonly health: ServiceHealth;
  /** Shards in `[0, shardCount)` without a live claim, ascending (empty when the shard count is unknown). */
  readonly unowned: readonly number[];
}

/** The health of a service as of `snapshot` (pure). */
export function serviceHealth(snapshot: Snapshot): Pick<ServiceInspection, 'health' | 'unowned'> {
  const owned = new Set(snapshot.claims.map((c) => c.shard));
  const unowned: number[] = [];
  for (let shard = 0; shard < (snapshot.shardCount ?? 0); shard++) if (!owned.has(shard)) unowned.push(shard);
  let health: ServiceHealth;
  if (snapshot.members.length === 0 && snapshot.claims.length === 0) {
    health = snapshot.shardCount === undefined && snapshot.invalid.length === 0 ? 'absent' : 'stopped';
  } else {
    health = snapshot.shardCount === undefined || unowned.length > 0 ? 'degraded' : 'ok';
  }
  return { health, unowned };
}

/**
 * A snapshot whose members say how long their leases have left
 * (`expiresInMs`) wherever the backend can tell: from the listing itself
 * (memory, Redis), else from {@link Discovery.leaseTimes} (etcd, one request
 * per member, whole seconds); with the service's {@link ServiceHealth} and its
 * unowned shards.
 */
export async function inspectSnapshot(discovery: Discovery, service: string): Promise<ServiceInspection> {
  const listed = await discovery.snapshot(service);
  let snapshot = listed;
  if (discovery.leaseTimes !== undefined && !listed.members.every((m) => m.expiresInMs !== undefined)) {
    const times = await discovery.leaseTimes(service);
    snapshot = {
      ...listed,
      members: listed.members.map((m) =>
        m.expiresInMs !== undefined || !times.has(m.id) ? m : { ...m, expiresInMs: times.get(m.id) },
      ),
    };
  }
  return { ...snapshot, ...serviceHealth(snapshot) };
}
