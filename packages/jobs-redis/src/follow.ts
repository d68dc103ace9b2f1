/**
 * Following and steering one job on Redis: `getJob` (job.lua), `cancel`
 * (cancel.lua) and `waitFor` (wait.lua). A job's id does not name its queue,
 * so each looks through the known queues (one script call per queue, until
 * one knows the job).
 *
 * Waiting needs no polling: a waiting process subscribes once to a channel
 * of its own, and wait.lua adds that channel to the job's waiters in the same
 * step as it checks whether the job has finished; the script that finishes
 * the job publishes its outcome to the waiters' channels only (common.lua's
 * `notify`). After the subscriber reconnects (messages may have been missed)
 * every pending wait is registered and checked again.
 *
 * @module
 */

import type { RedisClient, RedisConnection } from '@shardwork/discovery-redis/kit';
import {
  type AdapterRuntime,
  type CancelResult,
  errorInfo,
  type JobChange,
  type JobDetails,
  type JobErrorInfo,
  type JobOutcome,
  type JobState,
} from '@shardwork/jobs/adapter';
import { nanoid } from 'nanoid';
import type { QueueRegistry } from './queues.js';
import { serializeRecord } from './records.js';
import type { QueueStore } from './store.js';

/** What {@link RedisJobFollow} needs from its adapter. */
export interface FollowHost {
  readonly connection: RedisConnection;
  readonly prefix: string;
  readonly registry: QueueRegistry;
  store(queue: string): QueueStore;
  runtime(): AdapterRuntime;
}

/** A finished job as a waiter's channel gets it (common.lua's `notify`): result and error as JSON values. */
interface Message {
  readonly id: string;
  readonly s: JobState;
  readonly r?: unknown;
  readonly e?: JobErrorInfo | null;
}

/** A kept finished job: its `fin` value (common.lua's `finish_jobs`) and its record. */
interface Kept {
  readonly s: 'completed' | 'cancelled';
  readonly at: number;
  /** Partition it was in (absent in values kept before it was recorded). */
  readonly p?: number | null;
  readonly f: number;
  readonly st: number | null;
  /** Left out when absent (as are `pr` and `e`). */
  readonly r?: unknown;
  readonly pr?: unknown;
  readonly e?: JobErrorInfo | null;
  readonly rec: Record<string, unknown>;
}

/** Whether job.lua's reply names a job (live, or kept with its `fin` value). */
const isKnown = (reply: unknown[]): boolean => reply[0] !== '' || reply[1] !== undefined;

/** What job.lua returns for a known job. */
interface Found {
  readonly state: JobState;
  readonly rec: string;
  readonly f?: number;
  readonly e?: string;
  readonly pr?: string;
  readonly st?: number;
  readonly at?: number;
  readonly p?: number;
}

/** How long a wait stays registered in Redis without being renewed (a process that died leaves it). */
const WAIT_TTL_MS = 24 * 3600_000;

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The outcome of a message (see {@link Message}). */
function outcomeOf(message: Message): JobOutcome {
  return {
    id: message.id,
    state: message.s,
    result: message.s === 'completed' ? (message.r ?? null) : undefined,
    error: message.e ?? undefined,
  };
}

/** The details a stored record (parsed, unchecked) gives. */
function fromRecord(
  record: Record<string, unknown>,
): Pick<JobDetails, 'handler' | 'key' | 'args' | 'priority' | 'enqueuedAt'> {
  return {
    handler: String(record.handler ?? '?'),
    key: typeof record.key === 'string' ? record.key : undefined,
    args: (typeof record.args === 'object' && record.args !== null ? record.args : {}) as JobDetails['args'],
    priority: typeof record.priority === 'number' ? record.priority : undefined,
    enqueuedAt: Number(record.enqueuedAt ?? 0),
  };
}

/** The details of a kept finished job. */
function keptDetails(id: string, queue: string, kept: Kept): JobDetails {
  const record = kept.rec;
  return {
    id,
    queue,
    ...fromRecord(record),
    state: kept.s,
    attempt: kept.f + (kept.st === null ? 0 : 1),
    fails: kept.f,
    maxFails: undefined,
    scheduledAt: Number(record.runAt ?? 0),
    startedAt: kept.st ?? undefined,
    finishedAt: kept.at,
    progress: kept.pr ?? undefined,
    result: kept.s === 'completed' ? (kept.r ?? null) : undefined,
    error: kept.e ?? undefined,
    partition: kept.p ?? undefined,
    owner: undefined,
  };
}

