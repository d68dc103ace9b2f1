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

import { setMaxListeners } from 'node:events';
import { IllegalStateError, startTicker, type Ticker } from '@shardwork/core';
import { settlesWithin } from '@shardwork/core/backend';
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
  type StateCounts,
  type StopResult,
  type ThroughputPoint,
} from '../adapter.js';
import {
  errorInfo,
  JobAbortedError,
  JobCancelledError,
  type JobErrorInfo,
  JobNotFoundError,
  UnknownHandlerError,
} from '../errors.js';
import type { DropReason } from '../events.js';
import type { CountedState, EnqueueResult, JobDetails, JobInfo, JobRecord, JobState } from '../job.js';
import type { CompiledPeriodic, CompiledQueueOptions, CompiledRegistration } from '../options.js';
import { DueTimes } from './due-times.js';
import { type FinishedJob, FinishedJobs, finishedDetails, parsed } from './finished.js';
import { KeyHolds } from './key-holds.js';
import { Fifo } from './structures.js';

/** A job's state in this adapter; `done` means removed (finished jobs are kept apart). */
type EntryState = CountedState | 'done';

/** Named state changes; anything else is a bug and throws. */
const MOVES: Readonly<Record<EntryState, readonly EntryState[]>> = {
  scheduled: ['ready', 'done'],
  ready: ['running', 'done'],
  running: ['done', 'retrying', 'dead', 'ready'],
  retrying: ['ready', 'done'],
  dead: ['ready', 'done'],
  done: [],
};

/** The ready jobs of one handler at one priority (`undefined`: the handler's own). */
interface ReadyGroup {
  readonly handler: string;
  readonly priority: number | undefined;
  readonly fifo: Fifo<Entry>;
}

interface Entry {
  record: JobRecord;
  state: EntryState;
  fails: number;
  runAt: number;
  /** Tie-breaker among equal due times: enqueue (or retry) order. */
  seq: number;
  lastError: JobErrorInfo | undefined;
  /** An ordered job that holds its place in its key's line. */
  inLine: boolean;
  /** When its running or last attempt started. */
  startedAt?: number;
  /** JSON text of its last progress. */
  progress?: string;
  /** Set by `cancel` while it runs: whatever the attempt comes to, the job ends cancelled. */
  cancelled?: { readonly reason: string | undefined };
}

