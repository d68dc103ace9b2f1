/**
 * The consumer of one owned partition: the `do` of the core `Worker` shard
 * that is the partition. It fences the partition (taking over the jobs left
 * running under an older token), fetches in batches while there is work,
 * sleeps on a wake-up message or the earliest due time when there is none,
 * persists each outcome with its token (a zombie's is refused), runs the
 * partition's periodic jobs, and hands the partition over cleanly.
 *
 * Its modes (graphile-worker's local queue names its modes the same way; a
 * move the table below does not list throws):
 *
 * - `taking-over`: fencing the partition (`takeover.lua` puts back what an
 *   older owner left running) and catching up its periodic jobs;
 * - `fetching`: taking the next batch (as many jobs as free slots);
 * - `idle`: nothing to fetch: waiting for a wake-up message, the earliest
 *   due time or the idle re-check;
 * - `draining`: the partition ended (handed over, lease lost, the queue
 *   stopping): nothing is fetched; running attempts finish (a hand-over lets
 *   them, within `revokeTimeoutMs`) or are aborted, and writes complete;
 * - `ended`: nothing of this partition runs or is being written.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { errorMessage, InvalidRecordError, type ShardContext, sleep } from '@shardwork/core';
import { backoffDelays, retrying, StateMachine, type TransitionTable } from '@shardwork/core/backend';
import type {
  AdapterRuntime,
  AttemptOutcome,
  CompiledPeriodic,
  Dispatcher,
  JobRecord,
  RunnableJob,
} from '@shardwork/jobs/adapter';
import { errorInfo, QueueUnavailableError, runPartition } from '@shardwork/jobs/adapter';
import { PartitionSchedules } from './periodic.js';
import { recordArgs, recordJson } from './records.js';

import type { QueueStore } from './store.js';

/** Writes and fetches while Redis is unreachable: 50 ms doubling to 2 s. */
const RETRY_WRITES = { initialMs: 50, maxMs: 2000 } as const;

/** A partition consumer's mode; see the module documentation. */
export type ConsumerMode = 'taking-over' | 'fetching' | 'idle' | 'draining' | 'ended';

const MODES: TransitionTable<ConsumerMode> = {
  'taking-over': ['fetching', 'draining'],
  fetching: ['fetching', 'idle', 'draining'],
  idle: ['fetching', 'draining'],
  draining: ['ended'],
  ended: [],
};

/** What a partition consumer needs from the adapter. */
export interface ConsumerHost {
  readonly store: QueueStore;
  readonly runtime: AdapterRuntime;
  readonly dispatcher: Dispatcher;
  readonly batchSize: number;
  readonly idleCheckMs: number;
  readonly revokeTimeoutMs: number;
  /** `[name, priority, maxConcurrency, …]` of the handlers this process runs for the queue. */
  readonly specs: readonly (string | number)[];
  /** Aborts when the adapter stops fetching (`stop()` began). */
  readonly stopping: AbortSignal;
  /** Aborts when running attempts must be aborted (`stop()` reached its timeout). */
  readonly aborting: AbortSignal;
  /** Aborts when the adapter closes: background retries of writes give up. */
  readonly closed: AbortSignal;
  /** Periodic jobs whose schedule this partition owns. */
  readonly periodics: readonly CompiledPeriodic[];
  /** The partition a job goes to. */
  partitionOf(record: JobRecord): number;
  /** Newest tick recorded for a periodic job, ms. */
  lastTick(name: string): Promise<number | undefined>;
  reportError(error: unknown): void;
}

interface Completed {
  readonly job: RunnableJob;
  readonly outcome: AttemptOutcome;
}

