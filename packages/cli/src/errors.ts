/**
 * Errors of the CLI. Each carries the process exit code it maps to, so that
 * `main()` turns any failure into one message line and one exit code.
 *
 * @module
 */

/** Exit codes of the `shardwork` command. */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** Usage error or bad input (unknown option, malformed URL, bad JSON). */
  usage: 1,
  /** A backend (discovery or job store) could not be reached in time, or refused us (credentials, ACL, TLS). */
  unavailable: 2,
  /** `status`: a service has shards nobody owns. */
  degraded: 3,
  /** The named job (or service) does not exist. */
  notFound: 4,
  /**
   * `status <service>`: a named service is stopped (its records are there, no
   * member runs it). Without names a stopped service does not change the code.
   */
  stopped: 5,
  /** `services forget`: refused, the service still has live members. */
  running: 6,
  /** `jobs wait`: the job went dead or was cancelled. */
  jobFailed: 7,
  /** `jobs wait`: the job had not finished within `--within`. */
  waitTimeout: 8,
} as const;

/** One of the values of {@link EXIT}. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** String codes of {@link CliError}. */
export type CliErrorCode =
  | 'CLI_USAGE'
  | 'CLI_BACKEND_UNAVAILABLE'
  | 'CLI_NOT_FOUND'
  | 'CLI_SERVICE_RUNNING'
  | 'CLI_JOB_FAILED'
  | 'CLI_WAIT_TIMEOUT';

/** Base class of the CLI's own errors. */
export class CliError extends Error {
  /** Machine-readable code. */
  readonly code: CliErrorCode;
  /** Process exit code this error ends the command with. */
  readonly exitCode: ExitCode;

  constructor(code: CliErrorCode, exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad input on the command line (exit 1). */
export class UsageError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLI_USAGE', EXIT.usage, message, options);
    this.name = 'UsageError';
  }
}

/** A backend did not answer or refused the connection (exit 2). */
export class BackendUnavailableError extends CliError {
  /** The backend URL (password redacted). */
  readonly target: string;

  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super('CLI_BACKEND_UNAVAILABLE', EXIT.unavailable, message, options);
    this.name = 'BackendUnavailableError';
    this.target = target;
  }
}

/** The named job or service does not exist (exit 4). */
export class NotFoundError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLI_NOT_FOUND', EXIT.notFound, message, options);
    this.name = 'NotFoundError';
  }
}

/**
 * `services forget` refused: the service still has live members (exit 6), so
 * its records are not removed. Retrying succeeds once they are gone.
 */
export class ServiceStillRunningError extends CliError {
  /** The service. */
  readonly service: string;
  /** Ids of its live members (draining ones included). */
  readonly members: readonly string[];

  constructor(service: string, members: readonly string[], message: string, options?: { cause?: unknown }) {
    super('CLI_SERVICE_RUNNING', EXIT.running, message, options);
    this.name = 'ServiceStillRunningError';
    this.service = service;
    this.members = [...members];
  }
}

/** `jobs wait`: the job went dead or was cancelled (exit 7); the message says which, and why. */
export class JobFailedError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLI_JOB_FAILED', EXIT.jobFailed, message, options);
    this.name = 'JobFailedError';
  }
}

/** `jobs wait`: the job had not finished within `--within` (exit 8); it goes on. */
export class WaitTimeoutError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLI_WAIT_TIMEOUT', EXIT.waitTimeout, message, options);
    this.name = 'WaitTimeoutError';
  }
}
