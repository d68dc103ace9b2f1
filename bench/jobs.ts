/**
 * Job queue benchmarks, side by side on one private redis-server:
 * shardwork's Redis adapter against BullMQ and bee-queue (dev dependencies of
 * the bench only). `pnpm bench:jobs [flags]` (builds the packages first: the
 * consumer processes run the built code, as users do; the drivers run from
 * source); markdown on stdout, progress on stderr; results in docs/benchmarks.md.
 *
 *   --only LIST       drain,enqueue,latency,recovery,memory,keep (default: all)
 *   --runs N          runs per measurement, the median is reported (default 5)
 *   --jobs N          jobs per drain and enqueue run (default 100000)
 *   --consumers LIST  consumer processes of the drain runs (default 1,2,4)
 *   --concurrency N   per consumer (default 50)
 */

import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { Queue as BullQueue } from 'bullmq';
import type { ConsumerConfig } from './jobs-consumer.js';
import { ConsumerProcess } from './lib/consumer-process.js';
import { markdownTable, ms, num, summarize } from './lib/stats.js';

/** Monotonic ms, comparable across processes on one machine (CLOCK_MONOTONIC). */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'drain,enqueue,latency,recovery,memory,keep' },
    runs: { type: 'string', default: '5' },
    jobs: { type: 'string', default: '100000' },
    consumers: { type: 'string', default: '1,2,4' },
    concurrency: { type: 'string', default: '50' },
  },
});
const sections = new Set(values.only.split(','));
const RUNS = Number(values.runs);
const JOBS = Number(values.jobs);
const CONSUMERS = values.consumers.split(',').map(Number);
const CONCURRENCY = Number(values.concurrency);
const SYSTEMS = ['shardwork', 'bullmq', 'bee'] as const;
type System = (typeof SYSTEMS)[number];
const NAMES: Record<System, string> = { shardwork: 'shardwork', bullmq: 'BullMQ 6', bee: 'bee-queue 2' };
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const require = createRequire(import.meta.url);
const CONSUMER = fileURLToPath(new URL('./jobs-consumer.ts', import.meta.url));

interface BeeQueueLike {
  createJob(data: unknown): { save(): Promise<unknown> };
  saveAll(jobs: unknown[]): Promise<Map<unknown, Error>>;
  ready(): Promise<unknown>;
  close(): Promise<void>;
}
const BeeQueue = require('bee-queue') as new (name: string, settings: Record<string, unknown>) => BeeQueueLike;

let server: RedisTestServer;
let seq = 0;
const fresh = (system: System): string => `b${++seq}${system}`;

/** A producer for a system and queue: add many, add one, close. */
interface Producer {
  addMany(n: number, batch: number): Promise<void>;
  addOne(i: number): Promise<void>;
  close(): Promise<void>;
}

function producer(system: System, queue: string, adapter: Record<string, unknown> = {}): Producer {
  const port = server.port;
  if (system === 'shardwork') {
    const jobs: JobQueue = createJobQueue(`redis://127.0.0.1:${port}?prefix=${queue}:`, { adapter });
    return {
      async addMany(n, batch) {
        for (let i = 0; i < n; i += batch) {
          await jobs.performMany(
            Array.from({ length: Math.min(batch, n - i) }, (_, j) => ({ handler: 'noop', args: { i: i + j } })),
          );
        }
      },
      async addOne(i) {
        await jobs.perform({ handler: 'noop', args: { i } });
      },
      close: async () => void (await jobs.stop({ timeoutMs: 0 })),
    };
  }
  if (system === 'bullmq') {
    const q = new BullQueue(queue, { connection: { host: '127.0.0.1', port } });
    const opts = { removeOnComplete: true };
    return {
      async addMany(n, batch) {
        for (let i = 0; i < n; i += batch) {
          await q.addBulk(
            Array.from({ length: Math.min(batch, n - i) }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts })),
          );
        }
      },
      async addOne(i) {
        await q.add('noop', { i }, opts);
      },
      close: () => q.close(),
    };
  }
  const q = new BeeQueue(queue, {
    redis: { host: '127.0.0.1', port },
    isWorker: false,
    getEvents: false,
    sendEvents: false,
    removeOnSuccess: true,
  });
  return {
    async addMany(n, batch) {
      for (let i = 0; i < n; i += batch) {
        await q.saveAll(Array.from({ length: Math.min(batch, n - i) }, (_, j) => q.createJob({ i: i + j })));
      }
    },
    async addOne(i) {
      await q.createJob({ i }).save();
    },
    close: () => q.close(),
  };
}

