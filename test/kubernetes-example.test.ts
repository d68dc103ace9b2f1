/**
 * The Kubernetes example's replica (examples/kubernetes/worker.ts), run as the
 * Deployment runs it: discovery from SHARDWORK_DISCOVERY, /readyz as the
 * readiness probe, /metrics scraped, SIGTERM for a graceful hand-over; and its
 * job consumer (examples/kubernetes/jobs.ts): SIGTERM lets a running job finish.
 */

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createJobQueue } from '@shardwork/jobs';
import { freePort, onLines, type RedisTestServer, spawnSource, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const WORKER = fileURLToPath(new URL('../examples/kubernetes/worker.ts', import.meta.url));
const JOBS = fileURLToPath(new URL('../examples/kubernetes/jobs.ts', import.meta.url));

let redis: RedisTestServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

interface Pod {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

function startPod(service: string, port: number): Pod {
  const child = spawnSource(WORKER, {
    env: {
      ...process.env,
      SHARDWORK_DISCOVERY: redis.url,
      SERVICE: service,
      SHARDS: '8',
      LEASE_TTL_MS: '1000',
      METRICS_PORT: String(port),
      METRICS_HOST: '127.0.0.1',
      POD_NAME: `pod-${port}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  onLines(child.stdout, (line) => lines.push(line));
  onLines(child.stderr, (line) => lines.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

describe('the Kubernetes example replica', () => {
  it('becomes ready once it owns shards, exports metrics, and hands over on SIGTERM', async () => {
    const service = `k8s-${process.pid}-${Date.now()}`;
    const [portA, portB] = [await freePort(), await freePort()];
    const a = startPod(service, portA);
    const b = startPod(service, portB);
    try {
      await until(async () => (await get(`http://127.0.0.1:${portA}/readyz`)).status === 200, 30_000, 'pod a ready');
      await until(async () => (await get(`http://127.0.0.1:${portB}/readyz`)).status === 200, 30_000, 'pod b ready');
      expect((await get(`http://127.0.0.1:${portA}/healthz`)).status).toBe(200);
      const owned = async (port: number): Promise<number> => {
        const { body } = await get(`http://127.0.0.1:${port}/metrics`);
        const line = body.split('\n').find((l) => l.startsWith(`shardwork_shards_owned{service="${service}"}`));
        return line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
      };
      await until(async () => (await owned(portA)) + (await owned(portB)) === 8, 20_000, 'all 8 shards owned');
      a.child.kill('SIGTERM');
      // Graceful: pod a exits by itself, and b takes all 8 shards.
      expect(await a.exited).toBe(0);
      await until(async () => (await owned(portB)) === 8, 10_000, 'pod b owns every shard');
      expect(a.lines.some((l) => l.startsWith('owning'))).toBe(true);
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
      await Promise.all([a.exited, b.exited]);
    }
  });

  it('runs jobs, and on SIGTERM lets a running job finish before it exits 0 (handleSignals)', async () => {
    const port = await freePort();
    const prefix = `k8sjobs${process.pid}${Date.now().toString(36)}:`;
    const url = `${redis.url}?prefix=${prefix}`;
    const child = spawnSource(JOBS, {
      env: {
        ...process.env,
        SHARDWORK_JOBS: url,
        LEASE_TTL_MS: '1000',
        METRICS_PORT: String(port),
        METRICS_HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    onLines(child.stdout, (line) => lines.push(line));
    onLines(child.stderr, (line) => lines.push(line));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const producer = createJobQueue(url);
    try {
      await until(async () => (await get(`http://127.0.0.1:${port}/readyz`)).status === 200, 30_000, 'ready');
      const quick = await producer.perform({ handler: 'resize', args: { image: 'a.png' } });
      expect(await producer.waitFor(quick.id, { timeoutMs: 20_000 })).toEqual({ image: 'a.png', resized: true });
      const slow = await producer.perform({ handler: 'resize', args: { image: 'b.png', ms: 1500 } });
      await until(async () => (await producer.getJob(slow.id))?.state === 'running', 20_000, 'slow job running');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      // It finished before the process exited: not put back, not run again.
      expect(await producer.getJob(slow.id)).toMatchObject({ state: 'completed', progress: 100 });
      expect(lines).toContain(`completed ${slow.id}`);
      expect(lines).toContain('jobs stopped');
    } finally {
      child.kill('SIGKILL');
      await exited;
      await producer.stop();
    }
  });
});
