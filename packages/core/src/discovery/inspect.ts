/**
 * Reading a service for operating tools (the CLI, the dashboard), where a
 * listing may cost more than the resolver's.
 *
 * @module
 */

import type { Discovery, Snapshot } from './contract.js';

/**
 * A snapshot whose members say how long their leases have left
 * (`expiresInMs`) wherever the backend can tell: from the listing itself
 * (memory, Redis), else from {@link Discovery.leaseTimes} (etcd, one request
 * per member, whole seconds).
 */
export async function inspectSnapshot(discovery: Discovery, service: string): Promise<Snapshot> {
  const snapshot = await discovery.snapshot(service);
  if (discovery.leaseTimes === undefined || snapshot.members.every((m) => m.expiresInMs !== undefined)) {
    return snapshot;
  }
  const times = await discovery.leaseTimes(service);
  return {
    ...snapshot,
    members: snapshot.members.map((m) =>
      m.expiresInMs !== undefined || !times.has(m.id) ? m : { ...m, expiresInMs: times.get(m.id) },
    ),
  };
}
