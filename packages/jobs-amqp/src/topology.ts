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
 * - `p.delay.<ms>`: tier queues with a queue TTL of `2^k` ms that dead-letter
 *   to the exchange `p.due`, which routes each message back to its work queue;
 *   published to through the headers exchange `p.delay`;
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

/** Header that routes a delayed message to its tier through the headers exchange (`x-` headers are not matched). */
export const TIER_HEADER = 'sw-tier';
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

  get delayExchange(): string {
    return `${this.prefix}.delay`;
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

  tierQueue(ms: number): string {
    return `${this.prefix}.delay.${ms}`;
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
   * least once, to `p.due` with its original routing key: its work queue.
   */
  tierArguments(ms: number): QueueArguments {
    return {
      'x-queue-type': 'quorum',
      'x-message-ttl': ms,
      'x-dead-letter-exchange': this.dueExchange,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    };
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
 * The tier for a job due in `remainingMs`: the largest power of two not above
 * it (the job then comes back with less than half to go, and is sent on to the
 * next tier), or the 1 ms tier. A job never runs before its time; it runs late
 * by the broker's expiry precision, measured in docs/benchmarks.md.
 */
export function tierFor(remainingMs: number): number {
  if (remainingMs <= 1) return 2 ** MIN_TIER;
  const exponent = Math.min(MAX_TIER, Math.floor(Math.log2(remainingMs)));
  return 2 ** Math.max(MIN_TIER, exponent);
}
