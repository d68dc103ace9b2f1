/**
 * Multi-process fault runs of the Redis job queue: a private redis-server with
 * an append-only file, consumer replicas as child processes (each behind its
 * own TCP proxy so its connection can be cut), a producer in this process,
 * faults (kill -9, SIGSTOP, Redis restart, cut), and a checker over what the
 * handlers recorded. Used by test/jobs-redis-faults.test.ts and by the soak CLI
 * (test/jobs-soak.ts).
 */

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '@shardwork/core';
import { monotonicMs } from '@shardwork/core/testing';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { partitionOf } from '@shardwork/jobs/adapter';
import { onLines, type RedisTestServer, spawnSource, startRedisServer, TcpProxy } from '@shardwork/testkit';
import type { JobRecordLine, JobReplicaSpec } from './job-replica-main.js';

const MAIN = fileURLToPath(new URL('./job-replica-main.ts', import.meta.url));

/**
 * A fault the harness applied, on the monotonic clock the records use:
 * to one consumer (its pid) or to the server (`pid` undefined). A job that
 * starts twice is explained only by a fault on the consumer that ran the
 * earlier attempt, or on the server, around that attempt.
 */
export interface FaultSpan {
  readonly what: string;
  readonly pid: number | undefined;
  readonly from: number;
  to: number;
}

/** The faults of one run. */
export class FaultLog {
  readonly spans: FaultSpan[] = [];

  /** A fault begins now; returns its span, to {@link FaultLog.end} (open spans last forever, like a kill). */
  begin(what: string, pid: number | undefined): FaultSpan {
    const span: FaultSpan = { what, pid, from: monotonicMs(), to: Number.POSITIVE_INFINITY };
    this.spans.push(span);
    return span;
  }

  end(span: FaultSpan | undefined): void {
    if (span !== undefined && span.to === Number.POSITIVE_INFINITY) span.to = monotonicMs();
  }

  /** Run `during` as a fault of `pid` (or the server). */
  async around<T>(what: string, pid: number | undefined, during: () => Promise<T>): Promise<T> {
    const span = this.begin(what, pid);
    try {
      return await during();
    } finally {
      this.end(span);
    }
  }
}

/** One consumer child. */
export class JobReplica {
  readonly #child: ChildProcess;
  readonly log: string[] = [];
  readonly exited: Promise<void>;
  readonly ready: Promise<void>;

  readonly #faults: FaultLog | undefined;
  #paused: FaultSpan | undefined;

