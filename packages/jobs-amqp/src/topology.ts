/**
 * Names and arguments of everything the adapter declares on the broker, and
 * the choice of delay tier. One place, so that producers and consumers of any
 * version declare the same queues with the same arguments (RabbitMQ refuses a
 * second declaration that differs, and we report that as it is).
 *
 * Under a prefix `p`:
 * - `p.q.<queue>.<handler>`: work queue of one handler (plain mode), or
 *   `p.q.<queue>.p<n>`: partition queue `n` (partitioned mode, single active consumer);
 * - `p.dead.<queue>`: dead jobs of a queue, with their last error;
 * - `p.wait.<ms>`: the delay chain, `ms` = `2^k`. A delayed job carries its
 *   delay in binary, one header per tier (`sw-wait-<ms>`: `1` or `0`). The
 *   headers exchange `p.wait.<ms>` sends it into the tier queue `p.wait.<ms>`
 *   (a queue TTL of `ms`) if its digit is 1, else straight on to the exchange
 *   of the next smaller tier; a tier queue dead-letters to that exchange too,
 *   and the 1 ms tier to `p.due`, which routes each message to its work queue.
 *   So a job due in `d` ms is published once, to the exchange of the largest
 *   tier not above `d`, and moves tier to tier inside the broker (at-least-once
 *   dead-lettering) until it is due: no consumer touches it on the way, so a
 *   consumer's fault cannot duplicate it there;
 * - `p.delay.<ms>` and the exchange `p.delay`: the tiers of earlier versions
 *   (each dead-lettered to `p.due` straight away); no longer published to, and
 *   what they still hold reaches its work queue as before;
 * - `p.cron.lock` (single active consumer: whoever holds its token enqueues the
 *   ticks), `p.cron.last.<name>` (the newest tick of a periodic job) and the
 *   exchange `p.cron` that routes a tick's job to its work queue and its last-tick queue at once.
 *
 * @module
 */

/** Queue arguments as RabbitMQ takes them. */
export type QueueArguments = Record<string, string | number | boolean>;

/** The smallest and largest delay tier exponent: 1 ms … 2^35 ms (about 397 days). */
const MIN_TIER = 0;
const MAX_TIER = 35;
const MIN_TIER_MS = 2 ** MIN_TIER;

/** Header of a delayed message with its digit for tier `ms` (`x-` headers would not be matched by a headers exchange). */
export function tierDigitHeader(ms: number): string {
  return `sw-wait-${ms}`;
}
/** Header of a cron message with its tick, ms since the epoch. */
export const TICK_HEADER = 'sw-tick';

/** The names under one prefix. */
export class Topology {
  readonly prefix: string;
  readonly deliveryLimit: number;

  constructor(prefix: string, deliveryLimit: number) {
    this.prefix = prefix;
    this.deliveryLimit = deliveryLimit;
  }

  /** Work queue of a handler in plain mode. */
  handlerQueue(queue: string, handler: string): string {
    return `${this.prefix}.q.${queue}.${handler}`;
  }

  /** Partition queue in partitioned mode. */
  partitionQueue(queue: string, partition: number): string {
    return `${this.prefix}.q.${queue}.p${partition}`;
  }

  /** Dead queue of a job queue. */
  deadQueue(queue: string): string {
    return `${this.prefix}.dead.${queue}`;
  }

  /** Coordinator service name of a queue's partitions. */
  service(queue: string): string {
    return `${this.prefix}.${queue}`;
  }

  get dueExchange(): string {
    return `${this.prefix}.due`;
  }

  get deadExchange(): string {
    return `${this.prefix}.dead`;
  }

  get cronExchange(): string {
    return `${this.prefix}.cron`;
  }

  get cronLock(): string {
    return `${this.prefix}.cron.lock`;
  }

  cronLast(name: string): string {
    return `${this.prefix}.cron.last.${name}`;
  }

  /** Tier queue of the delay chain: every message waits `ms` in it. */
  tierQueue(ms: number): string {
    return `${this.prefix}.wait.${ms}`;
  }

  /** Exchange of tier `ms` in the delay chain: into its tier queue, or on to the next smaller tier. */
  tierExchange(ms: number): string {
    return `${this.prefix}.wait.${ms}`;
  }

