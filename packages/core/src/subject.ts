/**
 * What a worker's service, shards and handler are to the people who read its
 * messages. An application's worker speaks of a service, its shards and "the
 * handler" (the application's own code), and that is the default. A library
 * that runs a worker on its users' behalf says what it runs instead: a job
 * adapter runs one worker per queue, whose shards are the queue's partitions
 * and whose handler is the adapter's own partition consumer, so a shard-count
 * mismatch then names the queue and its partitions, and a handler that did not
 * stop in time is named as the adapter's consumer, with the cause, instead of
 * telling the adapter's users to fix "the handler".
 *
 * Only words live here (no imports at run time, so `errors.ts` can use them);
 * `compileOptions()` validates the option.
 *
 * @module
 */

import type { RevokeReason } from './shard-run.js';

/**
 * The `subject` option of a worker: the words its messages use. Every field
 * is optional; leaving the option out keeps the wording of a plain service.
 *
 * ```ts
 * // What @shardwork/jobs-redis passes for queue "default":
 * subject: {
 *   kind: 'queue', name: 'default', unit: 'partition', member: 'producer and consumer',
 *   countOption: 'partitions',
 *   handler: (p) => `the redis job adapter's consumer of partition ${p} of queue "default"`,
 * }
 * ```
 */
export interface WorkerSubject {
  /** What the service is, e.g. `'queue'`. @defaultValue `'service'` */
  readonly kind?: string;
  /**
   * Its name as your users know it, e.g. the queue name when the service
   * name is derived from it. @defaultValue the `service` option
   */
  readonly name?: string;
  /** What one shard is, e.g. `'partition'`. @defaultValue `'shard'` */
  readonly unit?: string;
  /** The plural of `unit`. @defaultValue `unit` + `'s'` */
  readonly units?: string;
  /**
   * Who must agree on the shard count and lease TTL, singular, e.g.
   * `'producer and consumer'`. @defaultValue `'replica'`
   */
  readonly member?: string;
  /** The option your users set the shard count with, e.g. `'partitions'`. @defaultValue `'shards'` */
  readonly countOption?: string;
  /**
   * What runs shard `shard`, for messages about it (a revoke timeout, a
   * failing stage), e.g. `` (p) => `the redis job adapter's consumer of partition ${p} of queue "default"` ``.
   * Set it when the handler is not your users' code: messages then name it
   * and the cause, and stop telling the reader to make "the handler" honour
   * `ctx.signal`.
   * @defaultValue the handler, your users' code (`Handler of shard 3`)
   */
  readonly handler?: (shard: number) => string;
  /**
   * What a reader should do when the handler did not stop within
   * `revokeTimeoutMs`, appended to that message.
   * @defaultValue `'Make the handler honour ctx.signal.'`, or nothing when `handler` is set
   */
  readonly revokeTimeoutAdvice?: string;
}

/** {@link WorkerSubject} after validation, with every default filled in. */
export interface Subject {
  readonly kind: string;
  readonly name: string;
  readonly unit: string;
  readonly units: string;
  readonly member: string;
  readonly countOption: string;
  /** What runs a shard; `undefined`: the users' own handler (today's wording). */
  readonly handler: ((shard: number) => string) | undefined;
  readonly revokeTimeoutAdvice: string;
  /** Some word differs from a plain service's: messages about the group use the words. */
  readonly custom: boolean;
  /** Prefix of the lines the worker prints when nobody listens, e.g. `[shardwork billing-sync]`. */
  readonly tag: string;
}

/** `text` with its first letter in upper case (a description that opens a sentence). */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** What runs `shard`, for a message: the subject's description, or `the handler of shard 3`. */
export function handlerOf(subject: Subject, shard: number): string {
  try {
    const described = subject.handler?.(shard);
    if (typeof described === 'string' && described !== '') return described;
  } catch {
    // A throwing description must not hide the message it was asked for.
  }
  return `the handler of ${subject.unit} ${shard}`;
}

/** `Queue "default"`: the kind and name of a subject, opening a sentence. */
export function groupName(subject: Subject): string {
  return `${capitalize(subject.kind)} "${subject.name}"`;
}

/**
 * The message of a revoke timeout for a described handler: what runs the
 * shard, why it was revoked (`cause`: what revoked it), and what follows.
 */
export function unitRevokedMessage(
  subject: Subject,
  shard: number,
  timeoutMs: number,
  reason: RevokeReason,
  cause: string | undefined,
): string {
  const by = cause === undefined ? '' : `: ${cause}`;
  const why = {
    rebalance: 'the assignment moved it to another replica',
    stop: 'this replica is stopping',
    'claim-lost': `its claim was lost${by}`,
    'lease-lost': `this replica's lease was lost${by}`,
  }[reason];
  const after =
    reason === 'rebalance' || reason === 'stop'
      ? 'the claim was released anyway and ctx.owned is false for it.'
      : 'ctx.owned has been false for it since.';
  const advice = subject.revokeTimeoutAdvice === '' ? '' : ` ${subject.revokeTimeoutAdvice}`;
  return (
    `${capitalize(handlerOf(subject, shard))} did not stop within ${timeoutMs} ms after ${subject.unit} ${shard} ` +
    `was revoked (${why}); ${after}${advice}`
  );
}
