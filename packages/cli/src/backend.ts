/**
 * Connecting to the backends with a deadline on every call, and mapping the
 * backends' errors to the CLI's exit codes.
 *
 * @module
 */

import {
  BackendRefusedError,
  createDiscovery,
  type Discovery,
  DiscoveryUnavailableError,
  errorMessage,
  InvalidOptionsError,
  parseDiscoveryUrl,
  redactUrl,
  ServiceRunningError,
  UnknownProtocolError,
} from '@shardwork/core';
import {
  createJobQueue,
  InvalidJobArgsError,
  InvalidJobError,
  JobNotFoundError,
  type JobQueue,
  JobStateError,
  parseJobQueueUrl,
  QueueUnavailableError,
  UnknownHandlerError,
  UnsupportedFeatureError,
} from '@shardwork/jobs';
import { BackendUnavailableError, CliError, NotFoundError, ServiceStillRunningError, UsageError } from './errors.js';

/** `redis://user:secret@h` -> `redis://user:***@h`: URLs end up in error messages and logs. */
export const redact: (url: string) => string = redactUrl;

/**
 * Settle with `promise`, or reject with {@link BackendUnavailableError} after
 * `ms`: a backend that accepts the connection but never answers (or a client
 * that retries forever) must not hang the command.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, target: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BackendUnavailableError(target, `${target} did not answer within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Map a backend error to a {@link CliError}; `target` names the backend in the message. */
export function toCliError(error: unknown, target: string): unknown {
  if (error instanceof CliError) return error;
  if (error instanceof DiscoveryUnavailableError || error instanceof QueueUnavailableError) {
    return new BackendUnavailableError(target, `${target} unreachable: ${errorMessage(error)}`, { cause: error });
  }
  if (error instanceof BackendRefusedError) {
    // Credentials, ACL or TLS: the backend is there but refuses us; the message says what to change.
    return new BackendUnavailableError(target, `${target}: ${errorMessage(error)}`, { cause: error });
  }
  if (error instanceof ServiceRunningError) {
    return new ServiceStillRunningError(error.service, error.members, error.message, { cause: error });
  }
  if (error instanceof JobNotFoundError) return new NotFoundError(error.message, { cause: error });
  // A handler nobody registered is not there, like a job id that is not there.
  if (error instanceof UnknownHandlerError) return new NotFoundError(error.message, { cause: error });
  if (
    error instanceof InvalidOptionsError ||
    error instanceof UnknownProtocolError ||
    error instanceof InvalidJobError ||
    error instanceof InvalidJobArgsError ||
    error instanceof JobStateError ||
    error instanceof UnsupportedFeatureError
  ) {
    return new UsageError(error.message, { cause: error });
  }
  return error;
}

/** Where a backend URL came from, as the messages name it. */
export interface UrlSource {
  /** The command-line option, e.g. `--jobs`. */
  readonly option: string;
  /** The environment variable, e.g. `SHARDWORK_JOBS`. */
  readonly env: string;
  /** Whether the URL came from the environment rather than the option. */
  readonly fromEnv: boolean;
}

const SHARED_EXAMPLE: Record<'discovery' | 'jobs', string> = {
  discovery: '--discovery redis://127.0.0.1:6379 or --discovery etcd://127.0.0.1:2379',
  jobs: "--jobs 'redis://127.0.0.1:6379?prefix=app:'",
};

/**
 * Refuse an in-process `memory://` store (exit 1). It lives inside the one
 * process that created it, so this separate process could only ever show its
 * own, empty store: "no services" or "0 dead jobs" with exit 0 would be a
 * wrong answer that looks right, and an enqueued job would vanish when the
 * command exits.
 */