  /** Where a message goes after tier `ms`: the next smaller tier's exchange, or `p.due` after the 1 ms tier. */
  afterTier(ms: number): string {
    return ms <= MIN_TIER_MS ? this.dueExchange : this.tierExchange(ms / 2);
  }

  /**
   * A work or partition queue: a durable quorum queue with an explicit
   * delivery limit (RabbitMQ 3.10 has none by default, 4.x has 20), whose
   * messages over the limit are dead-lettered at least once to the dead queue.
   */
  workArguments(queue: string, singleActive: boolean): QueueArguments {
    return {
      'x-queue-type': 'quorum',
      'x-delivery-limit': this.deliveryLimit,
      'x-dead-letter-exchange': this.deadExchange,
      'x-dead-letter-routing-key': this.deadQueue(queue),
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
      ...(singleActive ? { 'x-single-active-consumer': true } : {}),
    };
  }

  /** The dead queue: quorum, no delivery limit of its own to speak of (it is only read by people). */
  deadArguments(): QueueArguments {
    return { 'x-queue-type': 'quorum', 'x-delivery-limit': 1_000_000 };
  }

  /**
   * A tier queue: every message expires after the tier's TTL (one TTL per
   * queue, so the head is always the first to expire) and is dead-lettered, at
   * least once, to the next tier's exchange (or `p.due`) with its original
   * routing key: its work queue.
   */
  tierArguments(ms: number): QueueArguments {
    return {
      'x-queue-type': 'quorum',
      'x-message-ttl': ms,
      'x-dead-letter-exchange': this.afterTier(ms),
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    };
  }

  /** Binding of tier `ms`'s exchange: into its queue (`digit` 1) or on to the next tier (`digit` 0). */
  tierBinding(ms: number, digit: 0 | 1): QueueArguments {
    return { 'x-match': 'all', [tierDigitHeader(ms)]: String(digit) };
  }

  /** The cron lock: a single active consumer holds its token. */
  lockArguments(): QueueArguments {
    return { 'x-queue-type': 'quorum', 'x-single-active-consumer': true, 'x-delivery-limit': 1_000_000 };
  }

  /** A last-tick queue keeps only its newest message. */
  lastTickArguments(): QueueArguments {
    return { 'x-queue-type': 'quorum', 'x-max-length': 1, 'x-overflow': 'drop-head', 'x-delivery-limit': 1_000_000 };
  }
}

/**
 * The largest tier of a delay of `remainingMs`: the largest power of two not
 * above it (at most 2^35 ms, about 397 days), or the 1 ms tier. A delayed job
 * is published to this tier's exchange.
 */
export function tierFor(remainingMs: number): number {
  if (remainingMs <= 1) return MIN_TIER_MS;
  const exponent = Math.min(MAX_TIER, Math.floor(Math.log2(remainingMs)));
  return 2 ** Math.max(MIN_TIER, exponent);
}

/**
 * How a job due in `remainingMs` crosses the delay chain: the tier it enters
 * (see {@link tierFor}) and its digit for that tier and every smaller one, so
 * that the tiers with digit 1 add up to the delay (capped at the whole chain,
 * about 795 days; a job due later comes back early and is sent round again).
 * It never runs before its time; it runs late by the broker's expiry precision
 * at each tier it waits in.
 */
export function delayRoute(remainingMs: number): DelayRoute {
  const top = tierFor(remainingMs);
  let left = Math.min(Math.max(MIN_TIER_MS, Math.floor(remainingMs)), 2 * 2 ** MAX_TIER - 1);
  const tiers: number[] = [];
  const headers: Record<string, string> = {};
  for (let ms = top; ms >= MIN_TIER_MS; ms /= 2) {
    const digit = left >= ms ? 1 : 0;
    left -= digit * ms;
    if (digit === 1) tiers.push(ms);
    headers[tierDigitHeader(ms)] = String(digit);
  }
  return { top, tiers, headers };
}

/** See {@link delayRoute}. */
export interface DelayRoute {
  /** The tier whose exchange the job is published to. */
  readonly top: number;
  /** The tiers it waits in (digit 1), largest first; they add up to the delay. */
  readonly tiers: readonly number[];
  /** Its digit for `top` and every smaller tier, as message headers. */
  readonly headers: Readonly<Record<string, string>>;
}