function emptyCounts(): StateCounts {
  return { scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 };
}

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
  /** Ready jobs per handler, in the order they became due. */
  /** Ready jobs per handler and per priority given in `perform` (keys from {@link readyGroup}). */
  readonly #ready = new Map<string, ReadyGroup>();
  readonly #holds = new KeyHolds<Entry>((entry) => this.#lineKey(entry));
  readonly #dead = new Map<string, Entry>();
  readonly #paused = new Set<string>();
  readonly #pausedQueues = new Set<string>();
  /** Ready jobs of paused queues, set aside in the order they came up, until their queue is unpaused. */
  readonly #parked: Entry[] = [];
  readonly #runningBy = new Map<string, number>();
  readonly #attempts = new Set<Promise<void>>();
  #running = 0;
  #seq = 0;
  #consuming = false;
  #pumpScheduled = false;
  #abort = new AbortController();
  #tickers: Ticker[] = [];
  /** Ids chosen by callers, with when each is forgotten (in insertion order, so expiry order). */
  readonly #givenIds = new Map<string, number>();
  #finished: FinishedJobs | undefined;
  /** Completed and failed attempts per queue and minute (ms / 60000), the last two hours. */
  readonly #tally = new Map<string, Map<number, { completed: number; failed: number }>>();

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
    this.#forgetIds(now);
    const results = records.map((record): EnqueueResult => {
      if (record.idGiven === true) {
        if (this.#entries.has(record.id) || this.#givenIds.has(record.id) || this.#kept.get(record.id) !== undefined)
          return { id: record.id, duplicate: true };
        this.#givenIds.set(record.id, now + this.#rt.options.idempotencyWindowMs);
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
    this.#abort = new AbortController();
    // Every running attempt listens on it.
    setMaxListeners(0, this.#abort.signal);
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

  /** Drop the caller-chosen ids whose idempotency window has passed. */
  #forgetIds(now: number): void {
    for (const [id, until] of this.#givenIds) {
      if (until > now) return;
      this.#givenIds.delete(id);
    }
  }

  async stop(timeoutMs: number): Promise<StopResult> {
    this.#consuming = false;
    for (const ticker of this.#tickers.splice(0)) ticker.stop();
    this.#due.disarm();
    let aborted = 0;
    if (this.#attempts.size > 0) {
      if (!(await settlesWithin(Promise.all([...this.#attempts]), timeoutMs))) {
        aborted = this.#running;
        this.#abort.abort();
        // Aborted attempts resolve at once (runAttempt does not wait for a handler that ignores its signal).
        await Promise.all([...this.#attempts]);
      }
    }
    let dropped = 0;
    for (const entry of [...this.#entries.values()]) {
      if (entry.state === 'dead') continue;
      const reason: DropReason =
        entry.state === 'scheduled' || entry.state === 'retrying'
          ? 'scheduled'
          : entry.state === 'ready'
            ? 'queued'
            : 'aborted';
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
    const total = emptyCounts();
    const queues: Record<string, StateCounts> = {};
    const handlers: Record<string, StateCounts & { paused: boolean }> = {};
    for (const name of this.#rt.handlers.keys()) handlers[name] = { ...emptyCounts(), paused: this.#paused.has(name) };
    for (const { record, state } of this.#entries.values()) {
      if (state === 'done') continue;
      total[state]++;
      const byQueue = queues[record.queue] ?? emptyCounts();
      queues[record.queue] = byQueue;
      byQueue[state]++;
      const byHandler = handlers[record.handler] ?? { ...emptyCounts(), paused: this.#paused.has(record.handler) };
      handlers[record.handler] = byHandler;
      byHandler[state]++;
    }
    return { total, queues, handlers, pausedQueues: [...this.#pausedQueues].sort() };
  }

  async list(
    state: JobState,
    options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  ): Promise<JobPage> {
    if (state === 'completed' || state === 'cancelled') {
      const kept = this.#kept
        .list(state, options.queue)
        .filter((job) => options.handler === undefined || job.record.handler === options.handler);
      return {
        total: kept.length,
        jobs: kept.slice(options.offset, options.offset + options.limit).map(
          ({ record, ...job }): JobInfo => ({
            ...refOf(record),
            state: job.state,
            fails: job.fails,
            enqueuedAt: record.enqueuedAt,
            runAt: job.runAt,
            lastError: job.error,
            finishedAt: job.finishedAt,
          }),
        ),
      };
    }
    const source = state === 'dead' ? [...this.#dead.values()] : [...this.#entries.values()];
    const matching = source
      .filter(
        (e) =>
          e.state === state &&
          (options.queue === undefined || e.record.queue === options.queue) &&
          (options.handler === undefined || e.record.handler === options.handler),
      )
      .sort((a, b) => (state === 'dead' ? 0 : a.runAt - b.runAt || a.seq - b.seq));
    return {
      total: matching.length,
      jobs: matching.slice(options.offset, options.offset + options.limit).map((e) => this.#info(e)),
    };
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
    this.#paused.add(handler);
  }

  async unpause(handler: string): Promise<void> {
    this.#paused.delete(handler);
    this.#pump();
  }

  async pauseQueue(queue: string): Promise<void> {
    this.#pausedQueues.add(queue);
  }

  async unpauseQueue(queue: string): Promise<void> {
    this.#pausedQueues.delete(queue);
    const parked = this.#parked.splice(0);
    for (const entry of parked) {
      if (this.#pausedQueues.has(entry.record.queue)) this.#parked.push(entry);
      else if (entry.state === 'ready') this.#pushReady(entry);
    }
    this.#pump();
  }

  async getJob(id: string): Promise<JobDetails | undefined> {
    const entry = this.#entries.get(id);
    if (entry !== undefined) return this.#details(entry);
    const kept = this.#kept.get(id);
    return kept === undefined ? undefined : finishedDetails(kept);
  }

  async cancel(
    id: string,
    reason: string | undefined,
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
    if (entry.state === 'dead') return this.#details(entry);
    signal.throwIfAborted();
    return new Promise<JobDetails>((resolve, reject) => {
      const onAbort = (): void => {
        stop();
        reject(signal.reason);
      };
      const stop = this.#kept.wait(id, (outcome) => {
        signal.removeEventListener('abort', onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
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
    const now = Date.now();
    this.#kept.add({
      record: entry.record,
      state,
      fails: entry.fails,
      runAt: entry.runAt,
      startedAt: entry.startedAt,
      finishedAt: now,
      result,
      progress: entry.progress,
      error:
        state === 'cancelled'
          ? { name: 'JobCancelledError', message: reason ?? 'cancelled', at: now }
          : entry.lastError,
    });
    if (state === 'cancelled')
      this.#rt.emit('job:cancelled', { job: refOf(entry.record), state: entry.state as JobState, reason });
  }

  // ── dispatch ─────────────────────────────────────────────────────────────

  #move(entry: Entry, to: EntryState): void {
    if (!MOVES[entry.state].includes(to)) {
      throw new IllegalStateError(`move job ${entry.record.id} to ${to}`, entry.state);
    }
    entry.state = to;
  }

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
    this.#move(entry, 'ready');
    if (this.#holds.joinLine(entry)) this.#pushReady(entry);
  }

  #pushReady(entry: Entry): void {
    const { handler, priority } = entry.record;
    const name = priority === undefined ? handler : `${handler}\u0000${priority}`;
    let group = this.#ready.get(name);
    if (group === undefined) {
      group = { handler, priority, fifo: new Fifo() };
      this.#ready.set(name, group);
    }
    group.fifo.push(entry);
  }

  /** The job completed, died or was dropped: release its unique key, and let the next job of its key run. */
  #releaseHolds(entry: Entry): void {
    const next = this.#holds.release(entry);
    if (next !== undefined) this.#pushReady(next);
  }

  /** Remove a job for good. */
  #finish(entry: Entry): void {
    if (entry.state === 'done') return;
    this.#move(entry, 'done');
    this.#entries.delete(entry.record.id);
    this.#dead.delete(entry.record.id);
    this.#releaseHolds(entry);
  }

  /**
   * Draw the next group to run: gocraft's draw weighted by priority (the
   * handler's, or the one its jobs were given), among those with capacity.
   */
  #pick(): Fifo<Entry> | undefined {
    let total = 0;
    const candidates: [Fifo<Entry>, number][] = [];
    for (const { handler, priority, fifo } of this.#ready.values()) {
      if (fifo.length === 0 || this.#paused.has(handler)) continue;
      const reg = this.#rt.handlers.get(handler);
      if (reg === undefined) continue;
      if (reg.maxConcurrency > 0 && (this.#runningBy.get(handler) ?? 0) >= reg.maxConcurrency) continue;
      const weight = priority ?? reg.priority;
      total += weight;
      candidates.push([fifo, weight]);
    }
    if (candidates.length <= 1) return candidates[0]?.[0];
    let draw = Math.random() * total;
    for (const [fifo, weight] of candidates) {
      draw -= weight;
      if (draw < 0) return fifo;
    }
    return candidates[candidates.length - 1]?.[0];
  }

  #pump(): void {
    const limit = this.#concurrency ?? this.#rt.options.concurrency;
    while (this.#consuming && this.#running < limit) {
      const entry = this.#pick()?.shift();
      if (entry === undefined) return;
      // Cancelled while it waited in line.
      if (entry.state !== 'ready') continue;
      if (this.#pausedQueues.has(entry.record.queue)) {
        this.#parked.push(entry);
        continue;
      }
      this.#startAttempt(entry);
    }
  }

  #startAttempt(entry: Entry): void {
    this.#move(entry, 'running');
    const name = entry.record.handler;
    this.#running++;
    this.#runningBy.set(name, (this.#runningBy.get(name) ?? 0) + 1);
    const job = { ...entry.record, fails: entry.fails, runAt: entry.runAt };
    entry.startedAt = Date.now();
    const attempt: Promise<void> = this.#rt
      .run(job, {
        signal: this.#abort.signal,
        progress: (json) => {
          entry.progress = json;
        },
      })
      .then((outcome) => {
        this.#running--;
        this.#runningBy.set(name, (this.#runningBy.get(name) ?? 1) - 1);
        const nextRunAt = this.#settle(entry, outcome);
        this.#rt.report(job, outcome, nextRunAt);
      })
      .catch((error: unknown) => this.#rt.emit('error', { error }))
      .finally(() => {
        this.#attempts.delete(attempt);
        this.#pump();
      });
    this.#attempts.add(attempt);
  }

  /** Count a completed or failed attempt in its queue's minute. */
  #count(queue: string, field: 'completed' | 'failed', now: number): void {
    let minutes = this.#tally.get(queue);
    if (minutes === undefined) {
      minutes = new Map();
      this.#tally.set(queue, minutes);
    }
    const minute = Math.floor(now / 60_000);
    let point = minutes.get(minute);
    if (point === undefined) {
      point = { completed: 0, failed: 0 };
      minutes.set(minute, point);
      for (const old of minutes.keys()) if (old < minute - 120) minutes.delete(old);
    }
    point[field]++;
  }

  async throughput(minutes: number, queue?: string): Promise<QueueThroughput[]> {
    const last = Math.floor(Date.now() / 60_000);
    const queues = queue === undefined ? [...this.#tally.keys()].sort() : [queue];
    return queues.map((name) => {
      const counts = this.#tally.get(name);
      const points: ThroughputPoint[] = [];
      for (let m = last - minutes + 1; m <= last; m++) {
        const point = counts?.get(m);
        points.push({ at: m * 60_000, completed: point?.completed ?? 0, failed: point?.failed ?? 0 });
      }
      return { queue: name, points };
    });
  }

  /** Apply an attempt's outcome; returns the retry time. */
  #settle(entry: Entry, outcome: AttemptOutcome): number | undefined {
    const now = Date.now();
    if (outcome.type === 'completed' && entry.cancelled === undefined)
      this.#count(entry.record.queue, 'completed', now);
    if (outcome.type === 'retry' || outcome.type === 'dead') this.#count(entry.record.queue, 'failed', now);
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
        this.#move(entry, 'retrying');
        entry.runAt = now + outcome.delayMs;
        entry.seq = this.#seq++;
        this.#due.push(entry);
        this.#armTimer();
        return entry.runAt;
      case 'dead': {
        entry.fails++;
        entry.lastError = errorInfo(outcome.error, now);
        this.#move(entry, 'dead');
        this.#dead.set(entry.record.id, entry);
        this.#releaseHolds(entry);
        this.#kept.wake(entry.record.id, this.#details(entry));
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

  #details(entry: Entry): JobDetails {
    const { record } = entry;
    return {
      ...refOf(record),
      state: entry.state as CountedState,
      attempt: entry.state === 'running' ? entry.fails + 1 : entry.fails,
      fails: entry.fails,
      maxFails: undefined,
      priority: record.priority,
      enqueuedAt: record.enqueuedAt,
      scheduledAt: entry.runAt,
      startedAt: entry.startedAt,
      finishedAt: entry.state === 'dead' ? entry.lastError?.at : undefined,
      progress: parsed(entry.progress),
      result: undefined,
      error: entry.lastError,
      partition: undefined,
      owner: undefined,
    };
  }

  #info(entry: Entry): JobInfo {
    const { record } = entry;
    return {
      ...refOf(record),
      state: entry.state as JobState,
      fails: entry.fails,
      enqueuedAt: record.enqueuedAt,
      runAt: entry.runAt,
      lastError: entry.lastError,
    };
  }
}