/** See the module documentation. */
export class RedisJobFollow {
  readonly #host: FollowHost;
  readonly #channel: string;
  /** Pending waits by job id: the local callers to answer. */
  readonly #waiters = new Map<string, Set<(outcome: JobOutcome) => void>>();
  #subscriber: Promise<RedisClient> | undefined;

  constructor(host: FollowHost) {
    this.#host = host;
    this.#channel = `${host.prefix}waits:${nanoid()}`;
  }

  /** Run `name` on each known queue until one knows the job; its queue and reply. */
  async #inQueues(
    name: 'job' | 'cancel' | 'wait' | 'modify',
    args: (id: string) => (string | number)[],
    id: string,
    known: (reply: unknown[]) => boolean,
  ): Promise<{ queue: string; reply: unknown[] } | undefined> {
    for (const queue of await this.#host.registry.list()) {
      const reply = await this.#host.store(queue).call(name, args(id));
      if (known(reply)) return { queue, reply };
    }
    return undefined;
  }

  async getJob(id: string): Promise<JobDetails | undefined> {
    const found = await this.#inQueues('job', (i) => [i], id, isKnown);
    if (found === undefined) return undefined;
    if (found.reply[0] === '') {
      const kept = JSON.parse(String(found.reply[1])) as Omit<Kept, 'rec'>;
      return keptDetails(id, found.queue, { ...kept, rec: (parseJson(String(found.reply[2])) ?? {}) as Kept['rec'] });
    }
    const job = JSON.parse(String(found.reply[0])) as Found;
    const record = (parseJson(job.rec) ?? {}) as Record<string, unknown>;
    const fails = job.f ?? 0;
    const waiting = job.state === 'scheduled' || job.state === 'retrying';
    return {
      id,
      queue: found.queue,
      ...fromRecord(record),
      state: job.state,
      attempt: job.state === 'running' ? fails + 1 : fails,
      fails,
      maxFails: undefined,
      scheduledAt: waiting && job.at !== undefined ? job.at : Number(record.runAt ?? 0),
      startedAt: job.st,
      finishedAt: job.state === 'dead' ? job.at : undefined,
      progress: parseJson(job.pr),
      result: undefined,
      error: parseJson(job.e) as JobErrorInfo | undefined,
      partition: job.p,
      owner: undefined,
    };
  }

  async cancel(id: string, reason: string | undefined, waitingOnly: boolean): Promise<CancelResult | undefined> {
    const error = { ...errorInfo(new Error(reason ?? 'cancelled'), Date.now()), name: 'JobCancelledError' };
    const found = await this.#inQueues(
      'cancel',
      (i) => [i, JSON.stringify(error), waitingOnly ? 'w' : ''],
      id,
      (r) => r[0] !== 'unknown',
    );
    if (found === undefined) return undefined;
    const [what, state] = found.reply as [string, JobState];
    return { id, state, cancelled: what === 'cancelled' };
  }

  async modify(id: string, change: JobChange): Promise<{ state: JobState; applied: boolean } | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let read = '';
      let written = '';
      if (change.type === 'update') {
        const found = await this.#inQueues('job', (i) => [i], id, isKnown);
        if (found === undefined) return undefined;
        if (found.reply[0] === '') return { state: (JSON.parse(String(found.reply[1])) as Kept).s, applied: false };
        read = (JSON.parse(String(found.reply[0])) as Found).rec;
        written = rewriteArgs(read, change.argsJson);
      }
      const at = change.type === 'reschedule' ? Math.round(change.at) : 0;
      const found = await this.#inQueues(
        'modify',
        (i) => [i, change.type, at, read, written],
        id,
        (r) => r[0] !== 'unknown',
      );
      if (found === undefined) return undefined;
      const [what, state] = found.reply as [string, JobState];
      // Changed between our read and the write (another update): read it again.
      if (what === 'changed') continue;
      return { state, applied: what === 'done' };
    }
    throw new Error(`@shardwork/jobs-redis: job ${id} kept changing while it was updated`);
  }

  async awaitFinished(id: string, signal: AbortSignal): Promise<JobOutcome | undefined> {
    await this.#subscribe();
    signal.throwIfAborted();
    let answer: (outcome: JobOutcome) => void = () => undefined;
    const answered = new Promise<JobOutcome>((resolve) => {
      answer = resolve;
    });
    // Listening before the wait is registered: the job may finish in between.
    let set = this.#waiters.get(id);
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(id, set);
    }
    set.add(answer);
    const forget = (): void => {
      set.delete(answer);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
    };
    try {
      const registered = await this.#register(id);
      if (registered === 'unknown') return undefined;
      if (registered !== 'waiting') return registered;
      return await new Promise<JobOutcome>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason);
        if (signal.aborted) onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        answered.then(
          (outcome) => {
            signal.removeEventListener('abort', onAbort);
            resolve(outcome);
          },
          () => undefined,
        );
      });
    } finally {
      forget();
    }
  }

  /** Register this process's wait for job `id`: `waiting`, `unknown`, or the outcome of a job that finished. */
  async #register(id: string): Promise<JobOutcome | 'waiting' | 'unknown'> {
    const found = await this.#inQueues(
      'wait',
      (i) => [i, this.#channel, WAIT_TTL_MS],
      id,
      (r) => r[0] !== 'unknown',
    );
    if (found === undefined) return 'unknown';
    if (found.reply[0] === 'waiting') return 'waiting';
    if (found.reply[0] === 'kept') {
      const kept = JSON.parse(String(found.reply[1])) as Kept;
      return outcomeOf({ id, s: kept.s, r: kept.r, e: kept.e ?? null });
    }
    return outcomeOf(JSON.parse(String(found.reply[1])) as Message);
  }

  /** The subscriber of this process's channel, subscribed (once). */
  #subscribe(): Promise<RedisClient> {
    this.#subscriber ??= (async () => {
      const sub = this.#host.connection.subscriber();
      sub.on('message', (channel: string, text: string) => {
        if (channel !== this.#channel) return;
        let message: Message;
        try {
          message = JSON.parse(text) as Message;
        } catch {
          return;
        }
        this.#answer(message.id, outcomeOf(message));
      });
      let readies = 0;
      sub.on('ready', () => {
        if (readies++ === 0) return;
        // Back after a reconnect: messages may have been missed; register every wait again.
        void sub.subscribe(this.#channel).then(
          () => this.#recheck(),
          () => undefined,
        );
      });
      await sub.connect().catch(() => undefined);
      await sub.subscribe(this.#channel).catch((error: unknown) => {
        // Redis down or refusing: the queue's own error (QueueUnavailableError, BackendRefusedError).
        throw this.#host.connection.mapError(error);
      });
      return sub;
    })();
    this.#subscriber.catch(() => {
      this.#subscriber = undefined;
    });
    return this.#subscriber;
  }

  #answer(id: string, outcome: JobOutcome): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    this.#waiters.delete(id);
    for (const answer of set) answer(outcome);
  }

  async #recheck(): Promise<void> {
    for (const id of [...this.#waiters.keys()]) {
      const registered = await this.#register(id).catch(() => 'waiting' as const);
      if (registered !== 'waiting' && registered !== 'unknown') this.#answer(id, registered);
    }
  }
}

/** A stored record with other args (the rest as stored). */
function rewriteArgs(raw: string, argsJson: string): string {
  const r = JSON.parse(raw) as Record<string, unknown>;
  return serializeRecord({
    id: String(r.id),
    handler: String(r.handler),
    queue: String(r.queue),
    key: typeof r.key === 'string' ? r.key : undefined,
    uniqueKey: typeof r.uniqueKey === 'string' ? r.uniqueKey : undefined,
    ordered: r.ordered === true,
    ...(typeof r.traceparent === 'string' ? { traceparent: r.traceparent } : {}),
    ...(typeof r.priority === 'number' ? { priority: r.priority } : {}),
    enqueuedAt: Number(r.enqueuedAt),
    runAt: Number(r.runAt),
    args: {},
    argsJson,
  });
}
