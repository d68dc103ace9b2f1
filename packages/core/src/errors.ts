/**
 * Every error shardwork throws or reports. One base class with a string-literal
 * `code`, subclasses with readonly context, and {@link isRetryableError} as the
 * single predicate that the worker and the retry logic consult.
 *
 * @module
 */

import type { RevokeReason } from './shard-run.js';
import { capitalize, groupName, type Subject, unitRevokedMessage } from './subject.js';

/** The code carried by every {@link ShardworkError}. */
export type ShardworkErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_CRON'
  | 'INVALID_PARAMS'
  | 'INVALID_ASSIGNMENT'
  | 'SHARD_COUNT_MISMATCH'
  | 'LEASE_TTL_MISMATCH'
  | 'ILLEGAL_STATE'
  | 'LEASE_LOST'
  | 'LEASE_EXPIRED'
  | 'NOT_OWNER'
  | 'DISCOVERY_UNAVAILABLE'
  | 'BACKEND_REFUSED'
  | 'UNKNOWN_PROTOCOL'
  | 'INVALID_RECORD'
  | 'REVOKE_TIMEOUT'
  | 'ATTEMPTS_EXHAUSTED'
  | 'NON_RETRYABLE'
  | 'START_TIMEOUT'
  | 'SERVICE_RUNNING'
  | 'BACKEND_BINARY_MISSING';

/**
 * Base class of every error shardwork creates. Switch on {@link ShardworkError.code}.
 * Other packages extend the code union with their own codes:
 * `class JobsError extends ShardworkError<JobsErrorCode> {}`.
 */
export class ShardworkError<C extends string = ShardworkErrorCode> extends Error {
  /** Stable machine-readable code. */
  readonly code: C;
  /** Whether retrying the same operation later can succeed. */
  readonly retryable: boolean;

