import type { Discovery, Logger } from '@shardwork/core';
import { DISCOVERY_ENV, InvalidOptionsError } from '@shardwork/core';
import { compileLogger } from '@shardwork/core/backend';
import type { AdminJobQueue } from '@shardwork/jobs';
import { JOBS_ENV } from '@shardwork/jobs';

/** Credentials the dashboard asks for: a bearer token, or HTTP Basic user and password. */
export type DashboardAuth = { readonly token: string } | { readonly username: string; readonly password: string };

/**
 * Something the operator should know about how the dashboard was started,
 * reported once by {@link startDashboard} through `onWarning`.
 *
 * - `UNAUTHENTICATED_NETWORK_BIND`: it listens on an address other than
 *   loopback without `auth`, so anyone who can reach the port can read every
 *   service and job (and, unless `readOnly`, retry, delete, cancel, promote and pause jobs, and forget stopped services).
 */
export interface DashboardWarning {
  /** Machine-readable kind. */
  readonly code: 'UNAUTHENTICATED_NETWORK_BIND';
  /** What is wrong and how to fix it, as one paragraph. */
  readonly message: string;
  /** The address it listens on, as given in `host`. */
  readonly host: string;
  /** The port it listens on. */
  readonly port: number;
}

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /**
   * Discovery backend: a URL (`redis://…`, `etcd://…`, `memory://`) or an
   * open {@link Discovery} (not closed by the dashboard).
   * @defaultValue `process.env.SHARDWORK_DISCOVERY`
   */
  readonly discovery?: string | Discovery | undefined;
  /**
   * Job queue to show: a URL or a {@link JobQueue} instance (not stopped by the
   * dashboard). Without one the job pages say "no job queue configured".
   * @defaultValue `process.env.SHARDWORK_JOBS`
   */
  readonly jobs?: string | AdminJobQueue | undefined;
  /**
   * Services to show.
   * @defaultValue every service `discovery.services()` lists
   */
  readonly services?: readonly string[] | undefined;
  /**
   * Address to bind. Anything but loopback exposes the dashboard to the network: set `auth`.
   * @defaultValue `'127.0.0.1'`
   */
  readonly host?: string | undefined;
  /**
   * Port to listen on; `0` picks a free one.
   * @defaultValue `8080`
   */
  readonly port?: number | undefined;
  /**
   * Require a bearer token or HTTP Basic credentials on every request.
   * @defaultValue none (anyone who reaches the port may look and act)
   */
  readonly auth?: DashboardAuth | undefined;
  /**
   * Render no action buttons and refuse every POST with 403.
   * @defaultValue `false`
   */
  readonly readOnly?: boolean | undefined;
  /**
   * How often the pages poll the JSON API, ms.
   * @defaultValue `1000`
   */
  readonly refreshMs?: number | undefined;
  /**
   * Deadline of each backend read, ms; a read that takes longer counts as the backend being unreachable.
   * @defaultValue `2000`
   */
  readonly backendTimeoutMs?: number | undefined;
  /**
   * Called once per {@link DashboardWarning} when the server has started
   * (e.g. it is reachable from the network without `auth`). The warnings are
   * also on `dashboard.warnings`.
   * @defaultValue `logger.warn` of the message
   */
  readonly onWarning?: ((warning: DashboardWarning) => void) | undefined;
  /**
   * Where the dashboard's own messages go (its warnings, unless `onWarning`
   * takes them): pino's shape, fields first, as core's `Logger`.
   * @defaultValue `consoleLogger()` of `@shardwork/core`
   */
  readonly logger?: Logger | undefined;
}

