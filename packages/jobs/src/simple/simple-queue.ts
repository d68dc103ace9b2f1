/**
 * SimpleQueue, the `memory://` adapter and the default (Buffalo's
 * `worker.Simple`): jobs live in this process and run here. It honours every
 * register option: priorities (gocraft's weighted draw), `maxConcurrency`,
 * `unique`, `ordered`, due times on one timer (no drift past 2^31 ms), pause,
 * and a dead set with retry and delete. Nothing is persisted: `stop()` reports
 * every job it drops with `job:dropped` and counts them.
 *
 * @module
 */

import { IllegalStateError, startTicker, type Ticker } from '@shardwork/core';
import {
  type AdapterRuntime,
  type AttemptOutcome,
  type BulkOptions,
  type JobAdapter,
  type JobChange,
  type JobPage,
  type JobStats,
  type ListOptions,
  type PauseOptions,
  type QueueThroughput,
  refOf,
  type StopResult,
} from '../adapter.js';
import { errorInfo, JobAbortedError, JobCancelledError, JobNotFoundError, UnknownHandlerError } from '../errors.js';
import type { CountedState, EnqueueResult, JobDetails, JobRecord, JobState } from '../job.js';
import type { CompiledPeriodic, CompiledQueueOptions, CompiledRegistration } from '../options.js';
import { RunningAttempts } from './attempts.js';
import { DueTimes } from './due-times.js';
import { dropReason, type Entry, entryDetails, finishedEntry, moveEntry } from './entry.js';
import { type FinishedJob, FinishedJobs, finishedDetails } from './finished.js';
import { GivenIds } from './given-ids.js';
import { KeyHolds } from './key-holds.js';
import { countJobs, listJobs } from './reads.js';
import { ReadyJobs } from './ready-jobs.js';
import { ThroughputTally } from './throughput.js';

