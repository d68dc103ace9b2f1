/**
 * The group record of a service: the shard count and lease TTL that every
 * replica must agree on, checked at each registration, and repaired when the
 * stored value is garbage and the live members agree on what it should be.
 *
 * @module
 */

import type { Discovery, InvalidRecord, StoredGroup } from './discovery/contract.js';
import { InvalidRecordError, LeaseTtlMismatchError, ShardCountMismatchError } from './errors.js';
import type { Subject } from './subject.js';

/** The settings of this replica that the group must match. */
export interface GroupCheck {
  readonly service: string;
  readonly shardCount: number;
  readonly leaseTtlMs: number;
  /** The words of messages (a queue and its partitions); a service and its shards when absent. */
  readonly subject?: Subject;
}

/**
 * Ensure the group record exists and matches this replica's settings.
 *
 * A stored field that cannot be parsed (somebody wrote garbage into the
 * backend) is rewritten with this replica's value when every live member that
 * states its settings states the same ones, and reported through `repaired`;
 * otherwise this throws `InvalidRecordError`, naming the key, rather than let
 * one misconfigured replica overwrite what its peers run with.
 *
 * @throws ShardCountMismatchError, LeaseTtlMismatchError, InvalidRecordError
 */
export async function ensureGroup(
  discovery: Discovery,
  check: GroupCheck,
  repaired: (records: readonly InvalidRecord[]) => void,
): Promise<void> {
  const settings = { shardCount: check.shardCount, leaseTtlMs: check.leaseTtlMs };
  let stored: StoredGroup = await discovery.ensureGroup(check.service, settings);
  if (stored.invalid.length > 0) {
    const { members } = await discovery.snapshot(check.service);
    const disagree = members.filter(
      (m) =>
        (m.shardCount !== undefined && m.shardCount !== check.shardCount) ||
        (m.leaseTtlMs !== undefined && m.leaseTtlMs !== check.leaseTtlMs),
    );
    const first = stored.invalid[0] as InvalidRecord;
    if (disagree.length > 0) {
      const other = disagree[0];
      const count = check.subject?.countOption ?? 'shards';
      throw new InvalidRecordError(
        first.key,
        `${first.reason}; not rewritten, because live member ${other?.id} runs with ${count}: ${other?.shardCount}, ` +
          `leaseTtlMs: ${other?.leaseTtlMs} and this replica with ${count}: ${check.shardCount}, leaseTtlMs: ${check.leaseTtlMs}`,
      );
    }
    stored = await discovery.ensureGroup(check.service, settings, { replaceInvalid: true });
    if (stored.repaired.length > 0) repaired(stored.repaired);
  }
  if (stored.shardCount === undefined) {
    const bad = stored.invalid[0];
    throw new InvalidRecordError(bad?.key ?? `${check.service} group`, bad?.reason ?? 'the shard count is unreadable');
  }
  if (stored.shardCount !== check.shardCount) {
    throw new ShardCountMismatchError(check.service, stored.shardCount, check.shardCount, check.subject);
  }
  if (stored.leaseTtlMs !== undefined && stored.leaseTtlMs !== check.leaseTtlMs) {
    throw new LeaseTtlMismatchError(check.service, stored.leaseTtlMs, check.leaseTtlMs, check.subject);
  }
}
