import { type Discovery, inspectSnapshot, type ServiceInspection } from '@shardwork/core';
import type { AdminJobQueue, CountedState, JobState, JobStats } from '@shardwork/jobs';
import { DeadlineReads, describeBackend, problemOf, withTimeout } from './backend-reads.js';
import { CompletionRate } from './completion-rate.js';
import { isUnsupported, JobLookups, type JobView } from './job-data.js';
import { MovementLog } from './movements.js';
import { lastFullMinute, readThroughput, type StoreThroughput } from './throughput.js';
import type { BackendProblem, JobsView, QueuesView, ServicesView, ServiceView } from './views.js';

/** {@link DashboardData.forget} refused before asking the backend; the message says why. */
export class ForgetRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForgetRefusedError';
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
  readonly #movements = new MovementLog();
  #servicesView: ServicesView;
  #servicesRead: Promise<ServicesView> | undefined;
  #lastStats:
    | { stats: JobStats; waits: Map<string, number | undefined>; throughput: StoreThroughput; at: number }
    | undefined;
  #jobsProblem: BackendProblem | undefined;
  readonly #lastPages = new Map<string, JobsView>();
  /** Set when the jobs run in this process: only then are completions observable. */
  readonly #rate: CompletionRate | undefined;
  readonly #reads: DeadlineReads;
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
    this.#reads = new DeadlineReads(options.timeoutMs);
    this.#lookups = new JobLookups(options.jobs, this.#jobsName, (key, start) => this.#read(key, start));
    this.#servicesView = {
      services: [],
      canForget: this.canForget,
      movements: [],
      readAt: undefined,
      problem: undefined,
    };
    if (options.inProcessJobs && options.jobs !== undefined) this.#rate = new CompletionRate(options.jobs);
  }

  /** Whether a job queue is configured. */
  get hasJobs(): boolean {
    return this.#jobs !== undefined;
  }

  /** Stop listening to the in-process queue. */
  dispose(): void {
    this.#rate?.dispose();
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
        this.#movements.record(name, snapshot, now);
        return { name, snapshot, health: snapshot.health };
      });
      this.#servicesView = {
        services,
        canForget: this.canForget,
        movements: this.#movements.list(),
        readAt: now,
        problem: undefined,
      };
    } catch (error) {
      this.#servicesView = {
        ...this.#servicesView,
        problem: problemOf(this.#discoveryName, error, this.#servicesView.readAt),
      };
    }
    return this.#servicesView;
  }

  /**
   * Run `start` under the deadline, unless the same read is still pending from
   * an earlier poll: then wait for that one, so a stalled backend does not
   * collect one more read per poll.
   */
  #read<T>(key: string, start: () => Promise<T>): Promise<T> {
    return this.#reads.read(key, start);
  }

  #throughput(field: 'queue' | 'handler', name: string): number | undefined {
    return this.#rate?.perSecond(field, name);
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
      this.#jobsProblem = problemOf(this.#jobsName, error, this.#lastStats?.at);
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
      throughputKnown: this.#rate !== undefined,
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
      this.#jobsProblem = problemOf(this.#jobsName, error, last.readAt);
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
    if (forgotten) this.#movements.forget(service);
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
