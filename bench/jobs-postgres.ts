/**
 * PostgreSQL job queue benchmarks, side by side on one private PostgreSQL 15
 * (fsync on): shardwork's `postgres://` adapter (on PostgreSQL alone: its
 * partition owners coordinate in the same database) against pg-boss and
 * graphile-worker (dev dependencies of the bench only, each configured as its
 * docs recommend for throughput). Both need Node 22 or later, so run it with
 * Node 22: `pnpm build && node22 --conditions=@shardwork/source --import tsx
 * bench/jobs-postgres.ts [flags]` (consumers run the built code, as users do).
 * Markdown on stdout, progress on stderr; results in docs/benchmarks.md.
 *
 *   --only LIST       drain,enqueue,latency,recovery (default: all)
 *   --runs N          runs per measurement, the median is reported (default 3)
 *   --jobs N          jobs per drain and enqueue run (default 20000)
 *   --consumers LIST  consumer processes of the drain runs (default 1,2)
 *   --concurrency N   per consumer (default 50)
 */

import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import type { PgConsumerConfig } from './jobs-postgres-consumer.js';
import { ConsumerProcess } from './lib/consumer-process.js';
import { markdownTable, ms, num, summarize } from './lib/stats.js';

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'drain,enqueue,latency,recovery' },
    runs: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '20000' },
    consumers: { type: 'string', default: '1,2' },
    concurrency: { type: 'string', default: '50' },
  },
});
const sections = new Set(values.only.split(','));
const RUNS = Number(values.runs);
const JOBS = Number(values.jobs);
const CONSUMERS = values.consumers.split(',').map(Number);
const CONCURRENCY = Number(values.concurrency);
const SYSTEMS = ['shardwork', 'pgboss', 'graphile'] as const;
type System = (typeof SYSTEMS)[number];
const NAMES: Record<System, string> = {
  shardwork: 'shardwork',
  pgboss: 'pg-boss 12',
  graphile: 'graphile-worker 0.18',
};
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const CONSUMER = fileURLToPath(new URL('./jobs-postgres-consumer.ts', import.meta.url));

let server: PostgresTestServer;
let seq = 0;
const fresh = (system: System): string => `b${++seq}${system}`;
/** shardwork's options: 16 partitions; the partition owners coordinate in the same database (its default). */
const shardworkAdapter = (): Record<string, unknown> => ({ partitions: 16, leaseTtlMs: 2000, batchSize: 100 });

/** A producer for a system and queue: add many, add one, close. */
interface Producer {
  addMany(n: number, batch: number): Promise<void>;
  addOne(i: number): Promise<void>;
  close(): Promise<void>;
}

async function producer(system: System, queue: string, partitions = 16): Promise<Producer> {
  if (system === 'shardwork') {
    const jobs: JobQueue = createJobQueue(`${server.url}?schema=${queue}`, { adapter: { partitions } });
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
  if (system === 'pgboss') {
    const boss = new PgBoss({ connectionString: server.url, schema: 'pgboss', supervise: false, schedule: false });
    boss.on('error', () => undefined);
    await boss.start();
    await boss.createQueue(queue, { notify: true });
    return {
      async addMany(n, batch) {
        for (let i = 0; i < n; i += batch) {
          await boss.insert(
            queue,
            Array.from({ length: Math.min(batch, n - i) }, (_, j) => ({ data: { i: i + j } })),
          );
        }
      },
      async addOne(i) {
        await boss.send(queue, { i });
      },
      close: () => boss.stop({ graceful: false }),
    };
  }
  await runMigrations({ connectionString: server.url, schema: queue });
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: server.url, schema: queue });
  return {
    async addMany(n, batch) {
      for (let i = 0; i < n; i += batch) {
        await utils.addJobs(
          Array.from({ length: Math.min(batch, n - i) }, (_, j) => ({ identifier: 'noop', payload: { i: i + j } })),
        );
      }
    },
    async addOne(i) {
      await utils.addJob('noop', { i });
    },
    close: async () => {
      await utils.release();
    },
  };
}

/** A consumer child process. */
class Consumer extends ConsumerProcess {
  constructor(config: PgConsumerConfig) {
    super(CONSUMER, config);
  }
}

const consumer = (system: System, queue: string, over: Partial<PgConsumerConfig> = {}): Consumer =>
  new Consumer({
    system,
    url: server.url,
    queue,
    concurrency: CONCURRENCY,
    sleepMs: 0,
    report: false,
    ...(system === 'shardwork' ? { adapter: shardworkAdapter() } : {}),
    ...over,
  });

/** Fill a queue with `JOBS` jobs, then drain it with `consumers` processes: jobs/s from first start to last completion. */
async function drainOnce(system: System, consumers: number): Promise<number> {
  const queue = fresh(system);
  const p = await producer(system, queue);
  await p.addMany(JOBS, 1000);
  await p.close();
  const procs = Array.from({ length: consumers }, () => consumer(system, queue));
  await Promise.all(procs.map((c) => c.ready));
  const began = Date.now();
  while (procs.reduce((s, c) => s + c.count, 0) < JOBS) {
    if (Date.now() - began > 600_000) throw new Error(`${system} did not drain ${JOBS} jobs in 600 s`);
    await sleep(50);
  }
  const first = Math.min(...procs.map((c) => c.first));
  const last = Math.max(...procs.map((c) => c.countAt));
  for (const c of procs) c.kill();
  return JOBS / ((last - first) / 1000);
}

