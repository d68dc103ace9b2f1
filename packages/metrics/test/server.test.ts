import { request } from 'node:http';
import { InvalidOptionsError, MemoryStore } from '@shardwork/core';
import { createJobQueue } from '@shardwork/jobs';
import { ShardworkMetrics, serveMetrics } from '@shardwork/metrics';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { service, waitFor, worker } from './support.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function get(
  url: string,
  method = 'GET',
): Promise<{ status: number; body: string; type: string | undefined; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          type: res.headers['content-type'],
          allow: res.headers.allow as string | undefined,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveMetrics', () => {
  it('answers /healthz, /readyz (503 before start, 200 after) and /metrics on a free port', async () => {
    const name = service('http');
    const w = worker(new MemoryStore(), name, 2);
    const jobs = createJobQueue('memory://');
    jobs.register('noop', async () => undefined);
    cleanups.push(
      () => w.worker.stop(),
      () => jobs.stop(),
    );
    const server = await serveMetrics({ port: 0, workers: [w.worker], jobs: [jobs] });
    cleanups.push(() => server.close());
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);

    const health = await get(`${server.url}/healthz`);
    expect(health).toMatchObject({ status: 200, body: 'ok\n' });

    const before = await get(`${server.url}/readyz`);
    expect(before.status).toBe(503);
    const why = JSON.parse(before.body) as {
      ready: boolean;
      checks: { kind: string; name: string; ready: boolean; reason?: string }[];
    };
    expect(why.ready).toBe(false);
    expect(why.checks).toEqual([
      { kind: 'worker', name, ready: false, reason: 'state is idle' },
      expect.objectContaining({ kind: 'jobs', ready: false, reason: 'state is idle' }),
    ]);

    await w.worker.start();
    const half = JSON.parse((await get(`${server.url}/readyz`)).body) as { checks: { ready: boolean }[] };
    expect(half.checks.map((c) => c.ready)).toEqual([true, false]);
    await jobs.start();
    await waitFor(async () => (await get(`${server.url}/readyz`)).status === 200, 15_000, 'ready');
    expect(JSON.parse((await get(`${server.url}/readyz`)).body)).toMatchObject({ ready: true });

    const metrics = await get(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    expect(metrics.body).toContain('# TYPE shardwork_shards_owned gauge');
    expect(metrics.body).toContain(`shardwork_shards_owned{service="${name}"} 2`);
    expect(metrics.body).toContain('# TYPE shardwork_shard_acquisitions_total counter');
    expect(metrics.body).toContain('# TYPE shardwork_job_duration_seconds histogram');
    // Every sample line parses as `name{labels} number`.
    for (const line of metrics.body.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/);
    }

    expect((await get(`${server.url}/nope`)).status).toBe(404);
    const post = await get(`${server.url}/metrics`, 'POST');
    expect(post.status).toBe(405);
    expect(post.allow).toBe('GET');

    // A stopping worker is no longer ready.
    await w.worker.stop();
    const after = JSON.parse((await get(`${server.url}/readyz`)).body) as {
      ready: boolean;
      checks: { reason?: string }[];
    };
    expect(after.ready).toBe(false);
    expect(after.checks[0]?.reason).toBe('state is stopped');

    await server.close();
    await server.close();
    await expect(get(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('serves given metrics as is, merged with a user registry', async () => {
    const mine = new Registry();
    const metrics = new ShardworkMetrics();
    const merged = Registry.merge([mine, metrics.registry]);
    expect(merged.getSingleMetric('shardwork_shards_owned')).toBeDefined();
    const server = await serveMetrics({ port: 0, metrics });
    cleanups.push(() => server.close());
    // No workers or queues: ready.
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
    expect((await get(`${server.url}/metrics`)).body).toContain('# TYPE shardwork_members gauge');
  });

  it('reports a standby worker (more replicas than shards) ready', async () => {
    const store = new MemoryStore();
    const name = service('standby');
    const a = worker(store, name, 1);
    const b = worker(store, name, 1);
    cleanups.push(
      () => a.worker.stop(),
      () => b.worker.stop(),
    );
    await a.worker.start();
    await waitFor(() => a.worker.status().shards.length === 1);
    await b.worker.start();
    const server = await serveMetrics({ port: 0, workers: [b.worker] });
    cleanups.push(() => server.close());
    await waitFor(() => b.worker.status().standby, 15_000, 'b on standby');
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
  });

  it('refuses bad options with InvalidOptionsError naming the option', async () => {
    await expect(serveMetrics({ port: -1 })).rejects.toThrow(InvalidOptionsError);
    await expect(serveMetrics({ port: -1 })).rejects.toThrow(
      /Invalid option "port": an integer in \[0, 65535\] \(got -1\)/,
    );
    await expect(serveMetrics({ port: 'abc' as never })).rejects.toThrow(/Invalid option "port"/);
    await expect(serveMetrics({ port: 1.5 })).rejects.toThrow(/Invalid option "port"/);
    await expect(serveMetrics({ host: '' })).rejects.toThrow(/Invalid option "host"/);
    await expect(serveMetrics({ workers: [{}] as never })).rejects.toThrow(/Invalid option "workers\[0\]"/);
    await expect(serveMetrics({ jobs: 'x' as never })).rejects.toThrow(/Invalid option "jobs"/);
    await expect(serveMetrics({ metrics: {} as never })).rejects.toThrow(/Invalid option "metrics"/);
  });

  it('rejects when the port is taken', async () => {
    const first = await serveMetrics({ port: 0 });
    cleanups.push(() => first.close());
    await expect(serveMetrics({ port: first.port })).rejects.toThrow(/EADDRINUSE/);
  });
});
