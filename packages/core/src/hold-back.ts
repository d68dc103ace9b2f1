/**
 * When a replica claims nothing for a while, and why: the rule lives here,
 * in one place. A backend that can lose all its data (Redis without
 * persistence, a memory store after `reset()`) cannot tell a new service
 * from one whose records it lost while replicas still held shards: those
 * replicas act on their old leases until their own deadlines, up to one
 * lease TTL after their last renewal. So a replica claims nothing while the
 * group record is younger than one TTL, and nothing for one TTL after the
 * backend forgot its lease early. That is what keeps at most one owner per
 * shard across a data loss. {@link HoldBack} keeps the resulting deadline
 * (the resolver asks it before claiming) and says so through the worker's
 * `claims:held-back` event (or a warning when nobody listens), so that the
 * first start of a new service is not ten silent seconds.
 *
 * @module
 */

import type { Clock } from './clock.js';

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

/** What a {@link HoldBack} needs. */
export interface HoldBackHost {
  readonly clock: Clock;
  readonly leaseTtlMs: number;
  /** The words of its messages. */
  readonly words: HoldBackWords;
  /** A new hold-back, or one moved markedly later: tell the user. */
  told(event: ClaimsHeldBack): void;
}

/** A lease, as far as the rule is concerned (see `Lease`). */
export interface FollowedLease {
  /** Aborts when the lease ends. */
  readonly signal: AbortSignal;
  /** `lost` once it is lost (self-fenced or forgotten by the backend). */
  readonly state: string;
  /** Monotonic time until which the lease cannot have expired in the backend. */
  readonly deadline: number;
}

/** The hold-back of one replica: until when it claims nothing, and why. */
export class HoldBack {
  readonly #host: HoldBackHost;
  /** Monotonic time before which this replica must not claim. */
  #until = Number.NEGATIVE_INFINITY;
  /** The last hold-back told. */
  #told: { reason: HoldBackReason; until: number } | undefined;

  constructor(host: HoldBackHost) {
    this.#host = host;
  }

  /** Ms until claims may be made again; zero or less when they may now. */
  remainingMs(): number {
    return this.#until - this.#host.clock.now();
  }

  /**
   * Follow a new lease until it ends. Lost before its own deadline, it cannot
   * have expired: the backend forgot it (it lost its data, e.g. Redis
   * restarted empty). Every other replica's lease from before the loss ends
   * within one TTL on its own clock, and until then its owner may still act:
   * claim nothing before that. (Followed from registration on, this hears of
   * the end before any work under the lease does.)
   */
  follow(lease: FollowedLease): void {
    const ended = (): void => {
      const now = this.#host.clock.now();
      if (lease.state === 'lost' && now < lease.deadline) this.#hold(now + this.#host.leaseTtlMs, 'data-loss');
    };
    lease.signal.addEventListener('abort', ended, { once: true });
  }

  /**
   * A listing read the group record, `groupAgeMs` old by the backend's clock
   * (`undefined` from a backend that cannot lose its data). A young group in
   * a backend that can lose data may be a recreated one, with owners from
   * before the loss still inside their leases: claim nothing until it is one TTL old.
   */
  groupListed(groupAgeMs: number | undefined): void {
    const ttl = this.#host.leaseTtlMs;
    if (groupAgeMs === undefined || groupAgeMs >= ttl) return;
    this.#hold(this.#host.clock.now() + ttl - groupAgeMs, 'young-group', groupAgeMs);
  }

  /**
   * Claim nothing before monotonic time `until`. Each new hold-back is told,
   * and one moved later by more than a tenth of the TTL (a young group's
   * end, recomputed at every listing, jitters by a round trip).
   */
  #hold(until: number, reason: HoldBackReason, groupAgeMs?: number): void {
    if (until <= this.#until) return;
    const { clock, leaseTtlMs, words } = this.#host;
    const now = clock.now();
    const told = this.#told;
    this.#until = until;
    const news =
      told === undefined || told.until <= now || told.reason !== reason || until - told.until > leaseTtlMs / 10;
    if (!news) return;
    this.#told = { reason, until };
    const waitMs = Math.max(0, until - now);
    const untilMs = Date.now() + waitMs;
    const message = holdBackMessage(words, reason, waitMs, untilMs, groupAgeMs);
    this.#host.told({ reason, untilMs, waitMs, groupAgeMs, message });
  }
}
