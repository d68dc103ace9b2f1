/**
 * The consumer of one owned partition of a queue on PostgreSQL: the `do` of
 * the core `Worker` shard that is the partition (as on Redis). It takes the
 * partition over (raising its fence and putting back what an older owner
 * left running), fetches due jobs in batches while there is work, sleeps on a
 * notification or the earliest due time when there is none, records each
 * outcome with its token (a zombie's is refused), completes a handler's
 * `ctx.transaction` in that transaction, runs the partition's periodic jobs,
 * and hands the partition over cleanly.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { errorMessage, InvalidRecordError, type ShardContext, sleep } from '@shardwork/core';
import { backoffDelays, retrying } from '@shardwork/core/backend';
import {
  type AdapterRuntime,
  type AttemptOutcome,
  type CompiledPeriodic,
  type Dispatcher,
  errorInfo,
  type JobArgs,
  type JobRecord,
  type JobTransaction,
  type RunnableJob,
  runPartition,
} from '@shardwork/jobs/adapter';
import type pg from 'pg';
import {
  complete,
  completeInTransaction,
  type FetchedJob,
  type FetchSpec,
  fail,
  fetchDue,
  type Owner,
  putBack,
  putBackOrphans,
  takeOver,
} from './fenced.js';
import { quotedSchema } from './migrate.js';
import { PartitionSchedules } from './schedules.js';
import { trimFinished } from './trim.js';
import { inTransaction } from './tx.js';
import { isUnreachable } from './unavailable.js';

/** Writes and fetches while PostgreSQL is unreachable: 50 ms doubling to 2 s. */
const RETRY_WRITES = { initialMs: 50, maxMs: 2000 } as const;

/** What a partition consumer needs from the adapter. */
export interface ConsumerHost {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly queue: string;
  readonly runtime: AdapterRuntime;
  readonly dispatcher: Dispatcher;
  readonly batchSize: number;
  /** Jobs fetched ahead of free slots (the dispatcher's prefetch): the least a fetch waits for. */
  readonly prefetch: number;
  readonly idleCheckMs: number;
  readonly revokeTimeoutMs: number;
  /** The lease TTL: how long `ctx.transaction` may wait for the handler between statements. */
  readonly leaseTtlMs: number;
  readonly spec: FetchSpec;
  /** Aborts when the adapter stops fetching (`stop()` began). */
  readonly stopping: AbortSignal;
  /** Aborts when running attempts must be aborted (`stop()` reached its timeout). */
  readonly aborting: AbortSignal;
  /** Aborts when the adapter closes: background retries of writes give up. */
  readonly closed: AbortSignal;
  /** Periodic jobs whose schedule this partition owns. */
  readonly periodics: readonly CompiledPeriodic[];
  /** Partitions per queue. */
  readonly partitions: number;
  /** The partition a job goes to. */
  partitionOf(record: JobRecord): number;
  /** Count finished attempts for `throughput()`. */
  count(completed: number, failed: number): void;
  /** A job of a handler with a `maxConcurrency` ended: owners of other partitions may take one. */
  slotFreed(handler: string): void;
  /** `error` as the adapter reports it (unreachable server → `QueueUnavailableError`). */
  mapError(error: unknown): unknown;
  reportError(error: unknown): void;
}

interface Completed {
  readonly job: RunnableJob;
  readonly outcome: AttemptOutcome & { readonly type: 'completed' };
}

/** See the module documentation. */
export class PartitionConsumer {
  readonly #host: ConsumerHost;
  readonly #ctx: ShardContext;
  readonly #owner: Owner;
  readonly #inflight = new Set<string>();
  readonly #abort = new AbortController();
  readonly #attempts = new Set<Promise<void>>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Results of jobs completed in their handler's `ctx.transaction` (already recorded). */
  readonly #committed = new Map<string, string>();
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #completed: Completed[] = [];
  #flushScheduled = false;
  /** When the completions that keep nothing last trimmed what they kept. */
  #trimmedAt = 0;
  #schedules: PartitionSchedules | undefined;

