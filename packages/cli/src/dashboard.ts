/**
 * `shardwork dashboard`: start `@shardwork/dashboard` and keep it running
 * until the signal aborts. The package is imported on first use, so the other
 * commands work (and start fast) without it.
 *
 * @module
 */

import type { Dashboard, DashboardWarning } from '@shardwork/dashboard';
import { refuseInProcessStore, toCliError } from './backend.js';
import { UsageError } from './errors.js';

/** Options of {@link startDashboardCommand}. */
export interface DashboardCommandOptions {
  readonly discovery: string | undefined;
  readonly jobs: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly readOnly: boolean;
  /** `--timeout`: deadline of each backend call the dashboard makes. */
  readonly timeoutMs: number;
  /** The discovery URL came from `SHARDWORK_DISCOVERY` (named in messages). */
  readonly discoveryFromEnv?: boolean;
  /** The job store URL came from `SHARDWORK_JOBS` (named in messages). */
  readonly jobsFromEnv?: boolean;
  readonly json: boolean;
  readonly write: (text: string) => void;
  /** Where warnings go (stderr), each a complete text ending in a newline. */
  readonly warn: (text: string) => void;
  readonly signal: AbortSignal;
}

/** Check the auth options: a token, or a user with a password, or nothing. */
function auth(o: DashboardCommandOptions): { token: string } | { username: string; password: string } | undefined {
  if (o.token !== undefined && (o.user !== undefined || o.password !== undefined)) {
    throw new UsageError('Give either --token or --user/--password, not both');
  }
  if (o.token !== undefined) return { token: o.token };
  if ((o.user === undefined) !== (o.password === undefined)) {
    throw new UsageError('--user and --password go together');
  }
  if (o.user !== undefined && o.password !== undefined) return { username: o.user, password: o.password };
  return undefined;
}

/**
 * A dashboard warning in the command's own words: the fix is a flag here,
 * not the library's `auth` option.
 */
export function describeWarning(w: DashboardWarning, o: Pick<DashboardCommandOptions, 'readOnly'>): string {
  if (w.code !== 'UNAUTHENTICATED_NETWORK_BIND') return `shardwork: warning: ${(w as DashboardWarning).message}\n`;
  const address = w.host.includes(':') ? `[${w.host}]:${w.port}` : `${w.host}:${w.port}`;
  const can = o.readOnly
    ? 'read every service, member and job (with its arguments and errors)'
    : 'read every service, member and job (with its arguments and errors) and retry, delete, cancel, promote and pause jobs, and forget stopped services';
  return [
    `shardwork: WARNING: the dashboard listens on ${address}, which is reachable from the network, WITHOUT AUTHENTICATION:`,
    `  anyone who can reach this port can ${can}.`,
    `  Add a token: shardwork dashboard --host ${w.host} --token <secret> (open http://<this host>:${w.port}/?token=<secret> once),`,
    '  or --user <name> --password <secret>, and put TLS in front (the dashboard speaks plain HTTP);',
    '  or leave out --host to listen on 127.0.0.1 only.',
    '',
  ].join('\n');
}

/** Start the dashboard, print its URL, and close it when `signal` aborts. */
export async function startDashboardCommand(o: DashboardCommandOptions): Promise<void> {
  if (o.discovery === undefined || o.discovery === '') {
    throw new UsageError('No discovery backend: pass --discovery <url> or set SHARDWORK_DISCOVERY');
  }
  refuseInProcessStore(o.discovery, 'discovery', {
    option: '--discovery',
    env: 'SHARDWORK_DISCOVERY',
    fromEnv: o.discoveryFromEnv === true,
  });
  if (o.jobs !== undefined && o.jobs !== '') {
    refuseInProcessStore(o.jobs, 'jobs', { option: '--jobs', env: 'SHARDWORK_JOBS', fromEnv: o.jobsFromEnv === true });
  }
  const credentials = auth(o);
  const { startDashboard } = await import('@shardwork/dashboard');
  let server: Dashboard;
  try {
    server = await startDashboard({
      discovery: o.discovery,
      jobs: o.jobs,
      host: o.host,
      port: o.port,
      readOnly: o.readOnly,
      backendTimeoutMs: o.timeoutMs,
      onWarning: (w) => o.warn(describeWarning(w, o)),
      ...(credentials === undefined ? {} : { auth: credentials }),
    });
  } catch (error) {
    // Bad options (InvalidOptionsError) are exit 1, an unreachable backend exit 2.
    throw toCliError(error, 'dashboard');
  }
  o.write(
    o.json
      ? `${JSON.stringify({ url: server.url, port: server.port })}\n`
      : `dashboard on ${server.url} (Ctrl-C to stop)\n`,
  );
  if (!o.signal.aborted) {
    await new Promise<void>((resolve) => o.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await server.close();
}
