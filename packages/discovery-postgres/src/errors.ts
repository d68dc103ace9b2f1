/**
 * The errors of the PostgreSQL backend, and the one mapping of node-postgres
 * failures to the contract's errors: a server that cannot be reached now is
 * `DiscoveryUnavailableError` (the worker retries), credentials, a missing
 * database or permission and TLS failures are `BackendRefusedError` (never
 * retried; the message says what to change), anything else is a bug or bad
 * data and passes through unchanged.
 *
 * @module
 */

import { BackendRefusedError, DiscoveryUnavailableError, ShardworkError } from '@shardwork/core';
import { explainTlsError } from '@shardwork/core/backend';

/** The schema cannot be created or upgraded, or is newer than this package: nothing of the failed step was changed. */
export class SchemaMigrationError extends ShardworkError<'SCHEMA_MIGRATION'> {
  /** The schema. */
  readonly schema: string;
  /** The version the database is at, when known. */
  readonly current: number | undefined;

  constructor(schema: string, current: number | undefined, message: string, cause?: unknown) {
    super('SCHEMA_MIGRATION', message, cause === undefined ? undefined : { cause });
    this.name = 'SchemaMigrationError';
    this.schema = schema;
    this.current = current;
  }
}

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

/** Whether `error` says the server cannot be reached now (a statement sent may or may not have run). */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof DiscoveryUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || unreachableState(code))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable|Client was closed/i.test(
    error.message,
  );
}

/** The refusal `error` stands for, when it is one retrying does not fix. */
function refusal(error: unknown, target: string): BackendRefusedError | undefined {
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  const backend = `PostgreSQL at ${target}`;
  if (code === '28P01' || code === '28000') {
    return new BackendRefusedError(
      backend,
      'auth',
      `${message} (SQLSTATE ${code}): check the user and password of the URL (percent-encoded) or pg_hba.conf`,
      error,
    );
  }
  if (code === '3D000') {
    return new BackendRefusedError(backend, 'config', `${message}: create the database or fix the URL's path`, error);
  }
  if (code === '42501') {
    return new BackendRefusedError(
      backend,
      'permission',
      `${message}: the role needs CREATE on the database (for the schema) and USAGE, SELECT, INSERT, UPDATE, DELETE on the schema's tables and sequences; see the README`,
      error,
    );
  }
  const tls = explainTlsError(error);
  if (tls !== undefined) return new BackendRefusedError(backend, 'tls', `${tls} (${message})`, error);
  if (/does not support SSL|server does not support SSL connections/i.test(message)) {
    return new BackendRefusedError(
      backend,
      'tls',
      `${message}: the server does not accept TLS; drop sslmode or enable ssl on the server`,
      error,
    );
  }
  return undefined;
}

/**
 * `error` as the backend reports it: `DiscoveryUnavailableError` naming
 * `target` when the server cannot be reached, `BackendRefusedError` for a
 * refusal, else the error itself.
 */
export function mapPostgresError(error: unknown, target: string): unknown {
  if (error instanceof ShardworkError) return error;
  const refused = refusal(error, target);
  if (refused !== undefined) return refused;
  if (!isUnreachable(error)) return error;
  const message = (error as Error).message || String((error as { code?: unknown }).code);
  const hint =
    (error as { code?: unknown }).code === 'ECONNREFUSED'
      ? ' (nothing listens there: is PostgreSQL running, and are host and port of the URL right?)'
      : '';
  return new DiscoveryUnavailableError('postgres', `${target}: ${message}${hint}`, error);
}