/** {@link DashboardOptions} validated and with every default filled in. */
export interface CompiledDashboardOptions {
  readonly discovery: string | Discovery;
  readonly jobs: string | AdminJobQueue | undefined;
  readonly services: readonly string[] | undefined;
  readonly host: string;
  readonly port: number;
  readonly auth: DashboardAuth | undefined;
  readonly readOnly: boolean;
  readonly refreshMs: number;
  readonly backendTimeoutMs: number;
  readonly onWarning: (warning: DashboardWarning) => void;
}

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null;
const field = (value: unknown, name: string): unknown => (value as Record<string, unknown>)[name];
const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/** Validate `options` and fill in defaults; throws `InvalidOptionsError` naming the bad option. */
export function compileDashboardOptions(options: DashboardOptions): CompiledDashboardOptions {
  if (!isObject(options)) throw new InvalidOptionsError('options', options, 'an object');
  const discovery = options.discovery ?? process.env[DISCOVERY_ENV];
  if (discovery === undefined || discovery === '') {
    throw new InvalidOptionsError('discovery', discovery, `a discovery URL or instance (or set ${DISCOVERY_ENV})`);
  }
  if (typeof discovery !== 'string' && (!isObject(discovery) || typeof field(discovery, 'snapshot') !== 'function')) {
    throw new InvalidOptionsError('discovery', discovery, 'a discovery URL or a Discovery instance');
  }
  const envJobs = process.env[JOBS_ENV];
  const jobs = options.jobs ?? (nonEmpty(envJobs) ? envJobs : undefined);
  if (jobs !== undefined && !nonEmpty(jobs) && (!isObject(jobs) || typeof field(jobs, 'stats') !== 'function')) {
    throw new InvalidOptionsError('jobs', jobs, 'a job queue URL or a JobQueue instance');
  }
  const services = options.services;
  if (services !== undefined && (!Array.isArray(services) || !services.every(nonEmpty))) {
    throw new InvalidOptionsError('services', services, 'an array of non-empty service names');
  }
  const host = options.host ?? '127.0.0.1';
  if (!nonEmpty(host)) throw new InvalidOptionsError('host', host, 'a non-empty host name or address');
  const port = options.port ?? 8080;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidOptionsError('port', port, 'an integer port in [0, 65535]');
  }
  const auth = options.auth;
  if (auth !== undefined) {
    if (!isObject(auth)) throw new InvalidOptionsError('auth', auth, 'an object { token } or { username, password }');
    if ('token' in auth) {
      if (!nonEmpty(auth.token)) throw new InvalidOptionsError('auth.token', auth.token, 'a non-empty string');
    } else {
      if (!nonEmpty(auth.username) || auth.username.includes(':')) {
        throw new InvalidOptionsError('auth.username', auth.username, 'a non-empty string without ":"');
      }
      if (!nonEmpty(auth.password)) throw new InvalidOptionsError('auth.password', auth.password, 'a non-empty string');
    }
  }
  const readOnly = options.readOnly ?? false;
  if (typeof readOnly !== 'boolean') throw new InvalidOptionsError('readOnly', readOnly, 'a boolean');
  const refreshMs = options.refreshMs ?? 1000;
  if (typeof refreshMs !== 'number' || !Number.isFinite(refreshMs) || refreshMs < 100) {
    throw new InvalidOptionsError('refreshMs', refreshMs, 'a number of milliseconds >= 100');
  }
  const backendTimeoutMs = options.backendTimeoutMs ?? 2000;
  if (typeof backendTimeoutMs !== 'number' || !Number.isFinite(backendTimeoutMs) || backendTimeoutMs <= 0) {
    throw new InvalidOptionsError('backendTimeoutMs', backendTimeoutMs, 'a positive number of milliseconds');
  }
  const logger = compileLogger(options.logger);
  const onWarning =
    options.onWarning ?? ((w: DashboardWarning) => logger.warn({ scope: 'dashboard', warning: w.code }, w.message));
  if (typeof onWarning !== 'function') throw new InvalidOptionsError('onWarning', onWarning, 'a function');
  return {
    discovery,
    jobs,
    services: services === undefined ? undefined : [...services],
    host,
    port,
    auth,
    readOnly,
    refreshMs,
    backendTimeoutMs,
    onWarning,
  };
}
