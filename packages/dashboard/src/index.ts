/**
 * shardwork dashboard: services, members and a live shard map; job queues,
 * job lists, a page per job (search by id; cancel, promote, retry) and
 * dead-job actions, served as plain HTML by a small Hono server.
 *
 * @example
 * ```ts
 * import { startDashboard } from '@shardwork/dashboard';
 *
 * const dashboard = await startDashboard({
 *   discovery: 'redis://127.0.0.1:6379',
 *   jobs: 'redis://127.0.0.1:6379',
 *   port: 8080,
 *   auth: { token: process.env.DASHBOARD_TOKEN ?? '' },
 * });
 * console.log(`open ${dashboard.url}/?token=…`);
 * // later
 * await dashboard.close();
 * ```
 *
 * @module
 */

export type { DashboardAppOptions } from './app.js';
export { createDashboardApp } from './app.js';
export { DashboardData, ForgetRefusedError } from './data.js';
export type { JobLookupRefusal, JobView } from './job-data.js';
export type { CompiledDashboardOptions, DashboardAuth, DashboardOptions, DashboardWarning } from './options.js';
export { compileDashboardOptions } from './options.js';
export type { Dashboard } from './server.js';
export { startDashboard } from './server.js';
export type { StoreThroughput } from './throughput.js';
export type {
  BackendProblem,
  JobsView,
  Movement,
  QueueRow,
  QueuesView,
  ServicesView,
  ServiceView,
} from './views.js';
