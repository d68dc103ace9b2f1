/**
 * {@link serveMetrics}: a small node:http server with `/metrics`, `/healthz`
 * and `/readyz`, for Prometheus and Kubernetes probes.
 *
 * @module
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from '@shardwork/core';
import type { AdminJobQueue } from '@shardwork/jobs';
import { ShardworkMetrics } from './metrics.js';
import { compileServeOptions, type ServeMetricsOptions } from './options.js';

/** A running metrics server. */
export interface MetricsServer {
  /** `http://host:port`. */
  readonly url: string;
  /** The port it listens on (the real one when `0` was asked for). */
  readonly port: number;
  /** Stop listening (and detach the default metrics). Idempotent. */
  close(): Promise<void>;
}

/** One line of the `/readyz` answer. */
export interface ReadinessCheck {
  readonly kind: 'worker' | 'jobs';
  /** Service of a worker, adapter kind of a job queue. */
  readonly name: string;
  readonly ready: boolean;
  /** Why it is not ready (absent when ready). */
  readonly reason?: string;
}

/** A worker is ready when running, registered, and owning a shard or standing by. */
export function workerReadiness(worker: Worker): ReadinessCheck {
  const s = worker.status();
  const base = { kind: 'worker', name: s.service } as const;
  if (s.state !== 'running') return { ...base, ready: false, reason: `state is ${s.state}` };
  if (s.instance === undefined) return { ...base, ready: false, reason: 'not registered (no lease)' };
  if (s.shards.length === 0 && !s.standby) return { ...base, ready: false, reason: 'owns no shard yet' };
  return { ...base, ready: true };
}

/** A job queue is ready when it is running (a queue never started is not). */
export function jobsReadiness(queue: AdminJobQueue): ReadinessCheck {
  const s = queue.status();
  const base = { kind: 'jobs', name: s.adapter ?? 'jobs' } as const;
  if (s.state !== 'running') return { ...base, ready: false, reason: `state is ${s.state}` };
  return { ...base, ready: true };
}

/**
 * Serve `GET /metrics` (Prometheus text), `GET /healthz` (`200 ok` while the
 * process runs) and `GET /readyz` (`200` when every worker and job queue is
 * ready, else `503`; both with a JSON body listing each check).
 *
 * ```ts
 * const server = await serveMetrics({ port: 9464, host: '0.0.0.0', workers: [worker], jobs: [jobs] });
 * // … on shutdown
 * await server.close();
 * ```
 *
 * @throws InvalidOptionsError for a bad port, host or list.
 */
export async function serveMetrics(options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  const o = compileServeOptions(options);
  let metrics = o.metrics;
  const detach: (() => void)[] = [];
  if (metrics === undefined) {
    const own = new ShardworkMetrics();
    for (const worker of o.workers) detach.push(own.instrumentWorker(worker));
    for (const queue of o.jobs) detach.push(own.instrumentJobs(queue));
    metrics = own;
  }
  const served = metrics;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
    if (!known) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (path === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    if (path === '/readyz') {
      const checks = [...o.workers.map(workerReadiness), ...o.jobs.map(jobsReadiness)];
      const ready = checks.every((c) => c.ready);
      return send(res, ready ? 200 : 503, 'application/json', `${JSON.stringify({ ready, checks })}\n`);
    }
    try {
      send(res, 200, served.contentType, await served.metrics());
    } catch (error) {
      send(res, 500, 'text/plain; charset=utf-8', `collecting metrics failed: ${String(error)}\n`);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    for (const off of detach) off();
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const off of detach) off();
        server.close(() => resolve());
        // Keep-alive connections of a scraper would hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