/** See the module documentation. */
export class PartitionConsumer {
  readonly #host: ConsumerHost;
  readonly #ctx: ShardContext;
  /** Jobs fetched and not settled yet (waiting to run, running, or recording). */
  readonly #inflight = new Set<string>();
  /** Aborts every attempt of this partition (lease lost, stop past its timeout, hand-over). */
  readonly #abort = new AbortController();
  readonly #attempts = new Set<Promise<void>>();
  readonly #pending = new Set<Promise<unknown>>();
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #completed: Completed[] = [];
  /** Completions being recorded now (a reclaim must not put them back). */
  readonly #flushing = new Set<string>();
  #flushScheduled = false;
  #schedules: PartitionSchedules | undefined;
  #seed = Math.floor(Math.random() * 2_147_483_646) + 1;
  readonly #mode = new StateMachine<ConsumerMode>('partition consumer', MODES, 'taking-over');

  constructor(host: ConsumerHost, ctx: ShardContext) {
    this.#host = host;
    this.#ctx = ctx;
    // Every attempt listens on it: as many listeners as jobs in flight is expected.
    setMaxListeners(0, this.#abort.signal);
  }

  /** What the consumer is doing now. */
  get mode(): ConsumerMode {
    return this.#mode.state;
  }

  /** The partition. */
  get partition(): number {
    return this.#ctx.shard;
  }

  /** Attempts running now. */
  get running(): number {
    return this.#inflight.size;
  }

  /** A wake-up message (new work, a sooner due time, a free concurrency slot, unpause). */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /** Resolves once no attempt of this partition runs and every write is done. */
  async drained(): Promise<void> {
    while (this.#attempts.size > 0 || this.#pending.size > 0 || this.#completed.length > 0) {
      await Promise.all([...this.#attempts, ...this.#pending]);
      if (this.#completed.length > 0) await this.#flush();
    }
  }

  async run(): Promise<void> {
    const host = this.#host;
    await runPartition({
      ctx: this.#ctx,
      queue: host.store.queue,
      stopping: host.stopping,
      aborting: host.aborting,
      revokeTimeoutMs: host.revokeTimeoutMs,
      running: () => this.#inflight.size,
      abortAll: (reason) => this.#abort.abort(reason),
      drained: () => this.drained(),
      consume: (stop) => this.#consume(stop),
      ending: async () => {
        this.#mode.to('draining');
        await this.#schedules?.stop();
      },
      ended: () => this.#mode.to('ended'),
    });
  }

  /** Take the partition over, start its periodic jobs, and fetch until `stop`. */
  async #consume(stop: AbortSignal): Promise<void> {
    const host = this.#host;
    const p = this.#ctx.shard;
    const token = String(this.#ctx.token);
    const takeover = await this.#write('takeover', [p, token], stop);
    if (takeover === undefined || takeover.stale) return;
    const back = takeover.reply[0] as string[];
    for (let i = 0; i < back.length; i += 2) {
      const ref = recordArgs(back[i + 1]);
      host.runtime.emit('job:recovered', {
        job: {
          id: back[i] as string,
          handler: ref?.handler ?? '?',
          queue: host.store.queue,
          key: ref?.key,
          args: ref?.args ?? {},
        },
        reason: 'running under an older owner of its partition',
      });
    }
    if (host.periodics.length > 0) {
      this.#schedules = new PartitionSchedules({
        runtime: host.runtime,
        periodics: host.periodics,
        partitionOf: (record) => host.partitionOf(record),
        lastTick: (name) => host.lastTick(name),
        // A write in flight when the partition ends gives up: the next owner reads what landed.
        write: (args) => this.#write('cron', [p, token, ...args], stop),
        reportError: (error) => host.reportError(error),
      });
      await this.#schedules.start(stop);
    }
    await this.#loop(stop);
  }

  async #loop(stop: AbortSignal): Promise<void> {
    const host = this.#host;
    const p = this.#ctx.shard;
    const token = String(this.#ctx.token);
    let failures = 0;
    while (!stop.aborted) {
      this.#mode.to('fetching');
      const slots = await host.dispatcher.credits.take(host.batchSize, stop);
      if (slots === 0) return;
      this.#woken = false;
      let fetched: Awaited<ReturnType<QueueStore['fenced']>>;
      try {
        fetched = await host.store.fenced('fetch', [p, token, slots, this.#nextSeed(), ...host.specs]);
        failures = 0;
      } catch (error) {
        host.dispatcher.credits.give(slots);
        host.reportError(error);
        await sleep(backoffDelays(RETRY_WRITES)(++failures, error) ?? 0, stop).catch(() => undefined);
        // The fetch may have run without its reply reaching us: put back what it took.
        const keep = [...this.#inflight, ...this.#completed.map((c) => c.job.id), ...this.#flushing];
        const reclaimed = await this.#write('reclaim', [p, token, keep.length, ...keep], stop);
        if (reclaimed?.stale === true) return;
        continue;
      }
      if (fetched.stale) {
        host.dispatcher.credits.give(slots);
        return;
      }
      const [flat, missing, nextDue] = fetched.reply as [string[], string[], number];
      const count = flat.length / 4;
      host.dispatcher.credits.give(slots - count);
      for (const id of missing) {
        host.runtime.emit('record:invalid', {
          error: new InvalidRecordError(`${host.store.keys.jobs}[${id}]`, 'a ready job without a record (dropped)'),
        });
      }
      for (let i = 0; i < flat.length; i += 4) {
        this.#launch(flat[i] as string, flat[i + 1] as string, flat[i + 2] as string, Number(flat[i + 3]));
      }
      if (count === 0 && !this.#woken) {
        this.#mode.to('idle');
        await this.#idle(Number(nextDue), stop);
      }
    }
  }

  #nextSeed(): number {
    this.#seed = (this.#seed * 48271) % 2_147_483_647;
    return this.#seed;
  }

  /** Wait for a wake-up message, the earliest due time, the safety re-check, or the end. */
  async #idle(nextDueMs: number, stop: AbortSignal): Promise<void> {
    const wait = Math.min(this.#host.idleCheckMs, nextDueMs >= 0 ? nextDueMs + 1 : Number.POSITIVE_INFINITY);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        stop.removeEventListener('abort', done);
        this.#wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, wait);
      stop.addEventListener('abort', done, { once: true });
      this.#wakeUp = done;
    });
  }

  #launch(id: string, handler: string, raw: string, fails: number): void {
    const host = this.#host;
    const record = recordJson(raw, id, handler, host.store.queue);
    if (typeof record === 'string') {
      host.runtime.emit('record:invalid', { error: new InvalidRecordError(`${host.store.keys.jobs}[${id}]`, record) });
      this.#track(
        this.#write('dead', [
          this.#ctx.shard,
          String(this.#ctx.token),
          id,
          JSON.stringify({ name: 'InvalidRecordError', message: record, at: Date.now() }),
        ]),
      );
      host.dispatcher.credits.give(1);
      return;
    }
    this.#inflight.add(id);
    const job: RunnableJob = { ...record, fails };
    let done: () => void = () => undefined;
    const attempt = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.#attempts.add(attempt);
    host.dispatcher.schedule(async () => {
      try {
        const outcome = await host.runtime.run(job, {
          signal: this.#abort.signal,
          partition: this.#ctx.shard,
          token: this.#ctx.token,
          owned: () => this.#ctx.held,
          // One try: a lost progress write is made good by the next one (or the result).
          progress: (json) =>
            this.#track(
              host.store
                .fenced('progress', [this.#ctx.shard, String(this.#ctx.token), id, json])
                .catch((error: unknown) => host.reportError(error)),
            ),
        });
        await this.#settle(job, outcome);
      } catch (error) {
        host.reportError(error);
      } finally {
        this.#inflight.delete(id);
        this.#attempts.delete(attempt);
        done();
      }
    });
  }

