/**
 * Why a replica claims nothing for a while, in words. A backend that can lose
 * all its data (Redis without persistence, a memory store after `reset()`)
 * cannot tell a new service from one whose records it lost while replicas
 * still held shards: those replicas act on their old leases until their own
 * deadlines, up to one lease TTL after their last renewal. So a replica claims
 * nothing while the group record is younger than one TTL, and nothing for one
 * TTL after the backend forgot its lease early. That is what keeps at most one
 * owner per shard across a data loss; this module only says so, through the
 * worker's `claims:held-back` event (or a warning when nobody listens), so
 * that the first start of a new service is not ten silent seconds.
 *
 * @module
 */

/**
 * - `young-group`: the group record is younger than one lease TTL; the
 *   backend cannot tell a new service from one whose data it lost;
 * - `data-loss`: the backend forgot this replica's lease before it could have
 *   expired: it lost its data (or somebody removed the member by hand), and
 *   replicas from before a loss may act on their old leases for up to one TTL.
 */
export type HoldBackReason = 'young-group' | 'data-loss';

/** Payload of the worker's `claims:held-back` event. */
export interface ClaimsHeldBack {
  readonly reason: HoldBackReason;
  /** Wall-clock time (ms since the epoch) until which this replica claims nothing. */
  readonly untilMs: number;
  /** How long that is from now, ms. */
  readonly waitMs: number;
  /** Age of the group record by the backend's clock, for `young-group`. */
  readonly groupAgeMs: number | undefined;
  /** The same in words, for a log line. */
  readonly message: string;
}

/** What a hold-back is about, for its message. */
export interface HoldBackWords {
  /** Backend kind, e.g. `redis`. */
  readonly backend: string;
  /** `service`, or the `subject` option's kind (`queue`). */
  readonly kind: string;
  /** `shards`, or the `subject` option's units (`partitions`). */
  readonly units: string;
  readonly leaseTtlMs: number;
}

/** The message of a {@link ClaimsHeldBack}. */
export function holdBackMessage(
  words: HoldBackWords,
  reason: HoldBackReason,
  waitMs: number,
  untilMs: number,
  groupAgeMs: number | undefined,
): string {
  const until = `claiming no ${words.units} for ${Math.ceil(waitMs)} ms (until ${new Date(untilMs).toISOString()})`;
  if (reason === 'data-loss') {
    return (
      `${until}: the ${words.backend} backend no longer knows this replica's lease although it cannot have expired yet ` +
      '(the backend lost its data, or somebody removed this member by hand); ' +
      `replicas from before a loss may still act on their leases for up to leaseTtlMs (${words.leaseTtlMs} ms).`
    );
  }
  const age = groupAgeMs === undefined ? '' : ` is ${Math.round(groupAgeMs)} ms old:`;
  return (
    `${until}: the group record of this ${words.kind}${age === '' ? ' is new:' : age} ` +
    `the ${words.backend} backend cannot tell a new ${words.kind} from one whose data it lost while replicas still held ${words.units}, ` +
    `so the first claims wait until the record is leaseTtlMs (${words.leaseTtlMs} ms) old. ` +
    'This happens once per new group; listen to "claims:held-back" to log it your way.'
  );
}
