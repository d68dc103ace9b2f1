import {
  type Discovery,
  inspectSnapshot,
  type ServiceHealth,
  type ServiceInspection,
  type Snapshot,
} from '@shardwork/core';
import type { AdminJobQueue, CountedState, JobInfo, JobState, JobStats } from '@shardwork/jobs';
import { isUnsupported, JobLookups, type JobView } from './job-data.js';
import { lastFullMinute, readThroughput, type StoreThroughput } from './throughput.js';

/** One change of a shard's owner between two consecutive snapshots. */
export interface Movement {
  readonly at: number;
  readonly service: string;
  readonly shard: number;
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly token: number | undefined;
}

/** Why the last read of a backend failed, and since when the data shown is old. */
export interface BackendProblem {
  readonly backend: string;
  readonly reason: string;
  /** When the data still shown was read, ms since the epoch (undefined: never read). */
  readonly dataFrom: number | undefined;
}

/** One service on the services page. */
export interface ServiceView {
  readonly name: string;
  readonly snapshot: Snapshot;
  /**
   * `ok`, `degraded` (it runs with shards unowned), `stopped` (records but
   * no member and no claim: shown greyed, with a Forget action) or `absent`
   * (no records), as `inspectSnapshot` of `@shardwork/core` says.
   */
  readonly health: ServiceHealth;
}

/** What the services page shows. */
export interface ServicesView {
  readonly services: readonly ServiceView[];
  /** The discovery backend can forget a stopped service (`Discovery.forgetService`). */
  readonly canForget: boolean;
  readonly movements: readonly Movement[];
  readonly readAt: number | undefined;
  readonly problem: BackendProblem | undefined;
}

/** Counts of one queue or handler, with the oldest ready job's wait. */
export interface QueueRow {
  readonly name: string;
  readonly counts: Readonly<Record<CountedState, number>>;
  readonly paused?: boolean;
  /**
   * Handlers only: live consumer processes that registered the handler, as
   * the job backend reports it (`undefined` where it cannot know).
   */
  readonly consumers?: number | undefined;
  readonly waitMs: number | undefined;
  /** Completions per second over the last window, when the queue runs in this process. */
  readonly throughput: number | undefined;
  /** Queues only: attempts completed in the last full minute, as the job store counts them (`throughput()`). */
  readonly completedLastMinute?: number | undefined;
}

/** What the queues page shows. */
export interface QueuesView {
  readonly configured: boolean;
  readonly queues: readonly QueueRow[];
  readonly handlers: readonly QueueRow[];
  readonly total: Readonly<Record<CountedState, number>> | undefined;
  readonly throughputKnown: boolean;
  /** The store's per-minute counts for the charts; `undefined` before the first read. */
  readonly storeThroughput?: StoreThroughput | undefined;
  readonly readAt: number | undefined;
  readonly problem: BackendProblem | undefined;
}

/** One page of jobs in one state. */
export interface JobsView {
  readonly configured: boolean;
  readonly state: JobState;
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly jobs: readonly JobInfo[];
  readonly readAt: number | undefined;
  readonly problem: BackendProblem | undefined;
  /** Set when the job backend cannot list jobs at all (`UnsupportedFeatureError`): its message. */
  readonly unsupported?: string | undefined;
}

/** {@link DashboardData.forget} refused before asking the backend; the message says why. */
export class ForgetRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForgetRefusedError';
  }
}

const MOVEMENTS_KEPT = 50;
const THROUGHPUT_WINDOW_MS = 10_000;

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Settle with `promise`, or reject after `ms` (the read itself is left to finish or fail on its own). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Show a backend URL without credentials. */
export function describeBackend(kind: string, source: unknown): string {
  if (typeof source !== 'string') return `${kind} backend`;
  try {
    const url = new URL(source);
    url.username = '';
    url.password = '';
    url.search = '';
    const text = url.toString();
    return `${kind} at ${url.pathname === '/' ? text.slice(0, -1) : text}`;
  } catch {
    return `${kind} backend`;
  }
}