/** A consumer child process. */
class Consumer extends ConsumerProcess {
  constructor(config: ConsumerConfig) {
    super(CONSUMER, config);
  }
}

const adapterFor = (system: System): Record<string, unknown> | undefined =>
  system === 'shardwork' ? { partitions: 16, leaseTtlMs: 2000, batchSize: 100 } : undefined;

/** Fill a queue with `JOBS` jobs, then drain it with `consumers` processes: jobs/s from first start to last completion. */
async function drainOnce(
  system: System,
  consumers: number,
  keepCompleted?: ConsumerConfig['keepCompleted'],
): Promise<number> {
  const queue = fresh(system);
  const p = producer(system, queue, adapterFor(system));
  await p.addMany(JOBS, 1000);
  await p.close();
  const adapter = adapterFor(system);
  const procs = Array.from(
    { length: consumers },
    () =>
      new Consumer({
        system,
        redisPort: server.port,
        queue,
        concurrency: CONCURRENCY,
        sleepMs: 0,
        report: false,
        ...(adapter === undefined ? {} : { adapter }),
        ...(keepCompleted === undefined ? {} : { keepCompleted }),
      }),
  );
  await Promise.all(procs.map((c) => c.ready));
  const began = Date.now();
  while (procs.reduce((s, c) => s + c.count, 0) < JOBS) {
    if (Date.now() - began > 300_000) throw new Error(`${system} did not drain ${JOBS} jobs in 300 s`);
    await sleep(50);
  }
  const first = Math.min(...procs.map((c) => c.first));
  const last = Math.max(...procs.map((c) => c.countAt));
  for (const c of procs) c.kill();
  lastDrainMemory = await usedMemory();
  await server.command('FLUSHALL');
  return JOBS / ((last - first) / 1000);
}

/** Redis used_memory at the end of the last drain, before the flush. */
let lastDrainMemory = 0;

/**
 * The cost of keeping completed jobs with their results (`keepCompleted`, on
 * by default: the last 1,000 per queue) against keeping none, side by side:
 * runs alternate, one consumer process. Also Redis memory per kept job, with
 * every job of a drain kept.
 */
async function keep(): Promise<string> {
  const on: number[] = [];
  const off: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    // Which goes first alternates, so neither always runs on a warmer server.
    if (run % 2 === 0) off.push(await drainOnce('shardwork', 1, false));
    on.push(await drainOnce('shardwork', 1));
    if (run % 2 === 1) off.push(await drainOnce('shardwork', 1, false));
    progress(`keep run ${run + 1}: default ${on[run]?.toFixed(0)} jobs/s, none ${off[run]?.toFixed(0)} jobs/s`);
  }
  await server.command('FLUSHALL');
  const empty = await usedMemory();
  await drainOnce('shardwork', 1, false);
  const none = lastDrainMemory;
  await drainOnce('shardwork', 1, { count: JOBS });
  const all = lastDrainMemory;
  progress(`memory after a drain: ${none - empty} bytes keeping none, ${all - empty} keeping all ${JOBS}`);
  const ratios = on.map((v, i) => v / (off[i] ?? v));
  return markdownTable(
    ['keepCompleted', 'drain jobs/s (median)', 'ratio to none (median of runs)', 'Redis bytes per kept job'],
    [
      ['false (none)', num(summarize(off)?.median, 0), '1.00', '-'],
      [
        'default (last 1,000)',
        num(summarize(on)?.median, 0),
        num(summarize(ratios)?.median, 2),
        num((all - none) / JOBS, 0),
      ],
    ],
  );
}

