/**
 * `shardwork services forget <service>`: remove the records of a service
 * whose replicas all stopped, through `Discovery.forgetService`.
 *
 * It asks for no confirmation: the backend checks for live members and
 * removes the records in one atomic step, so a running service is never
 * touched, and what is removed (shard count, lease TTL, counters) is written
 * again by the next replica that starts.
 *
 * @module
 */

import type { Member } from '@shardwork/core';
import type { DiscoveryClient } from './backend.js';
import { NotFoundError, ServiceStillRunningError, UsageError } from './errors.js';
import { shortId } from './format.js';

/** Live members named in a refusal; more are counted. */
const NAMED = 10;

/** `host:pid (id)` of each live member id, in the order given; the id alone where the listing does not have it. */
export function describeMembers(ids: readonly string[], members: readonly Member[]): string {
  const byId = new Map(members.map((m) => [m.id, m]));
  const named = ids.slice(0, NAMED).map((id) => {
    const m = byId.get(id);
    if (m === undefined) return id;
    return `${m.host}:${m.pid} (${shortId(id)}${m.draining === true ? ', draining' : ''})`;
  });
  return named.join(', ') + (ids.length > NAMED ? `, … (${ids.length} in all)` : '');
}

/**
 * Forget `service`. Resolves when its records were removed. Rejects with
 * {@link NotFoundError} when the backend holds none (exit 4), with
 * {@link ServiceStillRunningError} naming its live members (exit 6), with a
 * `UsageError` when the name is empty or the backend cannot forget (exit 1),
 * and with `BackendUnavailableError` when it is unreachable or refuses (exit 2).
 */
export async function forgetService(client: DiscoveryClient, service: string): Promise<void> {
  if (service.trim() === '') throw new UsageError('services forget: give the name of a service');
  let forgotten: boolean;
  try {
    forgotten = await client.call((d) => {
      if (d.forgetService === undefined) {
        throw new UsageError(
          `The ${d.kind} discovery backend (${client.target}) cannot forget a service: it does not implement forgetService. ` +
            `Remove the records of "${service}" with the backend's own tools.`,
        );
      }
      return d.forgetService(service);
    });
  } catch (error) {
    if (error instanceof ServiceStillRunningError) throw await explainRunning(client, error);
    throw error;
  }
  if (!forgotten) {
    throw new NotFoundError(`Nothing to forget: ${client.target} holds no records of service "${service}"`);
  }
}

/** The refusal in the command's words, naming the live members as `host:pid` (one more read, best effort). */
async function explainRunning(
  client: DiscoveryClient,
  error: ServiceStillRunningError,
): Promise<ServiceStillRunningError> {
  const members = await client
    .call((d) => d.snapshot(error.service))
    .then((s) => s.members)
    // The ids from the refusal are enough to act on.
    .catch((): readonly Member[] => []);
  const n = error.members.length;
  return new ServiceStillRunningError(
    error.service,
    error.members,
    `Not forgotten: service "${error.service}" is running: ${n} live member${n === 1 ? '' : 's'}: ${describeMembers(error.members, members)}. ` +
      'Stop its replicas (a replica that died without stopping is gone once its lease expires) and run this again.',
    { cause: error.cause ?? error },
  );
}