export function refuseInProcessStore(url: string, what: 'discovery' | 'jobs', source: UrlSource): void {
  if (!/^\s*memory:/i.test(url)) return;
  const given = source.fromEnv ? `${source.env}=${redact(url)}` : `${source.option} ${redact(url)}`;
  const empty =
    what === 'discovery'
      ? 'an empty store of its own (no services)'
      : 'an empty store of its own (and lose any job enqueued into it)';
  const users = what === 'discovery' ? 'register with' : 'consume from';
  throw new UsageError(
    `${given} is an in-process store: it lives inside the one process that created it, so this separate shardwork process would only ever see ${empty}. ` +
      `Use the shared backend your workers ${users}, e.g. ${SHARED_EXAMPLE[what]} (or set ${source.env}).`,
  );
}

/** A discovery connection whose calls each have a deadline and CLI errors. */
export interface DiscoveryClient {
  /** The URL, password redacted, as used in messages. */
  readonly target: string;
  /** Run `fn` against the connection within the timeout. */
  call<T>(fn: (discovery: Discovery) => Promise<T>): Promise<T>;
  /** Close the connection (bounded by the timeout, errors ignored). */
  close(): Promise<void>;
}

/**
 * Validate a discovery URL (exit 1 on a bad one or on `memory://`) and connect lazily.
 * @param fromEnv - the URL came from `SHARDWORK_DISCOVERY` (named in messages).
 */
export function openDiscovery(url: string | undefined, timeoutMs: number, fromEnv = false): DiscoveryClient {
  if (url === undefined || url === '') {
    throw new UsageError('No discovery backend: pass --discovery <url> or set SHARDWORK_DISCOVERY');
  }
  refuseInProcessStore(url, 'discovery', { option: '--discovery', env: 'SHARDWORK_DISCOVERY', fromEnv });
  const target = `discovery ${redact(url)}`;
  try {
    parseDiscoveryUrl(url);
  } catch (error) {
    throw new UsageError(`Invalid --discovery ${redact(url)}: ${errorMessage(error)}`, { cause: error });
  }
  let connection: Promise<Discovery> | undefined;
  const connect = (): Promise<Discovery> => {
    connection ??= createDiscovery(url);
    return connection;
  };
  return {
    target,
    async call(fn) {
      try {
        return await withTimeout(
          connect().then((d) => fn(d)),
          timeoutMs,
          target,
        );
      } catch (error) {
        throw toCliError(error, target);
      }
    },
    async close() {
      if (connection === undefined) return;
      await withTimeout(
        connection.then((d) => d.close()),
        timeoutMs,
        target,
      ).catch(() => undefined);
    },
  };
}

/** A job queue used only for administration (never started). */
export interface JobsClient {
  /** The URL, password redacted, as used in messages. */
  readonly target: string;
  /** Run `fn` against the queue within the timeout. */
  call<T>(fn: (queue: JobQueue) => Promise<T>, timeoutMs?: number): Promise<T>;
  /** Release the connections (bounded by the timeout, errors ignored). */
  close(): Promise<void>;
}

/**
 * Validate a job store URL (exit 1 on a bad one or on `memory://`) and create the queue without starting it.
 * @param fromEnv - the URL came from `SHARDWORK_JOBS` (named in messages).
 */
export function openJobs(url: string | undefined, timeoutMs: number, fromEnv = false): JobsClient {
  if (url === undefined || url === '') {
    throw new UsageError('No job store: pass --jobs <url> or set SHARDWORK_JOBS');
  }
  refuseInProcessStore(url, 'jobs', { option: '--jobs', env: 'SHARDWORK_JOBS', fromEnv });
  const target = `job store ${redact(url)}`;
  let queue: JobQueue;
  try {
    parseJobQueueUrl(url);
    queue = createJobQueue(url);
  } catch (error) {
    throw new UsageError(`Invalid --jobs ${redact(url)}: ${errorMessage(error)}`, { cause: error });
  }
  return {
    target,
    async call(fn, ms = timeoutMs) {
      try {
        return await withTimeout(fn(queue), ms, target);
      } catch (error) {
        throw toCliError(error, target);
      }
    },
    async close() {
      await withTimeout(queue.stop(), timeoutMs, target).catch(() => undefined);
    },
  };
}