/** The in-process adapter. Create it through `createJobQueue('memory://')` or pass `new SimpleQueue(options)`. */
export class SimpleQueue implements JobAdapter {
  readonly kind = 'memory';
  readonly durable = false;
  #runtime: AdapterRuntime | undefined;
  readonly #concurrency: number | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #due = new DueTimes<Entry>(() => {
    this.#moveDue();
    this.#armTimer();
    this.#pump();
  });
  /** Ready jobs, by handler and priority, and the pauses. */
  readonly #ready = new ReadyJobs();
  readonly #holds = new KeyHolds<Entry>((entry) => this.#lineKey(entry));
  readonly #dead = new Map<string, Entry>();
  readonly #attempts = new RunningAttempts();
  #seq = 0;
  #consuming = false;
  #pumpScheduled = false;
  #tickers: Ticker[] = [];
  readonly #givenIds = new GivenIds();
  #finished: FinishedJobs | undefined;
  readonly #tally = new ThroughputTally();

  /** @param options - `concurrency` is read from the queue's options unless given here. */
  constructor(options?: Partial<Pick<CompiledQueueOptions, 'concurrency'>>) {
    this.#concurrency = options?.concurrency;
  }

  attach(runtime: AdapterRuntime): void {
    if (this.#runtime !== undefined) throw new IllegalStateError('attach a SimpleQueue twice', 'attached');
    this.#runtime = runtime;
    this.#finished = new FinishedJobs(runtime.options.keepCompleted);
  }

  get #kept(): FinishedJobs {
    if (this.#finished === undefined) throw new IllegalStateError('use a SimpleQueue', 'not attached to a JobQueue');
    return this.#finished;
  }

  get #rt(): AdapterRuntime {
    if (this.#runtime === undefined) throw new IllegalStateError('use a SimpleQueue', 'not attached to a JobQueue');
    return this.#runtime;
  }

  async enqueue(records: readonly JobRecord[]): Promise<EnqueueResult[]> {
    const handlers = this.#rt.handlers;
    // All or none: refuse the batch before adding anything.
    for (const r of records) {
      if (!handlers.has(r.handler)) throw new UnknownHandlerError(r.handler, [...handlers.keys()].sort());
    }
    const now = Date.now();
    this.#givenIds.forget(now);
    const results = records.map((record): EnqueueResult => {
      if (record.idGiven === true) {
        if (this.#entries.has(record.id) || this.#givenIds.has(record.id) || this.#kept.get(record.id) !== undefined)
          return { id: record.id, duplicate: true };
        this.#givenIds.add(record.id, now + this.#rt.options.idempotencyWindowMs);
      }
      const holder = record.uniqueKey === undefined ? undefined : this.#holds.uniqueHolder(record.uniqueKey);
      if (holder !== undefined) return { id: holder, duplicate: true };
      if (record.uniqueKey !== undefined) this.#holds.holdUnique(record.uniqueKey, record.id);
      const entry: Entry = {
        record,
        state: 'scheduled',
        fails: 0,
        runAt: record.runAt,
        seq: this.#seq++,
        lastError: undefined,
        inLine: false,
      };
      this.#entries.set(record.id, entry);
      if (entry.runAt <= now) this.#makeReady(entry);
      else this.#due.push(entry);
      return { id: record.id, duplicate: false };
    });
    this.#armTimer();
    // Dispatch on the next turn of the event loop: the caller sees perform()
    // resolve (and emits job:enqueued) before the job starts, and a burst of
    // performs is drawn from together, by priority.
    if (!this.#pumpScheduled && this.#consuming) {
      this.#pumpScheduled = true;
      setImmediate(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
    return results;
  }

  async start(): Promise<void> {
    this.#consuming = true;
    this.#attempts.renew();
    this.#moveDue();
    this.#armTimer();
    this.#pump();
    // One process owns the store, so every tick is enqueued once and none is missed while it runs.
    this.#tickers = this.#rt.periodics.map((periodic) =>
      startTicker(periodic.schedule, (at) => void this.#enqueueTick(periodic, at.getTime())),
    );
  }

  async #enqueueTick(periodic: CompiledPeriodic, tickMs: number): Promise<void> {
    if (!this.#consuming) return;
    try {
      const record = this.#rt.periodicRecord(periodic, tickMs);
      const [result] = await this.enqueue([record]);
      if (result?.duplicate === false) {
        this.#rt.emit('job:enqueued', { job: refOf(record), runAt: new Date(record.runAt) });
      }
    } catch (error) {
      this.#rt.emit('error', { error });
    }
  }

  async stop(timeoutMs: number): Promise<StopResult> {
    this.#consuming = false;
    for (const ticker of this.#tickers.splice(0)) ticker.stop();
    this.#due.disarm();
    const aborted = this.#attempts.idle ? 0 : await this.#attempts.drain(timeoutMs);
    let dropped = 0;
    for (const entry of [...this.#entries.values()]) {
      if (entry.state === 'dead') continue;
      const reason = dropReason(entry.state);
      this.#finish(entry);
      dropped++;
      this.#kept.wake(entry.record.id, new JobAbortedError('the memory:// queue stopped and dropped it'));
      this.#rt.emit('job:dropped', { job: refOf(entry.record), reason });
    }
    return { aborted, dropped };
  }

  async close(): Promise<void> {
    this.#consuming = false;
    for (const ticker of this.#tickers.splice(0)) ticker.stop();
    this.#due.disarm();
  }

  async stats(): Promise<JobStats> {
    return countJobs(this.#rt.handlers.keys(), this.#entries.values(), this.#ready);
  }

  async list(
    state: JobState,
    options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  ): Promise<JobPage> {
    return listJobs(state, options, { entries: this.#entries.values(), dead: this.#dead.values(), kept: this.#kept });
  }

  async throughput(minutes: number, queue?: string): Promise<QueueThroughput[]> {
    return this.#tally.read(minutes, queue, Date.now());
  }

  async retryDead(id?: string, options: BulkOptions = {}): Promise<number> {
    const targets = id === undefined ? [...this.#dead.values()] : [this.#deadEntry(id)];
    let moved = 0;
    for (const entry of targets) {
      const uniqueKey = entry.record.uniqueKey;
      // A new job holds the unique key now: retrying this one would make two. It stays dead.
      if (uniqueKey !== undefined && this.#holds.uniqueHolder(uniqueKey) !== undefined) continue;
      if (uniqueKey !== undefined) this.#holds.holdUnique(uniqueKey, entry.record.id);
      this.#dead.delete(entry.record.id);
      entry.fails = 0;
      entry.runAt = Date.now();
      entry.seq = this.#seq++;
      this.#makeReady(entry);
      moved++;
    }
    this.#pump();
    options.onProgress?.(moved);
    return moved;
  }

  async deleteDead(id?: string, options: BulkOptions = {}): Promise<number> {
    const targets = id === undefined ? [...this.#dead.values()] : [this.#deadEntry(id)];
    for (const entry of targets) this.#finish(entry);
    options.onProgress?.(targets.length);
    return targets.length;
  }

  async pause(handler: string, options: PauseOptions = {}): Promise<void> {
    const known =
      this.#rt.handlers.has(handler) || [...this.#entries.values()].some((e) => e.record.handler === handler);
    if (!known && options.force !== true) {
      throw new UnknownHandlerError(
        handler,
        [...this.#rt.handlers.keys()].sort(),
        'Nothing knows it: check the name, or pause it anyway with { force: true }.',
      );
    }
    this.#ready.pause(handler);
  }

  async unpause(handler: string): Promise<void> {
    this.#ready.unpause(handler);
    this.#pump();
  }

  async pauseQueue(queue: string): Promise<void> {
    this.#ready.pauseQueue(queue);
  }

  async unpauseQueue(queue: string): Promise<void> {
    this.#ready.unpauseQueue(queue);
    this.#pump();
  }

  async getJob(id: string): Promise<JobDetails | undefined> {
    const entry = this.#entries.get(id);
    if (entry !== undefined) return entryDetails(entry);
    const kept = this.#kept.get(id);
    return kept === undefined ? undefined : finishedDetails(kept);
  }

  async cancel(
    id: string,
    reason: string | undefined,
    waitingOnly = false,
  ): Promise<{ id: string; state: JobState; cancelled: boolean } | undefined> {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      const kept = this.#kept.get(id);
      return kept === undefined ? undefined : { id, state: kept.state, cancelled: false };
    }
    const state = entry.state as CountedState;
    if (state === 'dead' || entry.cancelled !== undefined)
      return { id, state: entry.cancelled ? 'cancelled' : state, cancelled: false };
    if (state === 'running') {
      if (waitingOnly) return { id, state, cancelled: false };
      // Whatever the attempt comes to from now on, the job ends cancelled (#settle).
      entry.cancelled = { reason };
      this.#rt.abortAttempt(id, new JobCancelledError(id, reason));
      return { id, state, cancelled: true };
    }
    this.#keepFinished(entry, 'cancelled', undefined, reason);
    this.#finish(entry);
    return { id, state, cancelled: true };
  }

  async awaitFinished(id: string, signal: AbortSignal): Promise<JobDetails | undefined> {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      const kept = this.#kept.get(id);
      return kept === undefined ? undefined : finishedDetails(kept);
    }
    if (entry.state === 'dead') return entryDetails(entry);
    return this.#kept.until(id, signal);
  }

  async modify(id: string, change: JobChange): Promise<{ state: JobState; applied: boolean } | undefined> {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      const kept = this.#kept.get(id);
      return kept === undefined ? undefined : { state: kept.state, applied: false };
    }
    const state = entry.state as CountedState;
    const waiting = state === 'scheduled' || state === 'retrying';
    if (change.type === 'update') {
      if (!waiting && state !== 'ready') return { state, applied: false };
      entry.record = { ...entry.record, args: change.args, argsJson: change.argsJson };
      return { state, applied: true };
    }
    if (change.type === 'promote' && state === 'ready') return { state, applied: true };
    if (!waiting) return { state, applied: false };
    // Pushed again with its new time: the heap's copy at the old time is stale and skipped.
    entry.runAt = change.type === 'promote' ? Date.now() : change.at;
    entry.seq = this.#seq++;
    if (entry.runAt <= Date.now()) this.#makeReady(entry);
    else this.#due.push(entry);
    this.#armTimer();
    this.#pump();
    return { state, applied: true };
  }

  /** Keep a job that completed or was cancelled (per keepCompleted), and answer its waiters. */
  #keepFinished(entry: Entry, state: FinishedJob['state'], result: string | undefined, reason?: string): void {
    this.#kept.add(finishedEntry(entry, state, result, reason, Date.now()));
    if (state === 'cancelled')
      this.#rt.emit('job:cancelled', { job: refOf(entry.record), state: entry.state as JobState, reason });
  }

  // ── dispatch ─────────────────────────────────────────────────────────────

  #deadEntry(id: string): Entry {
    const entry = this.#dead.get(id);
    if (entry === undefined) throw new JobNotFoundError(id, 'in the dead set');
    return entry;
  }

  #registration(entry: Entry): CompiledRegistration | undefined {
    return this.#rt.handlers.get(entry.record.handler);
  }

  #lineKey(entry: Entry): string | undefined {
    const { key, queue } = entry.record;
    return key !== undefined && this.#registration(entry)?.ordered === true ? `${queue}\u0000${key}` : undefined;
  }

  /** A job became due: queue it behind its handler's ready jobs, or behind its key's line if ordered. */
  #makeReady(entry: Entry): void {
    moveEntry(entry, 'ready');
    if (this.#holds.joinLine(entry)) this.#ready.push(entry);
  }

  /** The job completed, died or was dropped: release its unique key, and let the next job of its key run. */
  #releaseHolds(entry: Entry): void {
    const next = this.#holds.release(entry);
    if (next !== undefined) this.#ready.push(next);
  }

  /** Remove a job for good. */
  #finish(entry: Entry): void {
    if (entry.state === 'done') return;
    moveEntry(entry, 'done');
    this.#entries.delete(entry.record.id);
    this.#dead.delete(entry.record.id);
    this.#releaseHolds(entry);
  }

  #pump(): void {
    const limit = this.#concurrency ?? this.#rt.options.concurrency;
    while (this.#consuming && this.#attempts.running < limit) {
      const entry = this.#ready.next((handler) => this.#weightOf(handler));
      if (entry === undefined) return;
      this.#startAttempt(entry);
    }
  }

  /** The priority of `handler` when it may start a job now (registered here, below its `maxConcurrency`). */
  #weightOf(handler: string): number | undefined {
    const reg = this.#rt.handlers.get(handler);
    if (reg === undefined) return undefined;
    if (reg.maxConcurrency > 0 && this.#attempts.runningOf(handler) >= reg.maxConcurrency) return undefined;
    return reg.priority;
  }

  #startAttempt(entry: Entry): void {
    moveEntry(entry, 'running');
    const job = { ...entry.record, fails: entry.fails, runAt: entry.runAt };
    entry.startedAt = Date.now();
    this.#attempts.run(
      entry.record.handler,
      (signal) =>
        this.#rt.run(job, {
          signal,
          progress: (json) => {
            entry.progress = json;
          },
        }),
      (outcome) => {
        const nextRunAt = this.#settle(entry, outcome);
        this.#rt.report(job, outcome, nextRunAt);
      },
      (error) => this.#rt.emit('error', { error }),
      () => this.#pump(),
    );
  }

  /** Apply an attempt's outcome; returns the retry time. */
  #settle(entry: Entry, outcome: AttemptOutcome): number | undefined {
    const now = Date.now();
    if (outcome.type === 'completed' && entry.cancelled === undefined)
      this.#tally.count(entry.record.queue, 'completed', now);
    if (outcome.type === 'retry' || outcome.type === 'dead') this.#tally.count(entry.record.queue, 'failed', now);
    if (entry.cancelled !== undefined) {
      // Cancelled while it ran: its completion (or failure) is refused.
      entry.state = 'running';
      this.#keepFinished(entry, 'cancelled', undefined, entry.cancelled.reason);
      this.#finish(entry);
      return undefined;
    }
    switch (outcome.type) {
      case 'completed':
        this.#keepFinished(entry, 'completed', outcome.result);
        this.#finish(entry);
        return undefined;
      case 'retry':
        entry.fails++;
        entry.lastError = errorInfo(outcome.error, now);
        moveEntry(entry, 'retrying');
        entry.runAt = now + outcome.delayMs;
        entry.seq = this.#seq++;
        this.#due.push(entry);
        this.#armTimer();
        return entry.runAt;
      case 'dead': {
        entry.fails++;
        entry.lastError = errorInfo(outcome.error, now);
        moveEntry(entry, 'dead');
        this.#dead.set(entry.record.id, entry);
        this.#releaseHolds(entry);
        this.#kept.wake(entry.record.id, entryDetails(entry));
        return undefined;
      }
      case 'aborted':
        // Stopped past the timeout: stop() drops it and reports it.
        return undefined;
    }
  }

  // ── due times ────────────────────────────────────────────────────────────

  #moveDue(): void {
    for (const entry of this.#due.popDue(Date.now())) {
      if (entry.state === 'scheduled' || entry.state === 'retrying') this.#makeReady(entry);
    }
  }

  #armTimer(): void {
    if (this.#consuming) this.#due.arm();
  }
}
