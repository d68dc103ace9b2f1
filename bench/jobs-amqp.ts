/**
 * RabbitMQ job adapter benchmarks on one private broker, side by side with a
 * bare rabbitmq-client publisher and consumer doing the same work (durable
 * quorum queue, persistent messages, publisher confirms, manual acks, the same
 * prefetch): the ceiling on this broker. `pnpm bench:amqp [flags]`; markdown
 * on stdout, progress on stderr; results in docs/benchmarks.md.
 *
 *   --only LIST     publish,drain,delay,recovery (default: all)
 *   --runs N        runs per measurement, the median is reported (default 5)
 *   --jobs N        jobs per publish and drain run (default 20000)
 *   --prefetch N    consumer prefetch = the queue's concurrency (default 50)
 *   --inflight N    publishes awaiting their confirm at any time (default 100)
 */

import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { AmqpJobAdapter } from '@shardwork/jobs-amqp';
import { onLines, type RabbitTestServer, spawnSource, startRabbitServer } from '@shardwork/testkit';
import { type AsyncMessage, Connection } from 'rabbitmq-client';
import { markdownTable, ms, num, summarize } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'publish,drain,delay,recovery' },
    runs: { type: 'string', default: '5' },
    jobs: { type: 'string', default: '20000' },
    prefetch: { type: 'string', default: '50' },
    inflight: { type: 'string', default: '100' },
  },
});
const sections = new Set(values.only.split(','));
const RUNS = Number(values.runs);
const JOBS = Number(values.jobs);
const PREFETCH = Number(values.prefetch);
const INFLIGHT = Number(values.inflight);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const CHILD = fileURLToPath(new URL('./jobs-amqp-consumer.ts', import.meta.url));

let broker: RabbitTestServer;
let seq = 0;
const fresh = (): string => `b${process.pid}n${++seq}`;
const BODY = { i: 0, payload: 'x'.repeat(64) };

function adapterQueue(prefix: string, options: Record<string, unknown> = {}): JobQueue {
  const q = createJobQueue(new AmqpJobAdapter({ url: `${broker.url}?prefix=${prefix}`, ...options }), {
    concurrency: PREFETCH,
  });
  q.on('error', () => undefined);
  return q;
}

/** The bare client's queue: what the adapter declares for a work queue, minus the dead-lettering. */
async function bareQueue(conn: Connection, name: string): Promise<void> {
  await conn.queueDeclare({
    queue: name,
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 20 },
  });
}

/** Run `n` calls of `one(i)` with INFLIGHT of them outstanding at all times (a sliding window); returns calls/s. */
async function window(n: number, one: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(INFLIGHT, n) }, async () => {
      for (let i = next++; i < n; i = next++) await one(i);
    }),
  );
  return n / ((performance.now() - began) / 1000);
}

/** `perform` each job, INFLIGHT awaiting their confirm at once; returns jobs/s. */
function publishAdapter(q: JobQueue, n: number): Promise<number> {
  return window(n, (i) => q.perform({ handler: 'noop', args: { ...BODY, i } }));
}

async function publishBare(conn: Connection, queue: string, n: number): Promise<number> {
  const publisher = conn.createPublisher({ confirm: true });
  const rate = await window(n, (i) =>
    publisher.send(
      { routingKey: queue, durable: true, messageId: String(i), contentType: 'application/json' },
      Buffer.from(JSON.stringify({ ...BODY, i })),
    ),
  );
  await publisher.close();
  return rate;
}

/** CPU of the consume phase of the last drain: this process and the broker, seconds. */
let consumeCpu = { client: 0, broker: 0 };

function meter(): () => void {
  const broker0 = cpuSeconds(broker.pid);
  const client0 = process.cpuUsage();
  return () => {
    const client = process.cpuUsage(client0);
    consumeCpu = { client: (client.user + client.system) / 1e6, broker: cpuSeconds(broker.pid) - broker0 };
  };
}

