import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Discovery } from '@shardwork/core';
import { createDiscovery } from '@shardwork/core';
import type { AdminJobQueue } from '@shardwork/jobs';
import { createJobQueue } from '@shardwork/jobs';
import { createDashboardApp } from './app.js';
import { DashboardData } from './data.js';
import { compileDashboardOptions, type DashboardOptions, type DashboardWarning } from './options.js';
import { exposureWarning } from './security.js';

/** A running dashboard. */
export interface Dashboard {
  /** `http://host:port`, the address to open. */
  readonly url: string;
  /** The port it listens on (the one picked when `port` was 0). */
  readonly port: number;
  /** What the operator should know about how it was started (also passed to `onWarning`); empty when all is well. */
  readonly warnings: readonly DashboardWarning[];
  /** Stop listening and close the backends the dashboard opened itself (not instances passed in). */
  close(): Promise<void>;
}

/**
 * Start the dashboard's HTTP server. Throws `InvalidOptionsError` naming a bad
 * option; a backend that is down does not stop it from starting (the pages show a banner).
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const o = compileDashboardOptions(options);
  const discovery: Discovery = typeof o.discovery === 'string' ? await createDiscovery(o.discovery) : o.discovery;
  const jobs: AdminJobQueue | undefined = typeof o.jobs === 'string' ? createJobQueue(o.jobs) : o.jobs;
  const data = new DashboardData({
    discovery,
    discoverySource: o.discovery,
    jobs,
    jobsSource: o.jobs,
    services: o.services,
    timeoutMs: o.backendTimeoutMs,
    inProcessJobs: typeof o.jobs === 'object',
  });
  const app = createDashboardApp({ data, auth: o.auth, readOnly: o.readOnly, refreshMs: o.refreshMs });
  const closeBackends = async (): Promise<void> => {
    data.dispose();
    if (typeof o.jobs === 'string') await jobs?.stop().catch(() => undefined);
    if (typeof o.discovery === 'string') await discovery.close().catch(() => undefined);
  };
  let server: ReturnType<typeof serve>;
  try {
    server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: o.host, port: o.port }, () => resolve(s));
      s.once('error', reject);
    });
  } catch (error) {
    await closeBackends();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const warnings: DashboardWarning[] = [];
  const exposed = exposureWarning({ host: o.host, port, auth: o.auth, readOnly: o.readOnly });
  if (exposed !== undefined) warnings.push(exposed);
  for (const warning of warnings) {
    try {
      o.onWarning(warning);
    } catch {
      // A throwing warning handler must not take down a dashboard that is already listening.
    }
  }
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    warnings,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Polling pages keep connections alive; without this close() would wait for them.
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
        await closeBackends();
      })();
      return closing;
    },
  };
}