async function drain(): Promise<string> {
  const rows: string[][] = [];
  for (const consumers of CONSUMERS) {
    const medians = new Map<System, number>();
    for (const system of SYSTEMS) {
      const samples: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const rate = await drainOnce(system, consumers);
        samples.push(rate);
        progress(`drain ${system} ×${consumers} run ${run + 1}: ${rate.toFixed(0)} jobs/s`);
      }
      medians.set(system, summarize(samples)?.median ?? 0);
    }
    const base = medians.get('bullmq') ?? 1;
    rows.push([
      String(consumers),
      ...SYSTEMS.map((s) => `${num(medians.get(s), 0)} (${num((medians.get(s) ?? 0) / base, 2)}×)`),
    ]);
  }
  return markdownTable(['consumer processes', ...SYSTEMS.map((s) => `${NAMES[s]} jobs/s (× BullMQ)`)], rows);
}

async function enqueue(): Promise<string> {
  const rows: string[][] = [];
  const bulk = new Map<System, number>();
  const single = new Map<System, { p50: number; p99: number }>();
  for (const system of SYSTEMS) {
    const rates: number[] = [];
    const p50s: number[] = [];
    const p99s: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const p = producer(system, fresh(system), adapterFor(system));
      await p.addOne(-1); // connect
      const began = monotonicMs();
      await p.addMany(JOBS, 1000);
      rates.push(JOBS / ((monotonicMs() - began) / 1000));
      const latencies: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const t = monotonicMs();
        await p.addOne(i);
        latencies.push(monotonicMs() - t);
      }
      const s = summarize(latencies);
      p50s.push(s?.median ?? 0);
      p99s.push(s?.p99 ?? 0);
      await p.close();
      await server.command('FLUSHALL');
      progress(
        `enqueue ${system} run ${run + 1}: bulk ${rates.at(-1)?.toFixed(0)} jobs/s, single p50 ${ms(p50s.at(-1))} ms`,
      );
    }
    bulk.set(system, summarize(rates)?.median ?? 0);
    single.set(system, { p50: summarize(p50s)?.median ?? 0, p99: summarize(p99s)?.median ?? 0 });
  }
  const bee = bulk.get('bee') ?? 1;
  for (const system of SYSTEMS) {
    rows.push([
      NAMES[system],
      `${num(bulk.get(system), 0)} (${num((bulk.get(system) ?? 0) / bee, 2)}× bee-queue)`,
      ms(single.get(system)?.p50),
      ms(single.get(system)?.p99),
    ]);
  }
  return markdownTable(['system', 'bulk enqueue jobs/s (batches of 1000)', 'single enqueue p50 ms', 'p99 ms'], rows);
}

/** Idle enqueue→start latency and performAt lateness, producer and consumer in this process. */
async function latency(): Promise<string> {
  const starts = new Map<number, number>();
  const prefix = fresh('shardwork');
  const url = `redis://127.0.0.1:${server.port}?prefix=${prefix}:`;
  const adapter = { partitions: 16, leaseTtlMs: 2000 };
  const consumer = createJobQueue<{ noop: { i: number } }>(url, { adapter });
  consumer.register('noop', (args) => void starts.set(args.i, monotonicMs()));
  await consumer.start();
  const p = createJobQueue<{ noop: { i: number } }>(url, { adapter });
  await p.perform({ handler: 'noop', args: { i: -1 } });
  const idle: number[] = [];
  for (let i = 0; i < 500 * RUNS; i++) {
    const t = monotonicMs();
    await p.perform({ handler: 'noop', args: { i } });
    while (!starts.has(i)) await sleep(1);
    idle.push((starts.get(i) as number) - t);
    await sleep(5);
  }
  const late: number[] = [];
  for (let i = 0; i < 100 * RUNS; i++) {
    const n = 1_000_000 + i;
    // The due time on both clocks: wall for performAt, monotonic for the measurement.
    const dueMono = monotonicMs() + 100;
    await p.performAt({ handler: 'noop', args: { i: n } }, Date.now() + 100);
    while (!starts.has(n)) await sleep(2);
    late.push((starts.get(n) as number) - dueMono);
  }
  await p.stop({ timeoutMs: 0 });
  await consumer.stop({ timeoutMs: 0 });
  await server.command('FLUSHALL');
  const a = summarize(idle);
  const b = summarize(late);
  return markdownTable(
    ['measure (shardwork, one consumer, idle)', 'samples', 'p50 ms', 'p99 ms', 'max ms'],
    [
      ['perform → handler starts', String(a?.n), ms(a?.median), ms(a?.p99), ms(a?.max)],
      ['performAt lateness (start − due)', String(b?.n), ms(b?.median), ms(b?.p99), ms(b?.max)],
    ],
  );
}