/** Drain `n` queued jobs with a no-op handler; returns jobs/s. */
async function drainAdapter(n: number): Promise<number> {
  const prefix = fresh();
  const producer = adapterQueue(prefix);
  await publishAdapter(producer, n);
  await producer.stop();
  const q = adapterQueue(prefix);
  let done = 0;
  let finished: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    finished = resolve;
  });
  // From the first job to the last: the steady drain, without connecting and declaring (on both sides).
  let began = 0;
  q.register('noop', () => {
    if (done === 0) began = performance.now();
    if (++done === n) finished();
  });
  const metered = meter();
  await q.start();
  await all;
  metered();
  const rate = n / ((performance.now() - began) / 1000);
  await q.stop();
  return rate;
}

async function drainBare(conn: Connection, n: number): Promise<number> {
  const queue = `${fresh()}.bare`;
  await bareQueue(conn, queue);
  await publishBare(conn, queue, n);
  let done = 0;
  let finished: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    finished = resolve;
  });
  let began = 0;
  const metered = meter();
  const consumer = conn.createConsumer(
    { queue, queueOptions: { passive: true }, qos: { prefetchCount: PREFETCH }, concurrency: PREFETCH },
    async (message: AsyncMessage) => {
      if (done === 0) began = performance.now();
      // The client has parsed the JSON body already, as it has for the adapter.
      if (message.body !== undefined && ++done === n) finished();
    },
  );
  consumer.on('error', () => undefined);
  await all;
  metered();
  const rate = n / ((performance.now() - began) / 1000);
  await consumer.close();
  await conn.queueDelete({ queue });
  return rate;
}

/** CPU seconds of a process so far (user + system), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** A table row: both medians, their ratio, and the median of the ratios within each run (robust to drift between runs). */
function row(what: string, adapter: readonly number[], bare: readonly number[]): string[] {
  const a = summarize(adapter)?.median ?? 0;
  const b = summarize(bare)?.median ?? 0;
  const paired = summarize(adapter.map((x, i) => x / (bare[i] ?? Number.NaN)))?.median ?? 0;
  return [what, num(a, 0), num(b, 0), num(a / b, 2), num(paired, 2)];
}

async function throughput(): Promise<void> {
  const conn = new Connection({ url: broker.url });
  conn.on('error', () => undefined);
  const rows: string[][] = [];
  if (sections.has('publish')) {
    const adapter: number[] = [];
    const bare: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const queue = `${fresh()}.bare`;
      await bareQueue(conn, queue);
      bare.push(await publishBare(conn, queue, JOBS));
      await conn.queueDelete({ queue });
      const q = adapterQueue(fresh());
      adapter.push(await publishAdapter(q, JOBS));
      await q.stop();
      progress(`publish run ${run + 1}: adapter ${num(adapter[run], 0)}/s, bare ${num(bare[run], 0)}/s`);
    }
    rows.push(row('publish (confirmed)', adapter, bare));
  }
  if (sections.has('drain')) {
    const adapter: number[] = [];
    const bare: number[] = [];
    const cpuA = { broker: [] as number[], client: [] as number[] };
    const cpuB = { broker: [] as number[], client: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      bare.push(await drainBare(conn, JOBS));
      cpuB.broker.push(consumeCpu.broker);
      cpuB.client.push(consumeCpu.client);
      adapter.push(await drainAdapter(JOBS));
      cpuA.broker.push(consumeCpu.broker);
      cpuA.client.push(consumeCpu.client);
      progress(
        `drain run ${run + 1}: adapter ${num(adapter[run], 0)}/s (cpu broker ${num(cpuA.broker[run], 2)} s, client ${num(cpuA.client[run], 2)} s), ` +
          `bare ${num(bare[run], 0)}/s (cpu broker ${num(cpuB.broker[run], 2)} s, client ${num(cpuB.client[run], 2)} s)`,
      );
    }
    rows.push(row('drain (no-op handler, acked)', adapter, bare));
  }
  await conn.close();
  if (rows.length > 0) {
    process.stdout.write(
      `\n### Throughput, jobs/s (median of ${RUNS} runs of ${JOBS} jobs; prefetch ${PREFETCH}, ${INFLIGHT} publishes in flight)\n\n`,
    );
    process.stdout.write(
      `${markdownTable(['measure', 'jobs-amqp', 'bare rabbitmq-client', 'ratio of medians', 'median of per-run ratios'], rows)}\n`,
    );
  }
}

