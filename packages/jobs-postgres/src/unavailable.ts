/**
 * Which failures of node-postgres mean "PostgreSQL cannot be reached right
 * now" (retried, and reported as `QueueUnavailableError`), as opposed to an
 * error of the statement itself (a bug or bad data: reported, not retried).
 *
 * @module
 */

import { QueueUnavailableError } from '@shardwork/jobs/adapter';

/** Socket errors of a connection that failed or was cut. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

/**
 * SQLSTATEs of a server that is going away or not ready: class 08
 * (connection exception), 57P01–57P03 (shut down, crash recovery, not
 * accepting connections yet), 53300 (too many connections).
 */
function unreachableState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

/** Whether `error` says the server cannot be reached now. */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof QueueUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || unreachableState(code))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
    error.message,
  );
}

/**
 * `error` as the adapter reports it: a `QueueUnavailableError` naming
 * `target` when the server cannot be reached (ambiguous: a statement sent
 * may have run), else the error itself.
 */
export function mapPostgresError(error: unknown, target: string): unknown {
  if (error instanceof QueueUnavailableError || !isUnreachable(error)) return error;
  return new QueueUnavailableError('postgres', `${target}: ${(error as Error).message}`, error, true);
}