async function drain(): Promise<string> {
  const rows: string[][] = [];
  for (const consumers of CONSUMERS) {
    const samples = new Map<System, number[]>(SYSTEMS.map((s) => [s, []]));
    // Runs interleave the systems, so that none always runs on a warmer (or more bloated) server.
    for (let run = 0; run < RUNS; run++) {
      for (const system of SYSTEMS) {
        const rate = await drainOnce(system, consumers);
        samples.get(system)?.push(rate);
        progress(`drain ${system} ×${consumers} run ${run + 1}: ${rate.toFixed(0)} jobs/s`);
      }
    }
    const medians = new Map([...samples].map(([s, v]) => [s, summarize(v)?.median ?? 0]));
    const base = medians.get('pgboss') ?? 1;
    rows.push([
      String(consumers),
      ...SYSTEMS.map((s) => `${num(medians.get(s), 0)} (${num((medians.get(s) ?? 0) / base, 2)}×)`),
    ]);
  }
  return markdownTable(['consumer processes', ...SYSTEMS.map((s) => `${NAMES[s]} jobs/s (× pg-boss)`)], rows);
}

async function enqueue(): Promise<string> {
  const bulk = new Map<System, number[]>(SYSTEMS.map((s) => [s, []]));
  const p50 = new Map<System, number[]>(SYSTEMS.map((s) => [s, []]));
  const p99 = new Map<System, number[]>(SYSTEMS.map((s) => [s, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const system of SYSTEMS) {
      const p = await producer(system, fresh(system));
      await p.addOne(-1); // connect, create what is created on first use
      const began = monotonicMs();
      await p.addMany(JOBS, 1000);
      bulk.get(system)?.push(JOBS / ((monotonicMs() - began) / 1000));
      const latencies: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const t = monotonicMs();
        await p.addOne(i);
        latencies.push(monotonicMs() - t);
      }
      const s = summarize(latencies);
      p50.get(system)?.push(s?.median ?? 0);
      p99.get(system)?.push(s?.p99 ?? 0);
      await p.close();
      progress(
        `enqueue ${system} run ${run + 1}: bulk ${bulk.get(system)?.at(-1)?.toFixed(0)} jobs/s, single p50 ${ms(s?.median)} ms`,
      );
    }
  }
  const median = (m: Map<System, number[]>, s: System): number => summarize(m.get(s) ?? [])?.median ?? 0;
  const base = median(bulk, 'pgboss');
  return markdownTable(
    ['system', 'bulk enqueue jobs/s (batches of 1000, × pg-boss)', 'single enqueue p50 ms', 'p99 ms'],
    SYSTEMS.map((s) => [
      NAMES[s],
      `${num(median(bulk, s), 0)} (${num(median(bulk, s) / base, 2)}×)`,
      ms(median(p50, s)),
      ms(median(p99, s)),
    ]),
  );
}

/** Idle enqueue → start: one consumer process waits on an empty queue; each job is performed alone. */
async function latency(): Promise<string> {
  const rows: string[][] = [];
  for (const system of SYSTEMS) {
    const queue = fresh(system);
    const p = await producer(system, queue);
    await p.addOne(-1);
    const c = consumer(system, queue, { report: true, concurrency: 10 });
    await c.ready;
    while (c.starts.length < 1) await sleep(10);
    const samples: number[] = [];
    for (let i = 0; i < 100 * RUNS; i++) {
      const before = c.starts.length;
      const t = monotonicMs();
      await p.addOne(i);
      while (c.starts.length === before) await sleep(1);
      samples.push((c.starts.at(-1)?.t ?? t) - t);
      await sleep(20);
    }
    c.kill();
    await p.close();
    const s = summarize(samples);
    progress(`latency ${system}: p50 ${ms(s?.median)} ms, p99 ${ms(s?.p99)} ms`);
    rows.push([NAMES[system], String(s?.n), ms(s?.median), ms(s?.p99), ms(s?.max)]);
  }
  return markdownTable(['idle perform → handler starts', 'samples', 'p50 ms', 'p99 ms', 'max ms'], rows);
}

/** kill -9 of a shardwork consumer holding jobs in flight: time until each runs again elsewhere. */
async function recovery(): Promise<string> {
  const ttl = 2000;
  const samples: number[] = [];
  for (let run = 0; run < RUNS * 2; run++) {
    const queue = fresh('shardwork');
    const adapter = { ...shardworkAdapter(), partitions: 6, leaseTtlMs: ttl };
    const procs = Array.from({ length: 3 }, () =>
      consumer('shardwork', queue, { concurrency: 12, sleepMs: 60_000, report: true, adapter }),
    );
    await Promise.all(procs.map((c) => c.ready));
    const p = await producer('shardwork', queue, 6);
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
  }
  const s = summarize(samples);
  return markdownTable(
    ['kill -9 → in-flight job runs again', 'samples', 'p50 ms', 'p99 ms', 'max ms'],
    [
      [`shardwork (lease TTL ${ttl} ms)`, String(s?.n), ms(s?.median), ms(s?.p99), ms(s?.max)],
      ['pg-boss 12 (default expireInSeconds 900)', '–', 'about 900,000', '–', '–'],
      ['graphile-worker 0.18 (locks expire after 4 h)', '–', 'about 14,400,000', '–', '–'],
    ],
  );
}

progress(`PostgreSQL job bench on ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)}, Node ${process.version}`);
server = await startPostgres();
try {
  const out: string[] = [];
  if (sections.has('drain'))
    out.push(`### Drain (${JOBS} no-op jobs, concurrency ${CONCURRENCY} per process)\n`, await drain());
  if (sections.has('enqueue'))
    out.push(`\n### Enqueue (${JOBS} jobs in batches of 1000; then 1000 single)\n`, await enqueue());
  if (sections.has('latency')) out.push('\n### Idle latency\n', await latency());
  if (sections.has('recovery')) out.push('\n### Crash recovery\n', await recovery());
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await server.stop();
}
process.exit(0);