  constructor(spec: JobReplicaSpec, faults?: FaultLog) {
    this.#faults = faults;
    this.#child = spawnSource(MAIN, {
      env: { ...process.env, SHARDWORK_JOB_REPLICA: JSON.stringify(spec) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
    this.ready = new Promise((resolve, reject) => {
      onLines(this.#child.stdout, (line) => {
        if (this.log.length < 500) this.log.push(line);
        if (line.includes('"type":"ready"')) resolve();
      });
      void this.exited.then(() => reject(new Error(`job replica exited before ready:\n${this.log.join('\n')}`)));
    });
    this.ready.catch(() => undefined);
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      if (this.log.length < 500) this.log.push(chunk.toString());
    });
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The process id (for the fault log and the checker). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Send a signal; SIGSTOP to SIGCONT and SIGKILL are logged as faults of this consumer. */
  signal(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    if (signal === 'SIGSTOP' && this.#paused === undefined) this.#paused = this.#faults?.begin('SIGSTOP', this.pid);
    if (signal === 'SIGKILL') this.#faults?.begin('kill -9', this.pid);
    this.#child.kill(signal);
    if (signal === 'SIGCONT') {
      this.#faults?.end(this.#paused);
      this.#paused = undefined;
    }
  }

  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** The outcome of {@link JobCluster.check}. */
export interface JobCheckReport {
  readonly violations: string[];
  readonly accepted: number;
  readonly completed: number;
  /** Jobs that started more than once (allowed only for jobs in flight at a fault). */
  readonly duplicates: number;
  readonly ticks: number;
}

/** Options of a cluster. */
export interface JobClusterOptions {
  readonly replicas: number;
  readonly partitions?: number;
  readonly ttlMs?: number;
  readonly concurrency?: number;
}

/**
 * What the Redis and RabbitMQ fault clusters share: consumer replicas as child
 * processes, each behind its own TCP proxy (so that its connection can be cut
 * or stalled), the log of every fault applied, the jobs the producer's perform
 * resolved for, and the folder of the replicas' record files.
 */
export abstract class ReplicaSet {
  readonly dir: string;
  readonly replicas: JobReplica[] = [];
  readonly proxies: TcpProxy[] = [];
  readonly accepted = new Map<string, AcceptedJob>();
  /** Every fault applied through the replicas and the methods below. */
  readonly faults = new FaultLog();
  abstract readonly producer: JobQueue;
  readonly #cuts = new Map<number, FaultSpan>();
  #spawned = 0;

  protected constructor(dirPrefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), dirPrefix));
  }

  /** Start one more consumer replica behind a proxy to `port`; `spec` gets the proxy's port and the record file. Returns its index. */
  protected async spawnBehindProxy(
    port: number,
    spec: (proxyPort: number, recordFile: string) => JobReplicaSpec,
  ): Promise<number> {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port });
    const index = this.#spawned++;
    this.proxies[index] = proxy;
    this.replicas[index] = new JobReplica(spec(proxy.port, join(this.dir, `replica-${index}.jsonl`)), this.faults);
    return index;
  }

  /** Cut (reset, refuse) or stall replica `index`'s connections until {@link ReplicaSet.heal}; logged as its fault. */
  isolate(index: number, how: 'cut' | 'stall' = 'cut'): void {
    const proxy = this.proxies[index];
    if (proxy === undefined || this.#cuts.has(index)) return;
    this.#cuts.set(index, this.faults.begin(how, this.replicas[index]?.pid));
    if (how === 'cut') proxy.cut();
    else proxy.stall();
  }

  /** Let replica `index` reach its server again. */
  heal(index: number): void {
    this.proxies[index]?.heal();
    this.faults.end(this.#cuts.get(index));
    this.#cuts.delete(index);
  }

  /** Every record line the replicas wrote so far. */
  records(): JobRecordLine[] {
    return readRecords(this.dir, this.#spawned);
  }

  /** Stop the replicas, the producer and the proxies, then `servers`, and remove the record files. */
  protected async closeWith(...servers: ({ stop(): Promise<void> } | undefined)[]): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop()));
    await this.producer.stop({ timeoutMs: 0 }).catch(() => undefined);
    await Promise.all(this.proxies.map((p) => p.close()));
    for (const server of servers) await server?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A replica set whose store can say whether a job is still waiting or
 * running (Redis, PostgreSQL): the producer's mix of jobs, and the check of
 * JOBS.md's promises with the store as the judge of completion.
 */
export abstract class StoredJobCluster extends ReplicaSet {
  readonly #seqNext = new Map<string, number>();

  /** Whether the job is still in the store and has not finished. */
  protected abstract stored(id: string): Promise<boolean>;

  /** Share of the produced jobs that are `tx` jobs (handlers that write in `ctx.transaction`). @defaultValue 0 */
  protected readonly txShare: number = 0;

  /** Enqueue `count` jobs of every kind, `perSecond` of them a second. */
  async produce(count: number, perSecond: number, random: () => number = Math.random): Promise<void> {
    const gap = 1000 / perSecond;
    const began = Date.now();
    for (let i = 0; i < count; i++) {
      const kind = random();
      const ms = 5 + Math.floor(random() * 30);
      let job: {
        handler: 'work' | 'seq' | 'uniq' | 'limited' | 'tx';
        key?: string;
        args: { n?: number; u?: number; ms: number };
      };
      if (this.txShare > 0 && random() < this.txShare) {
        job = { handler: 'tx', args: { ms: 20 + ms } };
      } else if (kind < 0.4) {
        job = { handler: 'work', args: { ms }, ...(random() < 0.5 ? { key: `w${i % 7}` } : {}) };
      } else if (kind < 0.75) {
        const key = `s${Math.floor(random() * 4)}`;
        const n = this.#seqNext.get(key) ?? 0;
        this.#seqNext.set(key, n + 1);
        job = { handler: 'seq', key, args: { n, ms } };
      } else if (kind < 0.9) {
        job = { handler: 'uniq', args: { u: Math.floor(random() * 3), ms: 20 + ms } };
      } else {
        job = { handler: 'limited', args: { ms: 20 + ms } };
      }
      const result = await this.producer.perform(job);
      if (!result.duplicate) {
        this.accepted.set(result.id, {
          h: job.handler,
          ...(job.key === undefined ? {} : { key: job.key }),
          ...(job.args.n === undefined ? {} : { n: job.args.n }),
          ...(job.args.u === undefined ? {} : { u: job.args.u }),
        });
      }
      const wait = began + (i + 1) * gap - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  /** Enqueue `count` keyless `work` (or `handler`) jobs whose handlers take `ms` each (spread over the partitions). */
  async performLong(count: number, ms: number, handler: 'work' | 'tx' = 'work'): Promise<void> {
    for (let i = 0; i < count; i++) {
      const result = await this.producer.perform({ handler, args: { ms } });
      this.accepted.set(result.id, { h: handler });
    }
  }

  /** Wait until every accepted job completed (or `withinMs` passes). */
  async settle(withinMs: number): Promise<void> {
    const began = Date.now();
    for (;;) {
      const done = new Set(
        this.records()
          .filter((r) => r.k === 'done' || r.k === 'dead')
          .map((r) => r.id),
      );
      let open = 0;
      for (const id of this.accepted.keys()) if (!done.has(id) && (await this.stored(id))) open++;
      if (open === 0) return;
      if (Date.now() - began > withinMs) return;
      await sleep(200);
    }
  }

  /**
   * Check the invariants of JOBS.md over the records, with the store as the judge
   * of completion: a replica killed right after its completion was recorded
   * never writes its `done` line, so a job without one counts as completed
   * when the store says it finished (only a recorded completion finishes it).
   */
  async check(): Promise<JobCheckReport> {
    const records = this.records();
    const violations: string[] = [];
    const doneCount = new Map<string, number>();
    for (const r of records.filter((r) => r.k === 'done' || r.k === 'dead')) {
      doneCount.set(r.id, (doneCount.get(r.id) ?? 0) + 1);
    }
    // Nothing lost, no stale completion recorded.
    for (const [id, job] of this.accepted) {
      const n = doneCount.get(id) ?? 0;
      if (n === 0) {
        if (await this.stored(id)) violations.push(`lost: ${job.h} ${id} accepted but never completed`);
        else doneCount.set(id, 1);
      }
      if (n > 1) violations.push(`stale completion: ${job.h} ${id} recorded as completed ${n} times`);
    }
    const analysis = analyzeRecords(this.accepted, records, { fenced: true, faults: this.faults });
    return {
      violations: [...violations, ...analysis.violations],
      accepted: this.accepted.size,
      completed: [...this.accepted.keys()].filter((id) => doneCount.has(id)).length,
      duplicates: analysis.duplicates,
      ticks: analysis.ticks,
    };
  }
}

/** A Redis job cluster under test. See the module documentation. */
export class JobCluster extends StoredJobCluster {
  readonly server: RedisTestServer;
  readonly prefix: string;
  readonly producer: JobQueue;
  readonly #options: Required<JobClusterOptions>;

  private constructor(server: RedisTestServer, options: Required<JobClusterOptions>) {
    super('shardwork-jobfaults-');
    this.server = server;
    this.#options = options;
    this.prefix = `jf${process.pid}${Date.now().toString(36)}:`;
    this.producer = createJobQueue(this.#url(server.port), { adapter: { enqueueTimeoutMs: 10_000 } });
    this.producer.on('error', () => undefined);
    // A producer registers the definitions it enqueues (never starting): that gives perform the
    // unique key function; the consumers publish which handlers are ordered themselves.
    this.producer.register('uniq', () => undefined, { unique: (args) => String(args.u) });
  }

  static async start(options: JobClusterOptions): Promise<JobCluster> {
    const server = await startRedisServer({ aof: true });
    const cluster = new JobCluster(server, {
      partitions: 6,
      ttlMs: 1000,
      concurrency: 8,
      ...options,
    });
    for (let i = 0; i < options.replicas; i++) await cluster.spawn();
    await Promise.all(cluster.replicas.map((r) => r.ready));
    return cluster;
  }

  /** Partitions of the cluster's queue. */
  get partitionCount(): number {
    return this.#options.partitions;
  }

  #url(port: number): string {
    const o = this.#options;
    return `redis://127.0.0.1:${port}?prefix=${this.prefix}&partitions=${o.partitions}&leaseTtlMs=${o.ttlMs}`;
  }

  /** Start one more consumer replica behind its own proxy; returns its index. */
  spawn(): Promise<number> {
    return this.spawnBehindProxy(this.server.port, (port, recordFile) => ({
      url: this.#url(port),
      recordFile,
      concurrency: this.#options.concurrency,
    }));
  }

  /** Restart Redis (a fault of every consumer). */
  async restartServer(options: Parameters<RedisTestServer['restart']>[0]): Promise<void> {
    await this.faults.around('redis restart', undefined, () => this.server.restart(options));
  }

  /** Whether the job's record is still in Redis and it has not finished (a finished job may be kept, in `fin`). */
  protected async stored(id: string): Promise<boolean> {
    const base = `${this.prefix}{default}:`;
    if ((await this.server.command('HEXISTS', `${base}jobs`, id)).startsWith(':0')) return false;
    return (await this.server.command('HEXISTS', `${base}fin`, id)).startsWith(':0');
  }

  /** Where a job is in Redis now (raw replies), for the message of a lost job. */
  async locate(id: string): Promise<string> {
    const b = `${this.prefix}{default}:`;
    const ask = async (...args: string[]): Promise<string> =>
      (await this.server.command(...args).catch((e: unknown) => String(e))).replace(/\r\n/g, ' ').trim();
    const meta = await ask('HGET', `${b}meta`, id);
    const p = /"p":(\d+)/.exec(meta)?.[1] ?? '?';
    const h = /"h":"([^"]+)"/.exec(meta)?.[1] ?? 'work';
    const parts = [
      `record ${await ask('HEXISTS', `${b}jobs`, id)}`,
      `meta ${meta}`,
      `run ${await ask('HGET', `${b}p${p}:run`, id)}`,
      `due ${await ask('ZSCORE', `${b}p${p}:due`, id)}`,
      `ready@${await ask('LPOS', `${b}p${p}:r:${h}`, id)} of ${await ask('LLEN', `${b}p${p}:r:${h}`)}`,
      `dead ${await ask('ZSCORE', `${b}dead`, id)}`,
      `fence ${await ask('HGET', `${b}fence`, p)}`,
      `idle ${await ask('GET', `${b}p${p}:idle`)}`,
    ];
    return `${id} (partition ${p}): ${parts.join('; ')}`;
  }

  close(): Promise<void> {
    return this.closeWith(this.server);
  }
}

/** A job the producer's perform resolved for. */
export interface AcceptedJob {
  readonly h: string;
  readonly key?: string;
  readonly n?: number;
  readonly u?: number;
}

/** Ticks newer than this (before the newest one seen) may still be on their way: not judged missing. */
const TICK_SETTLE_MS = 3000;
/** The periodic `tick` job's schedule: every second. */
const TICK_PERIOD_MS = 1000;
/** A fault this long before a job's earlier start still explains its second one (a fetch just before a cut). */
const FAULT_LEAD_MS = 2000;

/**
 * The checks over what the handlers recorded that hold for every adapter:
 * completions from the latest attempt (with `fenced` stores only), order per
 * key of the `seq` jobs, `uniq` jobs never two at once, at most two `limited`
 * jobs at once, one enqueue per cron tick and no tick missing, no job dead
 * (the handlers never fail on their own: lost ownership must not count as a
 * failure), and no job started twice without a fault on the consumer that
 * ran its earlier attempt (or on the server) around it; and how many jobs
 * started twice.
 */
export function analyzeRecords(
  accepted: ReadonlyMap<string, AcceptedJob>,
  records: readonly JobRecordLine[],
  { fenced, faults }: { fenced: boolean; faults: FaultLog },
): { violations: string[]; duplicates: number; ticks: number } {
  const violations: string[] = [];
  const by = (k: JobRecordLine['k']) => records.filter((r) => r.k === k);
  const starts = new Map<string, number>();
  const lastStart = new Map<string, JobRecordLine>();
  for (const r of by('start')) {
    starts.set(r.id, (starts.get(r.id) ?? 0) + 1);
    const last = lastStart.get(r.id);
    if (last === undefined || r.t > last.t) lastStart.set(r.id, r);
  }
  // A completion must come from the job's latest attempt: one from an attempt
  // that a newer owner superseded (a zombie) is a stale completion.
  for (const done of fenced ? by('done') : []) {
    const last = lastStart.get(done.id);
    if (last !== undefined && (last.pid !== done.pid || last.tok !== done.tok)) {
      violations.push(
        `stale completion: ${done.h} ${done.id} completed by pid ${done.pid} token ${done.tok}, but its latest attempt ran in pid ${last.pid} token ${last.tok}`,
      );
    }
  }
  const duplicates = [...starts.values()].filter((n) => n > 1).length;
  const effects = by('effect');
  const effectsOf = new Map<string, JobRecordLine[]>();
  for (const r of effects) effectsOf.set(r.id, [...(effectsOf.get(r.id) ?? []), r]);
  /** From the first to the last owned effect of a job, over all its attempts (for order). */
  const span = (id: string): [number, number] | undefined => {
    const ts = (effectsOf.get(id) ?? []).map((r) => r.t);
    return ts.length === 0 ? undefined : [Math.min(...ts), Math.max(...ts)];
  };
  /** The same per attempt: a run cut short by a fault and its re-run are two intervals (for overlap checks). */
  const attemptSpans = (id: string): [number, number][] => {
    const byAttempt = new Map<string, number[]>();
    for (const r of effectsOf.get(id) ?? []) {
      const key = `${r.pid}|${r.tok}|${r.att}`;
      byAttempt.set(key, [...(byAttempt.get(key) ?? []), r.t]);
    }
    return [...byAttempt.values()].map((ts) => [Math.min(...ts), Math.max(...ts)]);
  };
  // Order per key: every owned effect of job n happens before any of job n + 1.
  const keys = new Set([...accepted.values()].filter((j) => j.h === 'seq').map((j) => j.key as string));
  for (const key of keys) {
    const jobs = [...accepted.entries()]
      .filter(([, j]) => j.h === 'seq' && j.key === key)
      .sort(([, a], [, b]) => (a.n as number) - (b.n as number));
    for (let i = 1; i < jobs.length; i++) {
      const [prevId, prev] = jobs[i - 1] as [string, AcceptedJob];
      const [id, job] = jobs[i] as [string, AcceptedJob];
      const a = span(prevId);
      const b = span(id);
      if (a !== undefined && b !== undefined && b[0] < a[1]) {
        violations.push(
          `order: key ${key} job n=${job.n} acted at ${b[0].toFixed(1)} before n=${prev.n} finished at ${a[1].toFixed(1)}`,
        );
      }
    }
  }
  // Unique: two jobs with one unique key never act at once.
  for (const u of [0, 1, 2]) {
    const spans = [...accepted.entries()]
      .filter(([, j]) => j.h === 'uniq' && j.u === u)
      .flatMap(([id]) => attemptSpans(id).map((s) => [id, s] as const))
      .sort((a, b) => a[1][0] - b[1][0]);
    for (let i = 1; i < spans.length; i++) {
      const prev = spans[i - 1] as readonly [string, [number, number]];
      const cur = spans[i] as readonly [string, [number, number]];
      if (cur[0] !== prev[0] && cur[1][0] < prev[1][1]) {
        violations.push(`unique: ${prev[0]} and ${cur[0]} (u=${u}) acted at once`);
      }
    }
  }
  // maxConcurrency 2 across the cluster.
  const limited = [...accepted.entries()].filter(([, j]) => j.h === 'limited').flatMap(([id]) => attemptSpans(id));
  const events = limited.flatMap(([a, b]) => [
    [a, 1],
    [b, -1],
  ]) as [number, number][];
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  for (const [, d] of events) {
    now += d;
    if (now > 2) {
      violations.push(`maxConcurrency: ${now} limited jobs acted at once`);
      break;
    }
  }
  // One enqueue per cron tick.
  const perTick = new Map<number, Set<string>>();
  for (const r of by('start').filter((r) => r.h === 'tick')) {
    const set = perTick.get(r.at as number) ?? new Set();
    set.add(r.id);
    perTick.set(r.at as number, set);
  }
  for (const [tick, ids] of perTick) {
    if (ids.size > 1) violations.push(`cron: tick ${new Date(tick).toISOString()} enqueued ${ids.size} times`);
  }
  violations.push(...missingTicks([...perTick.keys()]));
  // Nothing dies here: the handlers never fail, so a dead job is an attempt counted as failed that was not.
  for (const r of by('dead')) {
    violations.push(
      `dead: ${r.h} ${r.id} died (${r.reason ?? '?'}) at attempt ${r.att ?? '?'} though its handler never failed`,
    );
  }
  violations.push(...unexplainedDuplicates(by('start'), faults));
  return { violations, duplicates, ticks: perTick.size };
}

/** Every-second ticks missing between the oldest and the newest settled tick seen. */
function missingTicks(ticks: number[]): string[] {
  const sorted = ticks.sort((a, b) => a - b);
  const newest = sorted[sorted.length - 1] ?? 0;
  const settled = sorted.filter((t) => t <= newest - TICK_SETTLE_MS);
  const missing: string[] = [];
  for (let i = 1; i < settled.length; i++) {
    const gap = (settled[i] as number) - (settled[i - 1] as number);
    for (
      let t = (settled[i - 1] as number) + TICK_PERIOD_MS;
      gap > TICK_PERIOD_MS && t < (settled[i] as number);
      t += TICK_PERIOD_MS
    ) {
      missing.push(`cron: tick ${new Date(t).toISOString()} was never enqueued`);
    }
  }
  return missing;
}

/** Second starts of a job with no fault on the earlier attempt's consumer (or the server) around them. */
function unexplainedDuplicates(starts: readonly JobRecordLine[], faults: FaultLog): string[] {
  const byJob = new Map<string, JobRecordLine[]>();
  for (const r of starts) byJob.set(r.id, [...(byJob.get(r.id) ?? []), r]);
  const found: string[] = [];
  for (const [id, runs] of byJob) {
    if (runs.length < 2) continue;
    runs.sort((a, b) => a.t - b.t);
    for (let i = 1; i < runs.length; i++) {
      const a = runs[i - 1] as JobRecordLine;
      const b = runs[i] as JobRecordLine;
      const explained = faults.spans.some(
        (f) => (f.pid === undefined || f.pid === a.pid) && f.from <= b.t && f.to >= a.t - FAULT_LEAD_MS,
      );
      if (!explained) {
        found.push(
          `duplicate without a fault: ${a.h} ${id} started on pid ${a.pid} (attempt ${a.att}, token ${a.tok}) at ${a.t.toFixed(1)} and again on pid ${b.pid} (attempt ${b.att}, token ${b.tok}) at ${b.t.toFixed(1)}`,
        );
      }
    }
  }
  return found;
}

/** Every record line that replicas `0 … count - 1` wrote to `dir`. */
export function readRecords(dir: string, count: number): JobRecordLine[] {
  const lines: JobRecordLine[] = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    try {
      text = readFileSync(join(dir, `replica-${i}.jsonl`), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        lines.push(JSON.parse(line) as JobRecordLine);
      } catch {
        // a line cut by a kill -9
      }
    }
  }
  return lines;
}

/** The replica that owns the partition of the `tick` periodic job (its schedule's owner). */
export async function cronOwner(c: StoredJobCluster & { readonly partitionCount: number }): Promise<number> {
  const partition = partitionOf('tick', c.partitionCount);
  for (;;) {
    const owner = (await c.producer.partitions()).find((p) => p.queue === 'default' && p.partition === partition);
    const index = c.replicas.findIndex((r) => r.alive && r.pid === owner?.pid);
    if (index >= 0) return index;
    await sleep(100);
  }
}

/** Resolve `leadMs` before the next whole second that is at least `leadMs` away (the `tick` job runs every second). */
export async function untilBeforeTick(leadMs: number): Promise<void> {
  const now = Date.now();
  let tick = Math.ceil(now / 1000) * 1000;
  while (tick - leadMs < now) tick += 1000;
  await sleep(tick - leadMs - now);
}