/**
 * Reads the backends for the pages, each read under a deadline, and keeps the
 * last good answer so that a page still renders (with a banner) while a
 * backend is down. Keeps the previous snapshot per service to list movements.
 */
export class DashboardData {
  readonly #discovery: Discovery;
  readonly #jobs: AdminJobQueue | undefined;
  readonly #services: readonly string[] | undefined;
  readonly #timeoutMs: number;
  readonly #discoveryName: string;
  readonly #jobsName: string;
  readonly #previous = new Map<string, Map<number, { owner: string; token: number }>>();
  #movements: Movement[] = [];
  #servicesView: ServicesView;
  #servicesRead: Promise<ServicesView> | undefined;
  #lastStats:
    | { stats: JobStats; waits: Map<string, number | undefined>; throughput: StoreThroughput; at: number }
    | undefined;
  #jobsProblem: BackendProblem | undefined;
  readonly #lastPages = new Map<string, JobsView>();
  readonly #completions: { at: number; queue: string; handler: string }[] = [];
  readonly #unsubscribe: (() => void) | undefined;
  readonly #pending = new Map<string, Promise<unknown>>();
  readonly #lookups: JobLookups;

  constructor(options: {
    discovery: Discovery;
    discoverySource: unknown;
    jobs: AdminJobQueue | undefined;
    jobsSource: unknown;
    services: readonly string[] | undefined;
    timeoutMs: number;
    inProcessJobs: boolean;
  }) {
    this.#discovery = options.discovery;
    this.#jobs = options.jobs;
    this.#services = options.services;
    this.#timeoutMs = options.timeoutMs;
    this.#discoveryName = describeBackend('Discovery', options.discoverySource);
    this.#jobsName = describeBackend('Job queue', options.jobsSource);
    this.#lookups = new JobLookups(options.jobs, this.#jobsName, (key, start) => this.#read(key, start));
    this.#servicesView = {
      services: [],
      canForget: this.canForget,
      movements: [],
      readAt: undefined,
      problem: undefined,
    };
    // Completions are only observable in the process that runs the jobs: counts by state say nothing about them.
    if (options.inProcessJobs && options.jobs !== undefined) {
      this.#unsubscribe = options.jobs.on('job:completed', ({ job }) => {
        this.#completions.push({ at: Date.now(), queue: job.queue, handler: job.handler });
        this.#trimCompletions();
      });
    }
  }

  /** Whether a job queue is configured. */
  get hasJobs(): boolean {
    return this.#jobs !== undefined;
  }

  /** Stop listening to the in-process queue. */
  dispose(): void {
    this.#unsubscribe?.();
  }

  /** Services with snapshots; concurrent callers share one read. */
  services(): Promise<ServicesView> {
    this.#servicesRead ??= this.#readServices().finally(() => {
      this.#servicesRead = undefined;
    });
    return this.#servicesRead;
  }

  async #readServices(): Promise<ServicesView> {
    try {
      let names = this.#services;
      if (names === undefined) {
        if (typeof this.#discovery.services !== 'function') {
          throw new Error('this discovery backend cannot list services; pass the services option');
        }
        const discovery = this.#discovery;
        names = [
          ...(await this.#read('services', () =>
            (discovery.services as () => Promise<readonly string[]>).call(discovery),
          )),
        ].sort();
      }
      const snapshots = await Promise.all(
        names.map((name) => this.#read(`snapshot:${name}`, () => inspectSnapshot(this.#discovery, name))),
      );
      const now = Date.now();
      const services = names.map((name, i): ServiceView => {
        const snapshot = snapshots[i] as ServiceInspection;
        this.#record(name, snapshot, now);
        return { name, snapshot, health: snapshot.health };
      });
      this.#servicesView = {
        services,
        canForget: this.canForget,
        movements: [...this.#movements],
        readAt: now,
        problem: undefined,
      };
    } catch (error) {
      this.#servicesView = {
        ...this.#servicesView,
        problem: { backend: this.#discoveryName, reason: reasonOf(error), dataFrom: this.#servicesView.readAt },
      };
    }
    return this.#servicesView;
  }

  #record(service: string, snapshot: Snapshot, at: number): void {
    const current = new Map(snapshot.claims.map((c) => [c.shard, { owner: c.owner, token: c.token }]));
    const previous = this.#previous.get(service);
    this.#previous.set(service, current);
    if (previous === undefined) return; // the first look is a baseline, not a movement
    for (let shard = 0; shard < Math.max(snapshot.shardCount ?? 0, ...previous.keys(), -1) + 1; shard++) {
      const before = previous.get(shard);
      const after = current.get(shard);
      if (before?.owner === after?.owner) continue;
      this.#movements.unshift({ at, service, shard, from: before?.owner, to: after?.owner, token: after?.token });
    }
    if (this.#movements.length > MOVEMENTS_KEPT) this.#movements.length = MOVEMENTS_KEPT;
  }

  /**
   * Run `start` under the deadline, unless the same read is still pending from
   * an earlier poll: then wait for that one, so a stalled backend does not
   * collect one more read per poll.
   */
  #read<T>(key: string, start: () => Promise<T>): Promise<T> {
    let raw = this.#pending.get(key) as Promise<T> | undefined;
    if (raw === undefined) {
      const started = start();
      const clear = (): void => {
        if (this.#pending.get(key) === started) this.#pending.delete(key);
      };
      started.then(clear, clear);
      this.#pending.set(key, started);
      raw = started;
    }
    return withTimeout(raw, this.#timeoutMs);
  }

  #trimCompletions(): void {
    const horizon = Date.now() - THROUGHPUT_WINDOW_MS;
    while (this.#completions.length > 0 && (this.#completions[0]?.at ?? 0) < horizon) this.#completions.shift();
  }

  #throughput(field: 'queue' | 'handler', name: string): number | undefined {
    if (this.#unsubscribe === undefined) return undefined;
    this.#trimCompletions();
    return this.#completions.filter((c) => c[field] === name).length / (THROUGHPUT_WINDOW_MS / 1000);
  }

  /** Counts per queue and handler. */
  async queues(): Promise<QueuesView> {
    const jobs = this.#jobs;
    if (jobs === undefined) {
      return {
        configured: false,
        queues: [],
        handlers: [],
        total: undefined,
        throughputKnown: false,
        readAt: undefined,
        problem: undefined,
      };
    }
    try {
      // Read beside the stats, so a poll waits for the slower of the two, not for both in a row.
      const [stats, throughput] = await Promise.all([
        this.#read('stats', () => jobs.stats()),
        readThroughput(jobs, (key, start) => this.#read(key, start)),
      ]);
      const queueNames = Object.keys(stats.queues).sort();
      const oldest = await Promise.all(
        queueNames.map((queue) =>
          (stats.queues[queue]?.ready ?? 0) > 0
            ? this.#read(`oldest:${queue}`, () => jobs.list('ready', { queue, limit: 1 }))
            : undefined,
        ),
      );
      const now = Date.now();
      const waits = new Map<string, number | undefined>();
      queueNames.forEach((queue, i) => {
        const job = oldest[i]?.jobs[0];
        waits.set(queue, job === undefined ? undefined : Math.max(0, now - job.runAt));
      });
      this.#lastStats = { stats, waits, throughput, at: now };
      this.#jobsProblem = undefined;
    } catch (error) {
      this.#jobsProblem = { backend: this.#jobsName, reason: reasonOf(error), dataFrom: this.#lastStats?.at };
    }
    const last = this.#lastStats;
    const stats = last?.stats;
    const counted = last?.throughput.kind === 'counted' ? last.throughput.series : undefined;
    return {
      configured: true,
      queues: Object.keys(stats?.queues ?? {})
        .sort()
        .map((name) => ({
          name,
          counts: stats?.queues[name] as Record<CountedState, number>,
          waitMs: last?.waits.get(name),
          throughput: this.#throughput('queue', name),
          completedLastMinute:
            counted === undefined ? undefined : (lastFullMinute(counted.find((s) => s.queue === name)) ?? 0),
        })),
      handlers: Object.keys(stats?.handlers ?? {})
        .sort()
        .map((name) => {
          const { paused, consumers, ...counts } =
            stats?.handlers[name] ??
            ({} as never as Record<CountedState, number> & { paused: boolean; consumers?: number });
          return {
            name,
            counts,
            paused,
            consumers,
            waitMs: undefined,
            throughput: this.#throughput('handler', name),
          };
        }),
      total: stats?.total,
      throughputKnown: this.#unsubscribe !== undefined,
      storeThroughput: last?.throughput,
      readAt: last?.at,
      problem: this.#jobsProblem,
    };
  }

  /** One page of jobs in `state`. */
  async jobs(state: JobState, offset: number, limit: number): Promise<JobsView> {
    const jobs = this.#jobs;
    const empty = { state, total: 0, offset, limit, jobs: [], readAt: undefined, problem: undefined };
    if (jobs === undefined) return { configured: false, ...empty };
    const key = `${state}:${offset}:${limit}`;
    try {
      const page = await this.#read(`list:${key}`, () => jobs.list(state, { offset, limit }));
      const view: JobsView = { configured: true, ...empty, total: page.total, jobs: page.jobs, readAt: Date.now() };
      this.#lastPages.set(key, view);
      if (this.#lastPages.size > 100) this.#lastPages.delete(this.#lastPages.keys().next().value as string);
      this.#jobsProblem = undefined;
      return view;
    } catch (error) {
      // Not an outage: this backend cannot list (amqp://), and no retry will change that.
      if (isUnsupported(error)) return { configured: true, ...empty, unsupported: error.message };
      const last = this.#lastPages.get(key) ?? { configured: true, ...empty };
      this.#jobsProblem = { backend: this.#jobsName, reason: reasonOf(error), dataFrom: last.readAt };
      return { ...last, problem: this.#jobsProblem };
    }
  }

  /** Job `id` for the job page (never rejects: an unknown id, a refusal or an outage is in the view). */
  job(id: string): Promise<JobView> {
    return this.#lookups.read(id);
  }

  /** Whether the discovery backend can forget a stopped service (third-party backends may not). */
  get canForget(): boolean {
    return typeof this.#discovery.forgetService === 'function';
  }

  /**
   * Remove the records of a stopped service (`Discovery.forgetService`),
   * under five times the backend deadline, like the job actions. Resolves
   * `true` when records were removed, `false` when the backend held none.
   * Rejects with `ServiceRunningError` while a member lives, with
   * {@link ForgetRefusedError} when the backend cannot forget or this
   * dashboard does not show the service, and with the backend's errors.
   */
  async forget(service: string): Promise<boolean> {
    if (this.#services !== undefined && !this.#services.includes(service)) {
      throw new ForgetRefusedError(`Not forgotten: this dashboard does not show a service "${service}"`);
    }
    const discovery = this.#discovery;
    if (typeof discovery.forgetService !== 'function') {
      throw new ForgetRefusedError(
        `Not forgotten: the ${discovery.kind} discovery backend cannot forget a service (it does not implement forgetService); remove the records of "${service}" with the backend's own tools.`,
      );
    }
    const forget = discovery.forgetService;
    const forgotten = await withTimeout(forget.call(discovery, service), this.#timeoutMs * 5);
    // Gone for good: the next time the name is seen it is a new service, not a movement.
    if (forgotten) this.#previous.delete(service);
    return forgotten;
  }

  /** The job queue, for actions (which are not retried or cached). */
  get jobQueue(): AdminJobQueue | undefined {
    return this.#jobs;
  }

  /** Run an action under the backend deadline. */
  act<T>(action: (jobs: AdminJobQueue) => Promise<T>): Promise<T> {
    const jobs = this.#jobs;
    if (jobs === undefined) return Promise.reject(new Error('no job queue configured'));
    return withTimeout(action(jobs), this.#timeoutMs * 5);
  }
}
