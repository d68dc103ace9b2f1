/**
 * Errors of the RabbitMQ job adapter. Unreachable brokers are the job layer's
 * `QueueUnavailableError` (retryable); a refusal that retrying will not fix is
 * {@link AmqpRefusedError}.
 *
 * @module
 */

import { errorMessage, ShardworkError } from '@shardwork/core';

/** The broker refused an operation for a reason retrying will not fix (a queue declared with other arguments, a permission). */
export class AmqpRefusedError extends ShardworkError<'AMQP_REFUSED'> {
  constructor(what: string, cause: unknown) {
    super('AMQP_REFUSED', `RabbitMQ refused ${what}: ${errorMessage(cause)}`, { cause });
    this.name = 'AmqpRefusedError';
  }
}

/** Broker reply codes that retrying does not fix. */
export const REFUSALS: ReadonlySet<string> = new Set([
  'PRECONDITION_FAILED',
  'ACCESS_REFUSED',
  'NOT_ALLOWED',
  'RESOURCE_LOCKED',
  'NOT_FOUND',
]);
