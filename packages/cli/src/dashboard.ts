/**
 * `shardwork dashboard`: start `@shardwork/dashboard` and keep it running
 * until the signal aborts. The package is imported on first use, so the other
 * commands work (and start fast) without it.
 *
 * @module
 */

import type { Dashboard } from '@shardwork/dashboard';
import { toCliError } from './backend.js';
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
  readonly json: boolean;
  readonly write: (text: string) => void;
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

/** Start the dashboard, print its URL, and close it when `signal` aborts. */
export async function startDashboardCommand(o: DashboardCommandOptions): Promise<void> {
  if (o.discovery === undefined || o.discovery === '') {
    throw new UsageError('No discovery backend: pass --discovery <url> or set SHARDWORK_DISCOVERY');
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