  constructor(code: C, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShardworkError';
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** An option passed to a constructor or factory is missing or out of range. */
export class InvalidOptionsError extends ShardworkError {
  /** Dotted path of the offending option, e.g. `retry.backoffCoefficient`. */
  readonly option: string;
  /** The value that was rejected. */
  readonly value: unknown;

  constructor(option: string, value: unknown, expectation: string) {
    super('INVALID_OPTIONS', `Invalid option "${option}": ${expectation} (got ${describe(value)})`);
    this.name = 'InvalidOptionsError';
    this.option = option;
    this.value = value;
  }
}

/** A cron expression or time zone that the schedule parser rejects. */
export class InvalidCronError extends ShardworkError {
  /** The rejected expression. */
  readonly expression: string;
  /** The rejected time zone, when one was given. */
  readonly timezone: string | undefined;

  constructor(expression: string, timezone: string | undefined, cause: unknown) {
    const tz = timezone === undefined ? '' : ` in time zone "${timezone}"`;
    super('INVALID_CRON', `Invalid cron expression "${expression}"${tz}: ${reason(cause)}`, {
      cause,
    });
    this.name = 'InvalidCronError';
    this.expression = expression;
    this.timezone = timezone;
  }
}

/** Per-shard parameters that cannot be parsed (`"0=a,1=b"`, an object or an array). */
export class InvalidParamsError extends ShardworkError {
  /** The input as given. */
  readonly input: unknown;

  constructor(input: unknown, problem: string) {
    super('INVALID_PARAMS', `Invalid shard parameters ${describe(input)}: ${problem}`);
    this.name = 'InvalidParamsError';
    this.input = input;
  }
}

/** A custom assignment strategy returned something that is not a valid assignment. */
export class InvalidAssignmentError extends ShardworkError {
  constructor(problem: string) {
    super('INVALID_ASSIGNMENT', `Invalid assignment from strategy: ${problem}`);
    this.name = 'InvalidAssignmentError';
  }
}

/** The service already exists in the backend with another lease TTL. */
export class LeaseTtlMismatchError extends ShardworkError {
  /** Service name. */
  readonly service: string;
  /** Lease TTL stored in the backend by the first replica, ms. */
  readonly expected: number;
  /** Lease TTL this replica was started with, ms. */
  readonly actual: number;

  /**
   * @param subject - the words of a worker run for a queue or the like (the
   *   `subject` option): the message then speaks of them; without it, of a service.
   */
  constructor(service: string, expected: number, actual: number, subject?: Subject) {
    super(
      'LEASE_TTL_MISMATCH',
      subject?.custom === true
        ? `${groupName(subject)} has leaseTtlMs: ${expected} in the discovery backend, but this replica was started with leaseTtlMs: ${actual}. ` +
            `Every ${subject.member} of ${subject.kind} "${subject.name}" must use the same leaseTtlMs; found ${expected} stored ` +
            `(a replica with a longer one could still act after a peer with a shorter one took its ${subject.units} over). ` +
            `To change it, stop every ${subject.member} of the ${subject.kind} or use a new ${subject.kind} name.`
        : `Service "${service}" has leaseTtlMs: ${expected} in the discovery backend, but this replica was started with leaseTtlMs: ${actual}. ` +
            'Every replica of a service must use the same lease TTL (a replica with a longer one could still act after a peer with a shorter one took its shards over); ' +
            'to change it, stop all replicas or use a new service name.',
    );
    this.name = 'LeaseTtlMismatchError';
    this.service = service;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The service already exists in the backend with another shard count. */
export class ShardCountMismatchError extends ShardworkError {
  /** Service name. */
  readonly service: string;
  /** Shard count stored in the backend by the first replica. */
  readonly expected: number;
  /** Shard count this replica was started with. */
  readonly actual: number;

  /**
   * @param subject - the words of a worker run for a queue or the like (the
   *   `subject` option): the message then speaks of them; without it, of a service.
   */
  constructor(service: string, expected: number, actual: number, subject?: Subject) {
    super(
      'SHARD_COUNT_MISMATCH',
      subject?.custom === true
        ? `${groupName(subject)} has ${expected} ${subject.units} in the discovery backend, but this replica was started with ${subject.countOption}: ${actual}. ` +
            `Every ${subject.member} of ${subject.kind} "${subject.name}" must use the same ${subject.countOption}; found ${expected} stored. ` +
            `To change it, stop every ${subject.member} of the ${subject.kind} and use a new ${subject.kind} name.`
        : `Service "${service}" has ${expected} shards in the discovery backend, but this replica was started with shards: ${actual}. ` +
            'Every replica of a service must use the same shard count; to change it, stop all replicas and use a new service name.',
    );
    this.name = 'ShardCountMismatchError';
    this.service = service;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A lifecycle method was called in a state that does not allow it. */
export class IllegalStateError extends ShardworkError {
  /** The state the object was in. */
  readonly state: string;
  /** The attempted operation. */
  readonly operation: string;

  constructor(operation: string, state: string) {
    super('ILLEGAL_STATE', `Cannot ${operation} while ${state}`);
    this.name = 'IllegalStateError';
    this.state = state;
    this.operation = operation;
  }
}

/**
 * This replica passed its self-fencing deadline without a successful lease
 * renewal (or the backend reported the lease gone): it no longer owns anything.
 * Reported through the `lease:lost` event; `ctx.assertOwned()` then throws
 * `NotOwnerError` for each shard.
 */
export class LeaseLostError extends ShardworkError {
  /** Member id whose lease was lost. */
  readonly memberId: string;

  /** @param cause - what made it so, when known (the last failed renewal). */
  constructor(memberId: string, detail: string, cause?: unknown) {
    super('LEASE_LOST', `Lease of member ${memberId} lost: ${detail}`, cause === undefined ? undefined : { cause });
    this.name = 'LeaseLostError';
    this.memberId = memberId;
  }
}

/** The backend no longer knows the member (its lease expired or was revoked). */
export class LeaseExpiredError extends ShardworkError {
  /** Member id the backend did not find. */
  readonly memberId: string;

  constructor(memberId: string) {
    super('LEASE_EXPIRED', `Member ${memberId} is not registered: its lease expired or was revoked`);
    this.name = 'LeaseExpiredError';
    this.memberId = memberId;
  }
}

/** A handler asserted ownership of a shard it no longer owns. */
export class NotOwnerError extends ShardworkError {
  /** The shard. */
  readonly shard: number;
  /** The fencing token of the ended ownership. */
  readonly token: number;

  /** @param subject - the `subject` option's words (`Partition 3 …`); without it, `Shard 3 …`. */
  constructor(shard: number, token: number, why: string, subject?: Subject) {
    const unit = subject?.custom === true ? capitalize(subject.unit) : 'Shard';
    super('NOT_OWNER', `${unit} ${shard} (token ${token}) is no longer owned by this replica: ${why}`);
    this.name = 'NotOwnerError';
    this.shard = shard;
    this.token = token;
  }
}

/** The discovery backend could not be reached or did not answer in time. Retryable. */
export class DiscoveryUnavailableError extends ShardworkError {
  /** Backend kind, e.g. `redis`. */
  readonly backend: string;

  constructor(backend: string, detail: string, cause?: unknown) {
    super('DISCOVERY_UNAVAILABLE', `Discovery backend ${backend} unavailable: ${detail}`, {
      cause,
      retryable: true,
    });
    this.name = 'DiscoveryUnavailableError';
    this.backend = backend;
  }
}

/**
 * Why a backend refused us: credentials, a missing permission, TLS, or a
 * setting of the URL the server does not have (`config`: a Redis database
 * number past its `databases`).
 */
export type RefusalReason = 'auth' | 'permission' | 'tls' | 'config';

/**
 * A backend refused us for a reason that retrying does not fix: wrong
 * credentials, a permission the ACL or role does not grant, a TLS
 * certificate that it or we reject, or a database it does not have. Never retryable; the message names the
 * backend, the cause and what to change.
 */
export class BackendRefusedError extends ShardworkError {
  /** Backend, e.g. `redis` or `etcd`, with its address when known. */
  readonly backend: string;
  /** What kind of refusal it was. */
  readonly reason: RefusalReason;

  constructor(backend: string, reason: RefusalReason, detail: string, cause?: unknown) {
    super('BACKEND_REFUSED', `${backend} refused the connection or command: ${detail}`, { cause, retryable: false });
    this.name = 'BackendRefusedError';
    this.backend = backend;
    this.reason = reason;
  }
}

/** No factory is registered for the protocol of a URL (a discovery backend, a job queue adapter). */
export class UnknownProtocolError extends ShardworkError {
  /** The protocol without the colon, e.g. `redis`. */
  readonly protocol: string;
  /** What the URL was for, e.g. `discovery backend` or `job queue adapter`. */
  readonly kind: string;

  constructor(kind: string, protocol: string, known: readonly string[], hint?: string, cause?: unknown) {
    super(
      'UNKNOWN_PROTOCOL',
      `No ${kind} registered for "${protocol}://" (registered: ${known.map((p) => `${p}://`).join(', ')}).` +
        (hint === undefined ? '' : ` ${hint}`),
      cause === undefined ? undefined : { cause },
    );
    this.name = 'UnknownProtocolError';
    this.protocol = protocol;
    this.kind = kind;
  }
}

/** A record in the backend that cannot be parsed. Reported, skipped, never fatal. */
export class InvalidRecordError extends ShardworkError {
  /** Backend key (or field) of the record. */
  readonly key: string;

  constructor(key: string, problem: string) {
    super('INVALID_RECORD', `Ignoring unparsable record ${key}: ${problem}`);
    this.name = 'InvalidRecordError';
    this.key = key;
  }
}

/** Why and for whom a {@link RevokeTimeoutError} is reported. */
export interface RevokeTimeoutContext {
  /** Why the shard was revoked. */
  readonly reason: RevokeReason;
  /** What revoked it (the signal's abort reason: a `NotOwnerError` or `LeaseLostError`). */
  readonly cause?: unknown;
  /** The worker's `subject` option: with a `handler`, the message names it and the cause. */
  readonly subject?: Subject;
}

/**
 * A revoked shard's handler did not settle within `revokeTimeoutMs`; its claim
 * was released anyway (or had gone with the lease). Without the `subject`
 * option the message is addressed to the author of the handler, as it always
 * was; with it, it names what runs the shard (`subject.handler`) and why the
 * shard was revoked, in the subject's words.
 */
export class RevokeTimeoutError extends ShardworkError {
  /** The shard. */
  readonly shard: number;
  /** The bound that was exceeded. */
  readonly timeoutMs: number;
  /** Why the shard was revoked, when known. */
  readonly reason: RevokeReason | undefined;

  constructor(shard: number, timeoutMs: number, context?: RevokeTimeoutContext) {
    const subject = context?.subject;
    const described = subject !== undefined && (subject.custom || subject.handler !== undefined);
    super(
      'REVOKE_TIMEOUT',
      described && context !== undefined
        ? unitRevokedMessage(subject, shard, timeoutMs, context.reason, revokeCause(context.cause))
        : `Handler of shard ${shard} did not stop within ${timeoutMs} ms after its signal aborted; ` +
            'the claim was released anyway and ctx.owned is false for it. Make the handler honour ctx.signal.',
      context?.cause === undefined ? undefined : { cause: context.cause },
    );
    this.name = 'RevokeTimeoutError';
    this.shard = shard;
    this.timeoutMs = timeoutMs;
    this.reason = context?.reason;
  }
}

/** What revoked a shard, for a message: the error's message, and the last renewal's failure for a lost lease. */
function revokeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  const renewal = cause instanceof LeaseLostError && cause.cause !== undefined ? `; ${reason(cause.cause)}` : '';
  return `${reason(cause)}${renewal}`;
}

/**
 * {@link Discovery.forgetService} was asked to remove the records of a
 * service that still has live members. Stop them first (or wait for their
 * leases to expire). Not retryable as such: retrying succeeds only once they are gone.
 */
export class ServiceRunningError extends ShardworkError {
  /** The service. */
  readonly service: string;
  /** Ids of the live members found. */
  readonly members: readonly string[];

  constructor(service: string, members: readonly string[]) {
    const shown = members.slice(0, 5).join(', ') + (members.length > 5 ? `, … (${members.length} in all)` : '');
    super(
      'SERVICE_RUNNING',
      `Service "${service}" still has ${members.length} live member(s) (${shown}); ` +
        'stop its replicas (or wait until their leases expire) before forgetting it.',
    );
    this.name = 'ServiceRunningError';
    this.service = service;
    this.members = [...members];
  }
}

/** A pipeline stage failed on every attempt the retry policy allowed. */
export class AttemptsExhaustedError extends ShardworkError {
  /** The stage that failed. */
  readonly stage: string;
  /** How many attempts were made. */
  readonly attempts: number;

  constructor(stage: string, attempts: number, cause: unknown) {
    super('ATTEMPTS_EXHAUSTED', `Stage "${stage}" failed after ${attempts} attempt(s): ${reason(cause)}`, {
      cause,
    });
    this.name = 'AttemptsExhaustedError';
    this.stage = stage;
    this.attempts = attempts;
  }
}

/**
 * Throw this from a handler stage to stop retrying it at once. The error still
 * reaches `onError`.
 */
export class NonRetryableError extends ShardworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRYABLE', message, options);
    this.name = 'NonRetryableError';
  }
}

/** `start()` gave up because the backend stayed unreachable for `startTimeoutMs`. */
export class StartTimeoutError extends ShardworkError {
  /** The bound that was exceeded. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number, cause: unknown) {
    super('START_TIMEOUT', `Worker could not start within ${timeoutMs} ms: ${reason(cause)}`, { cause });
    this.name = 'StartTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Whether an error is worth retrying: shardwork's own errors say so through
 * `retryable` (a {@link NonRetryableError} or {@link NotOwnerError} never is);
 * anything else (a user's error, a network error) counts as retryable.
 */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof ShardworkError) return error.retryable;
  return true;
}

/** Short, safe rendering of any value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
  if (typeof value === 'function') return 'a function';
  if (value === undefined || value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Message of an unknown thrown value. */
export function reason(error: unknown): string {
  return error instanceof Error ? error.message : describe(error);
}