  constructor(host: ConsumerHost, ctx: ShardContext) {
    this.#host = host;
    this.#ctx = ctx;
    this.#owner = { queue: host.queue, partition: ctx.shard, token: ctx.token };
    setMaxListeners(0, this.#abort.signal);
  }

  /** The partition. */
  get partition(): number {
    return this.#ctx.shard;
  }

  /** Attempts running now. */
  get running(): number {
    return this.#inflight.size;
  }

  /** A notification: new work, a sooner due time, a free concurrency slot, unpause. */
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
      queue: host.queue,
      stopping: host.stopping,
      aborting: host.aborting,
      revokeTimeoutMs: host.revokeTimeoutMs,
      running: () => this.#inflight.size,
      abortAll: (reason) => this.#abort.abort(reason),
      drained: () => this.drained(),
      consume: (stop) => this.#consume(stop),
      ending: async () => {
        await this.#schedules?.stop();
      },
    });
  }

  async #consume(stop: AbortSignal): Promise<void> {
    const host = this.#host;
    const taken = await this.#write(() => takeOver(host.pool, host.schema, this.#owner), stop);
    if (taken === undefined) return;
    for (const job of taken.recovered) {
      host.runtime.emit('job:recovered', {
        job: {
          id: job.id,
          handler: job.handler,
          queue: host.queue,
          key: job.key ?? undefined,
          args: parseArgs(job) ?? {},
        },
        reason: 'running under an older owner of its partition',
      });
    }
    if (host.periodics.length > 0) {
      this.#schedules = new PartitionSchedules({
        pool: host.pool,
        schema: host.schema,
        owner: this.#owner,
        partitions: host.partitions,
        runtime: host.runtime,
        periodics: host.periodics,
        partitionOf: (record) => host.partitionOf(record),
        write: (call) => this.#write(call, stop),
        reportError: (error) => host.reportError(error),
      });
      await this.#schedules.start(stop);
    }
    await this.#loop(stop);
  }

  async #loop(stop: AbortSignal): Promise<void> {
    const host = this.#host;
    let failures = 0;
    let orphans = false;
    while (!stop.aborted) {
      if (orphans) {
        // A fetch whose reply was lost may have taken jobs it does not run: put them back first.
        const back = await this.#write(
          () => putBackOrphans(host.pool, host.schema, this.#owner, [...this.#inflight]),
          stop,
        );
        if (back === undefined) return;
        orphans = false;
      }
      // Under load, fetch when a whole prefetch's worth of slots is free: fewer, larger batches.
      const slots = await host.dispatcher.credits.take(host.batchSize, stop, host.prefetch);
      if (slots === 0) return;
      this.#woken = false;
      let fetched: Awaited<ReturnType<typeof fetchDue>>;
      try {
        fetched = await fetchDue(host.pool, host.schema, this.#owner, host.spec, slots);
        failures = 0;
      } catch (error) {
        host.dispatcher.credits.give(slots);
        host.reportError(host.mapError(error));
        if (!isUnreachable(error)) return;
        orphans = true;
        await sleep(backoffDelays(RETRY_WRITES)(++failures, error) ?? 0, stop).catch(() => undefined);
        continue;
      }
      host.dispatcher.credits.give(slots - fetched.jobs.length);
      for (const job of fetched.jobs) this.#launch(job);
      if (fetched.jobs.length === 0 && !this.#woken) await this.#idle(fetched.nextDue, stop);
    }
  }

  /** Wait for a notification, the earliest due time, the safety re-check, or the end. */
  async #idle(nextDue: number | undefined, stop: AbortSignal): Promise<void> {
    const untilDue = nextDue === undefined ? Number.POSITIVE_INFINITY : Math.max(1, nextDue - Date.now() + 1);
    const wait = Math.min(this.#host.idleCheckMs, untilDue);
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

  #launch(fetched: FetchedJob): void {
    const host = this.#host;
    const args = parseArgs(fetched);
    if (args === undefined) {
      const problem = 'args that are not a JSON object';
      host.runtime.emit('record:invalid', {
        error: new InvalidRecordError(`${quotedSchema(host.schema)}.jobs[${fetched.id}]`, problem),
      });
      const error = JSON.stringify({ name: 'InvalidRecordError', message: problem, at: Date.now() });
      this.#track(
        this.#write(() => fail(host.pool, host.schema, this.#owner, [{ id: fetched.id, error, retryInMs: null }])),
      );
      host.dispatcher.credits.give(1);
      return;
    }
    const job: RunnableJob = {
      id: fetched.id,
      handler: fetched.handler,
      queue: host.queue,
      key: fetched.key ?? undefined,
      args,
      argsJson: fetched.args,
      enqueuedAt: fetched.enqueuedAt,
      runAt: fetched.runAt,
      uniqueKey: fetched.uniqueKey ?? undefined,
      ordered: host.spec.ordered.includes(fetched.handler),
      traceparent: fetched.traceparent ?? undefined,
      priority: fetched.priority ?? undefined,
      fails: fetched.fails,
    };
    this.#inflight.add(job.id);
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
          progress: (json) => this.#track(this.#progress(job.id, json)),
          transaction: (work) => this.#transaction(job.id, work),
        });
        await this.#settle(job, outcome);
      } catch (error) {
        host.reportError(error);
      } finally {
        this.#inflight.delete(job.id);
        this.#committed.delete(job.id);
        this.#attempts.delete(attempt);
        done();
      }
    });
  }

  /** `ctx.transaction`: the handler's writes and the job's completion, fenced, in one transaction. */
  async #transaction<T>(id: string, work: (tx: JobTransaction) => Promise<T>): Promise<T> {
    if (this.#committed.has(id)) {
      throw new Error(`ctx.transaction of job ${id} already committed: the job is complete; call it once per attempt`);
    }
    const host = this.#host;
    let result = 'null';
    const value = await completeInTransaction(host.pool, host.schema, this.#owner, id, work, {
      resultJson: (v) => {
        result = JSON.stringify(v ?? null);
        return result;
      },
      idleTimeoutMs: host.leaseTtlMs,
    });
    this.#committed.set(id, result);
    return value;
  }

  /** One try: a lost progress write is made good by the next one (or the result). */
  async #progress(id: string, json: string): Promise<void> {
    const host = this.#host;
    await host.pool
      .query(
        `UPDATE ${quotedSchema(host.schema)}.jobs SET progress = $3::json
         WHERE queue = $1 AND id = $2 AND state = 'running' AND token = $4`,
        [host.queue, id, json, this.#ctx.token],
      )
      .catch((error: unknown) => host.reportError(host.mapError(error)));
  }

  async #settle(job: RunnableJob, outcome: AttemptOutcome): Promise<void> {
    const host = this.#host;
    const rt = host.runtime;
    const committed = this.#committed.get(job.id);
    if (committed !== undefined) {
      // Completed in its own transaction: recorded already, whatever the handler did after.
      if (outcome.type !== 'completed') {
        rt.options.logger.warn(
          { scope: 'jobs', queue: host.queue, job: job.id },
          `job ${job.id} completed in ctx.transaction, then its handler ended with ${outcome.type}: the completion stands`,
        );
      }
      host.count(1, 0);
      rt.report(job, {
        type: 'completed',
        durationMs: 'durationMs' in outcome ? (outcome.durationMs ?? 0) : 0,
        result: committed,
      });
      this.#ended(job);
      return;
    }
    switch (outcome.type) {
      case 'completed':
        this.#completed.push({ job, outcome });
        if (this.#completed.length >= 100) await this.#flush();
        else if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          setImmediate(() => void this.#flush());
        }
        return;
      case 'retry':
      case 'dead': {
        const error = JSON.stringify(errorInfo(outcome.error, Date.now()));
        const retryInMs = outcome.type === 'retry' ? Math.max(0, Math.round(outcome.delayMs)) : null;
        const recorded = await this.#write(() =>
          fail(host.pool, host.schema, this.#owner, [{ id: job.id, error, retryInMs }]),
        );
        const state = recorded?.[0]?.[1];
        if (state === undefined) return;
        host.count(0, 1);
        this.#ended(job);
        if (state === 'cancelled') return;
        if (outcome.type === 'retry') {
          rt.report(job, outcome, Date.now() + (retryInMs ?? 0));
          // Fetch again to learn the new earliest due time (the retry may be the soonest).
          this.wake();
        } else {
          rt.report(job, outcome);
        }
        return;
      }
      case 'aborted': {
        if (!this.#ctx.held) return;
        const back = await this.#write(() => putBack(host.pool, host.schema, this.#owner, [job.id]));
        this.#ended(job);
        if (back === 1) {
          rt.emit('job:recovered', {
            job: { id: job.id, handler: job.handler, queue: job.queue, key: job.key, args: job.args },
            reason: errorMessage(outcome.error),
          });
        }
        return;
      }
    }
  }

  /** A job of this partition stopped running: its key's line and its handler's slot may let another through. */
  #ended(job: RunnableJob): void {
    if (this.#host.spec.limited.has(job.handler)) this.#host.slotFreed(job.handler);
    if (job.key !== undefined && job.ordered) this.wake();
  }

  /** Record the completions gathered since the last flush in one transaction, with the trim of kept jobs. */
  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#completed;
    if (batch.length === 0) return;
    this.#completed = [];
    const host = this.#host;
    const keep = host.runtime.options.keepCompleted;
    const done = batch.map((c) => ({ id: c.job.id, result: c.outcome.result }));
    // Keeping none: one statement deletes what it completes. Else the trim of kept jobs joins the completion.
    const recorded = await this.#write(() =>
      keep.count === 0
        ? complete(host.pool, host.schema, this.#owner, done, { forget: true })
        : inTransaction(host.pool, async (client) => {
            const ids = await complete(client, host.schema, this.#owner, done);
            if (ids.length > 0) await trimFinished(client, host.schema, host.queue, 'completed', keep);
            return ids;
          }),
    );
    if (recorded === undefined) return;
    if (keep.count === 0 && Date.now() - this.#trimmedAt >= 1000) {
      // What the forgetting completion kept (an outcome too long for its notice) goes once its age is out.
      this.#trimmedAt = Date.now();
      this.#track(this.#write(() => trimFinished(host.pool, host.schema, host.queue, 'completed', keep)));
    }
    const ok = new Set(recorded);
    host.count(ok.size, 0);
    for (const c of batch) {
      if (!ok.has(c.job.id)) continue;
      host.runtime.report(c.job, c.outcome);
      this.#ended(c.job);
    }
  }

  #track(write: Promise<unknown>): void {
    this.#pending.add(write);
    void write.finally(() => this.#pending.delete(write));
  }

  /**
   * A fenced write, retried while PostgreSQL is unreachable until it
   * succeeds or `until` aborts (then the job runs again after the next
   * takeover). `undefined` when it gave up.
   */
  async #write<T>(call: () => Promise<T>, until: AbortSignal = this.#host.closed): Promise<T | undefined> {
    const host = this.#host;
    const run = retrying(call, {
      retryable: isUnreachable,
      signal: until,
      backoff: RETRY_WRITES,
      onRetry: (error, { attempt }) => {
        if (attempt === 1) host.reportError(host.mapError(error));
      },
    }).catch((error: unknown) => {
      if (!until.aborted) host.reportError(host.mapError(error));
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

/** A stored job's args, `undefined` when they are not a JSON object. */
function parseArgs(job: { readonly args: string }): JobArgs | undefined {
  try {
    const args = JSON.parse(job.args) as unknown;
    return typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as JobArgs) : undefined;
  } catch {
    return undefined;
  }
}
