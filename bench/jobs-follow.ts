/**
 * Following jobs on Redis, side by side with BullMQ on one private
 * redis-server: how long from a handler's return to the waiter's promise
 * resolving (shardwork `waitFor` against BullMQ `job.waitUntilFinished`), in
 * the same process and from another one, and how long from `cancel()` to the
 * running handler's `ctx.signal` aborting in another process. Markdown on
 * stdout, progress on stderr; results in docs/benchmarks.md.
 *
 *   pnpm bench:follow [--jobs N]   (N waits per measurement, default 300)
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep } from '@shardwork/core';
import { createJobQueue } from '@shardwork/jobs';
import { startRedisServer } from '@shardwork/testkit';
import { Queue as BullQueue, Worker as BullWorker, QueueEvents } from 'bullmq';
import { markdownTable, ms, summarize } from './lib/stats.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '300' } } });
const N = Number(values.jobs);
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const CONSUMER = fileURLToPath(new URL('./jobs-follow-consumer.ts', import.meta.url));

/** A consumer child; its JSON lines go to `onLine`. */
async function child(
  config: Record<string, unknown>,
  onLine: (m: Record<string, unknown>) => void,
): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--conditions=@shardwork/source', '--import', 'tsx', CONSUMER], {
    env: { ...process.env, BENCH_FOLLOW: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const message = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
        buffer = buffer.slice(nl + 1);
        if (message.type === 'ready') resolve();
        else onLine(message);
      }
    });
    proc.once('exit', (code) => reject(new Error(`consumer exited with ${code}`)));
  });
  return proc;
}

const row = (what: string, samples: number[]): string[] => {
  const s = summarize(samples);
  return [what, String(s?.n ?? 0), ms(s?.median), ms(s?.p99)];
};

const server = await startRedisServer();
const rows: string[][] = [];
try {
  // shardwork, same process: the queue that waits also runs the job.
  {
    const url = `redis://127.0.0.1:${server.port}?prefix=same:&partitions=4&leaseTtlMs=2000`;
    const jobs = createJobQueue(url, { concurrency: 20 });
    jobs.register('stamp', () => monotonicMs());
    jobs.on('error', () => undefined);
    await jobs.start();
    const samples: number[] = [];
    for (let i = 0; i < N + 20; i++) {
      const returned = (await jobs.performAndWait({ handler: 'stamp' }, { timeoutMs: 10_000 })) as number;
      if (i >= 20) samples.push(monotonicMs() - returned);
    }
    await jobs.stop();
    rows.push(row('shardwork waitFor, same process', samples));
    progress(`shardwork same process: p50 ${summarize(samples)?.median.toFixed(2)} ms`);
  }
  // BullMQ, same process.
  {
    const queue = new BullQueue('same', { connection: { host: '127.0.0.1', port: server.port } });
    const events = new QueueEvents('same', { connection: { host: '127.0.0.1', port: server.port } });
    const worker = new BullWorker('same', async () => monotonicMs(), {
      connection: { host: '127.0.0.1', port: server.port },
      concurrency: 20,
    });
    await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
    const samples: number[] = [];
    for (let i = 0; i < N + 20; i++) {
      const job = await queue.add('stamp', {});
      const returned = (await job.waitUntilFinished(events, 10_000)) as number;
      if (i >= 20) samples.push(monotonicMs() - returned);
    }
    await Promise.all([worker.close(), events.close(), queue.close()]);
    rows.push(row('BullMQ waitUntilFinished, same process', samples));
    progress(`BullMQ same process: p50 ${summarize(samples)?.median.toFixed(2)} ms`);
  }
  // shardwork, another process: the producer waits, a consumer child runs; then cancels of running jobs.
  {
    const url = `redis://127.0.0.1:${server.port}?prefix=other:&partitions=4&leaseTtlMs=2000`;
    const running = new Map<string, () => void>();
    const aborted = new Map<string, number>();
    const consumer = await child({ system: 'shardwork', url, port: server.port, queue: 'other' }, (m) => {
      if (m.type === 'running') running.get(String(m.id))?.();
      if (m.type === 'aborted') aborted.set(String(m.id), Number(m.t));
    });
    const jobs = createJobQueue(url, { adapter: { partitions: 4, leaseTtlMs: 2000 } });
    jobs.on('error', () => undefined);
    const samples: number[] = [];
    for (let i = 0; i < N + 20; i++) {
      const returned = (await jobs.performAndWait({ handler: 'stamp' }, { timeoutMs: 10_000 })) as number;
      if (i >= 20) samples.push(monotonicMs() - returned);
    }
    rows.push(row('shardwork waitFor, another process', samples));
    progress(`shardwork other process: p50 ${summarize(samples)?.median.toFixed(2)} ms`);
    const cancels: number[] = [];
    for (let i = 0; i < Math.min(N, 200); i++) {
      const id = `hold-${i}`;
      // Listened for before the perform: the job may start before perform returns.
      const started = new Promise<void>((resolve) => running.set(id, resolve));
      await jobs.perform({ handler: 'hold' }, { id });
      await started;
      const at = monotonicMs();
      await jobs.cancel(id);
      for (let w = 0; !aborted.has(id) && w < 500; w++) await sleep(2);
      cancels.push((aborted.get(id) ?? Number.NaN) - at);
    }
    rows.push(row('shardwork cancel → running handler’s signal aborted, another process', cancels));
    progress(`cancel: p50 ${summarize(cancels)?.median.toFixed(2)} ms`);
    await jobs.stop();
    consumer.kill('SIGKILL');
  }
  // BullMQ, another process.
  {
    const consumer = await child({ system: 'bullmq', url: '', port: server.port, queue: 'other' }, () => undefined);
    const queue = new BullQueue('other', { connection: { host: '127.0.0.1', port: server.port } });
    const events = new QueueEvents('other', { connection: { host: '127.0.0.1', port: server.port } });
    await events.waitUntilReady();
    const samples: number[] = [];
    for (let i = 0; i < N + 20; i++) {
      const job = await queue.add('stamp', {});
      const returned = (await job.waitUntilFinished(events, 10_000)) as number;
      if (i >= 20) samples.push(monotonicMs() - returned);
    }
    await Promise.all([events.close(), queue.close()]);
    consumer.kill('SIGKILL');
    rows.push(row('BullMQ waitUntilFinished, another process', samples));
    progress(`BullMQ other process: p50 ${summarize(samples)?.median.toFixed(2)} ms`);
  }
} finally {
  await server.stop();
}
console.log(
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; Node ${process.version}; ${N} waits per row.\n`,
);
console.log(markdownTable(['from the handler’s return (or the cancel) to', 'samples', 'p50 ms', 'p99 ms'], rows));
process.exit(0);