  async #settle(job: RunnableJob, outcome: AttemptOutcome): Promise<void> {
    const p = this.#ctx.shard;
    const token = String(this.#ctx.token);
    const rt = this.#host.runtime;
    switch (outcome.type) {
      case 'completed':
        this.#completed.push({ job, outcome });
        if (this.#completed.length >= 100) await this.#flush();
        else if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          setImmediate(() => void this.#flush());
        }
        return;
      case 'retry': {
        const info = JSON.stringify(errorInfo(outcome.error, Date.now()));
        const result = await this.#write('retry', [p, token, job.id, Math.round(outcome.delayMs), info]);
        if (result === undefined || result.stale || Number(result.reply[0]) < 0) return;
        rt.report(job, outcome, Number(result.reply[0]));
        // Fetch again to learn the new earliest due time (the retry may be the soonest).
        this.wake();
        return;
      }
      case 'dead': {
        const info = JSON.stringify(errorInfo(outcome.error, Date.now()));
        const result = await this.#write('dead', [p, token, job.id, info]);
        if (result === undefined || result.stale || result.reply[0] !== 1) return;
        rt.report(job, outcome);
        return;
      }
      case 'aborted': {
        // Without the claim the next owner's takeover puts it back; with it, put it back now.
        if (!this.#ctx.held) return;
        const result = await this.#write('requeue', [p, token, 1, job.id]);
        if (result !== undefined && !result.stale && result.reply[0] === 1) {
          rt.emit('job:recovered', {
            job: { id: job.id, handler: job.handler, queue: job.queue, key: job.key, args: job.args },
            reason: errorMessage(outcome.error),
          });
        }
        return;
      }
    }
  }

  /** Record the completions gathered since the last flush in one script call. */
  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#completed;
    if (batch.length === 0) return;
    this.#completed = [];
    const ids = batch.map((c) => c.job.id);
    for (const id of ids) this.#flushing.add(id);
    const result = await this.#write('complete', [
      this.#ctx.shard,
      String(this.#ctx.token),
      ids.length,
      ...batch.flatMap((c) => [c.job.id, c.outcome.type === 'completed' ? c.outcome.result : 'null', c.job.fails]),
    ]).finally(() => {
      for (const id of ids) this.#flushing.delete(id);
    });
    if (result === undefined || result.stale) return;
    const recorded = result.reply[0] as number[];
    batch.forEach((c, i) => {
      if (recorded[i] === 1) this.#host.runtime.report(c.job, c.outcome);
    });
  }