/** kill -9 of a consumer holding jobs in flight: time until each of them starts again elsewhere. */
async function recovery(): Promise<string> {
  const ttl = 2000;
  const samples: number[] = [];
  for (let run = 0; run < RUNS * 2; run++) {
    const queue = fresh('shardwork');
    const adapter = { partitions: 6, leaseTtlMs: ttl };
    const procs = Array.from(
      { length: 3 },
      () =>
        new Consumer({
          system: 'shardwork',
          redisPort: server.port,
          queue,
          concurrency: 12, // room for every job on every consumer: recovery is the takeover, not a wait for a slot
          sleepMs: 60_000,
          report: true,
          adapter,
        }),
    );
    await Promise.all(procs.map((c) => c.ready));
    const p = producer('shardwork', queue, adapter);
    for (let i = 0; i < 12; i++) await p.addOne(i);
    await p.close();
    const victim = procs[run % 3] as Consumer;
    while (procs.reduce((s, c) => s + c.starts.length, 0) < 12 || victim.starts.length === 0) await sleep(20);
    const inFlight = new Set(victim.starts.map((s) => s.id));
    const killedAt = monotonicMs();
    victim.kill();
    const others = procs.filter((c) => c !== victim);
    const restarted = new Map<string, number>();
    while (restarted.size < inFlight.size) {
      for (const c of others)
        for (const s of c.starts) if (inFlight.has(s.id) && !restarted.has(s.id)) restarted.set(s.id, s.t);
      if (monotonicMs() - killedAt > 30_000) throw new Error('in-flight jobs did not run again within 30 s');
      await sleep(10);
    }
    for (const t of restarted.values()) samples.push(t - killedAt);
    progress(`recovery run ${run + 1}: ${[...restarted.values()].map((t) => (t - killedAt).toFixed(0)).join(', ')} ms`);
    for (const c of others) c.kill();
    await server.command('FLUSHALL');
  }
  const s = summarize(samples);
  return markdownTable(
    ['kill -9 → in-flight job runs again (lease TTL 2000 ms)', 'samples', 'p50 ms', 'p99 ms', 'max ms'],
    [['shardwork', String(s?.n), ms(s?.median), ms(s?.p99), ms(s?.max)]],
  );
}

async function usedMemory(): Promise<number> {
  const info = await server.command('INFO', 'memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

async function memory(): Promise<string> {
  const rows: string[][] = [];
  for (const system of SYSTEMS) {
    await server.command('FLUSHALL');
    const before = await usedMemory();
    const p = producer(system, fresh(system), adapterFor(system));
    await p.addMany(JOBS, 1000);
    const after = await usedMemory();
    await p.close();
    rows.push([NAMES[system], num((after - before) / JOBS, 0)]);
    progress(`memory ${system}: ${((after - before) / JOBS).toFixed(0)} bytes/job`);
  }
  await server.command('FLUSHALL');
  return markdownTable(['system', `Redis used_memory per queued job, bytes (${JOBS} jobs, args {i})`], rows);
}

server = await startRedisServer();
const version = /redis_version:(\S+)/.exec(await server.command('INFO', 'server'))?.[1];
console.log(`# Job queue benchmarks\n`);
console.log(
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; Node ${process.version}; redis-server ${version}; ${RUNS} runs, medians.\n`,
);
try {
  if (sections.has('drain'))
    console.log(`## Drain ${JOBS} queued no-op jobs, concurrency ${CONCURRENCY} per process\n\n${await drain()}\n`);
  if (sections.has('enqueue')) console.log(`## Enqueue\n\n${await enqueue()}\n`);
  if (sections.has('latency')) console.log(`## Latency\n\n${await latency()}\n`);
  if (sections.has('recovery')) console.log(`## Crash recovery\n\n${await recovery()}\n`);
  if (sections.has('memory')) console.log(`## Memory\n\n${await memory()}\n`);
  if (sections.has('keep'))
    console.log(`## Keeping completed jobs (${JOBS} no-op jobs, one consumer process)\n\n${await keep()}\n`);
} finally {
  await server.stop();
}
process.exit(0);