/** How late delayed jobs start, per delay (each delay is a different walk through the tiers). */
async function delays(): Promise<void> {
  const q = adapterQueue(fresh());
  const late = new Map<number, number[]>();
  q.register('later', (args) => {
    const delay = args.delay as number;
    const list = late.get(delay) ?? [];
    list.push(Date.now() - (args.due as number));
    late.set(delay, list);
  });
  await q.start();
  const DELAYS = [10, 100, 1000, 5000, 30_000];
  const PER = 20 * RUNS;
  for (let i = 0; i < PER; i++) {
    for (const delay of DELAYS) {
      const due = Date.now() + delay;
      await q.performAt({ handler: 'later', args: { delay, due } }, due);
    }
    await sleep(30);
  }
  const total = PER * DELAYS.length;
  for (let waited = 0; [...late.values()].reduce((s, l) => s + l.length, 0) < total && waited < 120_000; ) {
    await sleep(200);
    waited += 200;
  }
  await q.stop();
  const rows = DELAYS.map((delay) => {
    const s = summarize(late.get(delay) ?? []);
    return [`${delay} ms`, String(s?.n ?? 0), ms(s?.min), ms(s?.median), ms(s?.p99), ms(s?.max)];
  });
  process.stdout.write(`\n### Delay lateness (start − due time, ms; ${PER} jobs per delay)\n\n`);
  process.stdout.write(`${markdownTable(['delay', 'jobs', 'min', 'p50', 'p99', 'max'], rows)}\n`);
}

/** kill -9 of a consumer holding jobs: how long until another consumer runs them again. */
async function recovery(): Promise<void> {
  const samples: number[] = [];
  let lost = 0;
  for (let run = 0; run < RUNS; run++) {
    const prefix = fresh();
    const child: ChildProcess = spawnSource(CHILD, {
      env: { ...process.env, BENCH_AMQP_URL: `${broker.url}?prefix=${prefix}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const held = new Set<string>();
    const ready = new Promise<void>((resolve) => {
      onLines(child.stdout, (line) => {
        const m = JSON.parse(line) as { started?: string; ready?: boolean };
        if (m.ready === true) resolve();
        if (m.started !== undefined) held.add(m.started);
      });
    });
    await ready;
    const producer = adapterQueue(prefix);
    await producer.performMany(Array.from({ length: 10 }, (_, i) => ({ handler: 'hold', args: { i } })));
    while (held.size < 10) await sleep(5);
    const survivor = adapterQueue(prefix);
    const again = new Map<string, number>();
    survivor.register('hold', (_args, ctx) => void again.set(ctx.id, performance.now()));
    await survivor.start();
    const killedAt = performance.now();
    child.kill('SIGKILL');
    for (let waited = 0; again.size < held.size && waited < 10_000; waited += 5) await sleep(5);
    lost += [...held].filter((id) => !again.has(id)).length;
    const last = Math.max(...[...again.values()]);
    samples.push(last - killedAt);
    progress(`recovery run ${run + 1}: all ${again.size} held jobs ran again ${ms(last - killedAt)} ms after kill -9`);
    await survivor.stop();
    await producer.stop();
  }
  const s = summarize(samples);
  process.stdout.write(`\n### kill -9 of a consumer holding 10 running jobs (${RUNS} runs)\n\n`);
  process.stdout.write(
    `${markdownTable(
      ['measure', 'median', 'max', 'jobs not run again'],
      [['kill → the last held job started elsewhere', ms(s?.median), ms(s?.max), String(lost)]],
    )}\n`,
  );
}

broker = await startRabbitServer();
try {
  progress(`broker on ${broker.url}`);
  if (sections.has('publish') || sections.has('drain')) await throughput();
  if (sections.has('delay')) await delays();
  if (sections.has('recovery')) await recovery();
} finally {
  await broker.stop();
}