  #track(write: Promise<unknown>): void {
    this.#pending.add(write);
    void write.finally(() => this.#pending.delete(write));
  }

  /**
   * A fenced write, retried while Redis is unreachable until it succeeds, is
   * refused as stale, or the adapter closes (then the job runs again after the
   * next takeover). `undefined` when it gave up.
   */
  async #write(
    name: Parameters<QueueStore['fenced']>[0],
    args: readonly (string | number)[],
    until: AbortSignal = this.#host.closed,
  ): Promise<Awaited<ReturnType<QueueStore['fenced']>> | undefined> {
    const run = retrying(() => this.#host.store.fenced(name, args), {
      retryable: (error) => error instanceof QueueUnavailableError,
      signal: until,
      backoff: RETRY_WRITES,
      onRetry: (error, { attempt, delayMs }) => {
        if (attempt === 1) this.#host.reportError(error);
        this.#host.runtime.options.logger.debug(
          { scope: 'jobs', queue: this.#host.store.queue, partition: this.#ctx.shard, error },
          `${name}: ${(error as Error).message}; trying again in ${delayMs} ms`,
        );
      },
    }).catch((error: unknown) => {
      // Given up: an error retrying cannot fix (reported), or `until` aborted (the next owner takes over).
      if (!until.aborted) this.#host.reportError(error);
      return undefined;
    });
    this.#pending.add(run);
    try {
      return await run;
    } finally {
      this.#pending.delete(run);
    }
  }
}
