/**
 * The admin reads and actions of the Redis job adapter (BullMQ keeps its
 * queue getters away from the hot path the same way): counts per queue,
 * handler and state, paged lists, the dead set's retry and delete, partition
 * owners, pause and unpause. Everything here reads the stores the scripts
 * keep; nothing runs on a consumer's path.
 *
 * @module
 */

import type { Discovery } from '@shardwork/core';
import type { RedisClient, RedisConnection } from '@shardwork/discovery-redis/kit';
import {
  type BulkOptions,
  COUNTED_STATES,
  type CompiledRegistration,
  type CountedState,
  type JobErrorInfo,
  type JobInfo,
  JobNotFoundError,
  type JobPage,
  type JobState,
  type JobStats,
  type ListOptions,
  type PartitionOwner,
  type PauseOptions,
  type QueueThroughput,
  type StateCounts,
  UnknownHandlerError,
} from '@shardwork/jobs/adapter';
import type { ConsumerDirectory } from './consumers.js';
import type { QueueRegistry } from './queues.js';
import { recordArgs } from './records.js';
import type { QueueStore } from './store.js';

const emptyCounts = (): StateCounts => ({ scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 });

/** What the admin needs from the adapter. */
export interface AdminHost {
  readonly connection: RedisConnection;
  readonly registry: QueueRegistry;
  readonly directory: ConsumerDirectory;
  readonly partitions: number;
  /** This process's registrations. */
  handlers(): ReadonlyMap<string, CompiledRegistration>;
  store(queue: string): QueueStore;
  coordination(): Promise<Discovery>;
}

/** See the module documentation. */
export class RedisQueueAdmin {
  readonly #host: AdminHost;

  constructor(host: AdminHost) {
    this.#host = host;
  }

  async #redis(): Promise<RedisClient> {
    return this.#host.connection.ready();
  }

  async #queues(filter?: string): Promise<string[]> {
    return (await this.#host.registry.list()).filter((q) => filter === undefined || q === filter);
  }

  async stats(): Promise<JobStats> {
    const redis = await this.#redis();
    const total = emptyCounts();
    const queues: Record<string, StateCounts> = {};
    const handlers: Record<string, StateCounts & { paused: boolean; consumers?: number }> = {};
    for (const name of this.#host.handlers().keys()) handlers[name] = { ...emptyCounts(), paused: false };
    const queueNames = await this.#queues();
    const consumers = await this.#consumerProcesses(queueNames);
    const pausedQueues: string[] = [];
    for (const queue of queueNames) {
      const keys = this.#host.store(queue).keys;
      const [counts, paused, seen] = (await redis
        .multi()
        .hgetall(keys.count)
        .smembers(keys.paused)
        .smembers(keys.seen)
        .exec()) as [unknown, unknown][];
      const byQueue = emptyCounts();
      queues[queue] = byQueue;
      const pausedSet = new Set((paused?.[1] ?? []) as string[]);
      // The queue itself is paused (pauseQueue), not a handler named '*'.
      if (pausedSet.delete('*')) pausedQueues.push(queue);
      for (const name of (seen?.[1] ?? []) as string[]) {
        handlers[name] ??= { ...emptyCounts(), paused: false };
      }
      for (const name of pausedSet) {
        const entry = handlers[name] ?? { ...emptyCounts(), paused: true };
        entry.paused = true;
        handlers[name] = entry;
      }
      for (const [field, value] of Object.entries((counts?.[1] ?? {}) as Record<string, string>)) {
        const at = field.indexOf(':');
        const state = field.slice(0, at) as CountedState;
        const name = field.slice(at + 1);
        const n = Number(value);
        if (!COUNTED_STATES.includes(state) || !Number.isFinite(n) || n === 0) continue;
        byQueue[state] += n;
        total[state] += n;
        const entry = handlers[name] ?? { ...emptyCounts(), paused: pausedSet.has(name) };
        entry[state] += n;
        handlers[name] = entry;
      }
    }
    for (const [name, entry] of Object.entries(handlers)) entry.consumers = consumers.get(name)?.size ?? 0;
    for (const [name, set] of consumers) handlers[name] ??= { ...emptyCounts(), paused: false, consumers: set.size };
    return { total, queues, handlers, pausedQueues };
  }

  /** Live consumer processes per handler over `queues`, from their member records. */
  async #consumerProcesses(queues: readonly string[]): Promise<Map<string, Set<string>>> {
    const all = new Map<string, Set<string>>();
    for (const counts of await Promise.all(queues.map((q) => this.#host.directory.counts(q)))) {
      for (const [name, processes] of counts) {
        const set = all.get(name) ?? new Set<string>();
        for (const p of processes) set.add(p);
        all.set(name, set);
      }
    }
    return all;
  }

  /** A page of the kept finished jobs (`fin` and `done:<state>`), oldest first. */
  async #listKept(
    redis: RedisClient,
    state: 'completed' | 'cancelled',
    options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  ): Promise<JobPage> {
    const matching: JobInfo[] = [];
    for (const queue of await this.#queues(options.queue)) {
      const keys = this.#host.store(queue).keys;
      const flat = await redis.zrange(keys.done(state), 0, -1);
      if (flat.length === 0) continue;
      const [kept, records] = await Promise.all([redis.hmget(keys.fin, ...flat), redis.hmget(keys.jobs, ...flat)]);
      flat.forEach((id, i) => {
        const job = safeParse(kept[i] ?? '') as { f?: number; at?: number; e?: JobErrorInfo | null } | undefined;
        if (job === undefined) return;
        const parsed = recordArgs(records[i] ?? undefined);
        const raw = safeParse(records[i] ?? '');
        const info: JobInfo = {
          id,
          handler: parsed?.handler ?? '?',
          queue,
          key: parsed?.key,
          args: parsed?.args ?? {},
          state,
          fails: Number(job.f ?? 0),
          enqueuedAt: Number(raw?.enqueuedAt ?? 0),
          runAt: Number(raw?.runAt ?? 0),
          lastError: job.e ?? undefined,
          finishedAt: Number(job.at ?? 0),
        };
        if (options.handler === undefined || info.handler === options.handler) matching.push(info);
      });
    }
    matching.sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
    return { total: matching.length, jobs: matching.slice(options.offset, options.offset + options.limit) };
  }

  async list(
    state: JobState,
    options: Required<Pick<ListOptions, 'offset' | 'limit'>> & ListOptions,
  ): Promise<JobPage> {
    const redis = await this.#redis();
    if (state === 'completed' || state === 'cancelled') return this.#listKept(redis, state, options);
    const ids: { queue: string; id: string; at: number }[] = [];
    for (const queue of await this.#queues(options.queue)) {
      const keys = this.#host.store(queue).keys;
      if (state === 'dead') {
        const flat = await redis.zrange(keys.dead, 0, -1, 'WITHSCORES');
        for (let i = 0; i < flat.length; i += 2) ids.push({ queue, id: flat[i] as string, at: Number(flat[i + 1]) });
        continue;
      }
      const pipeline = redis.pipeline();
      for (let p = 0; p < this.#host.partitions; p++) {
        if (state === 'scheduled' || state === 'retrying') pipeline.zrange(keys.due(p), 0, -1, 'WITHSCORES');
        else if (state === 'running') pipeline.hgetall(keys.run(p));
        else pipeline.hgetall(keys.busy(p));
      }
      const replies = ((await pipeline.exec()) ?? []).map(([, value]) => value);
      if (state === 'scheduled' || state === 'retrying') {
        const due: { id: string; at: number }[] = [];
        for (const flat of replies as string[][]) {
          for (let i = 0; i < flat.length; i += 2) due.push({ id: flat[i] as string, at: Number(flat[i + 1]) });
        }
        const fails = due.length === 0 ? [] : await redis.hmget(keys.fails, ...due.map((d) => d.id));
        due.forEach((d, i) => {
          if ((fails[i] !== null) === (state === 'retrying')) ids.push({ queue, ...d });
        });
      } else if (state === 'running') {
        for (const run of replies as Record<string, string>[]) {
          for (const [id, value] of Object.entries(run)) ids.push({ queue, id, at: Number(value.split('|').pop()) });
        }
      } else {
        const seen = await redis.smembers(keys.seen);
        const given = redis.pipeline();
        for (let p = 0; p < this.#host.partitions; p++) given.smembers(keys.prio(p));
        const prios = ((await given.exec()) ?? []).map(([, value]) => (value ?? []) as string[]);
        const lists = redis.pipeline();
        for (let p = 0; p < this.#host.partitions; p++) {
          for (const h of seen) lists.lrange(keys.ready(p, h), 0, -1);
          // Lists of jobs given a priority: 'h|r' is list r:h|r.
          for (const hr of prios[p] ?? []) lists.lrange(keys.ready(p, hr), 0, -1);
        }
        (replies as Record<string, string>[]).forEach((busy, p) => {
          for (const key of Object.keys(busy)) lists.lrange(keys.line(p, key), 0, -1);
        });
        for (const [, value] of (await lists.exec()) ?? []) {
          for (const id of value as string[]) ids.push({ queue, id, at: ids.length });
        }
      }
    }
    const jobs: JobInfo[] = [];
    const matching: { queue: string; id: string; at: number; info: JobInfo }[] = [];
    // Records in batches per queue, then filter by handler and page.
    const byQueue = new Map<string, typeof ids>();
    for (const entry of ids) byQueue.set(entry.queue, [...(byQueue.get(entry.queue) ?? []), entry]);
    for (const [queue, entries] of byQueue) {
      const keys = this.#host.store(queue).keys;
      const list = entries.map((e) => e.id);
      const [records, fails, errors] = await Promise.all([
        redis.hmget(keys.jobs, ...list),
        redis.hmget(keys.fails, ...list),
        redis.hmget(keys.err, ...list),
      ]);
      entries.forEach((entry, i) => {
        const parsed = recordArgs(records[i] ?? undefined);
        const raw = records[i] === null || records[i] === undefined ? undefined : safeParse(records[i] as string);
        const info: JobInfo = {
          id: entry.id,
          handler: parsed?.handler ?? '?',
          queue,
          key: parsed?.key,
          args: parsed?.args ?? {},
          state,
          fails: Number(fails[i] ?? 0),
          enqueuedAt: Number(raw?.enqueuedAt ?? 0),
          runAt: state === 'scheduled' || state === 'retrying' ? entry.at : Number(raw?.runAt ?? 0),
          lastError:
            errors[i] === null || errors[i] === undefined
              ? undefined
              : (safeParse(errors[i] as string) as JobErrorInfo | undefined),
        };
        if (options.handler === undefined || info.handler === options.handler) matching.push({ ...entry, info });
      });
    }
    if (state !== 'ready') matching.sort((a, b) => a.at - b.at);
    for (const m of matching.slice(options.offset, options.offset + options.limit)) jobs.push(m.info);
    return { total: matching.length, jobs };
  }

  async #deadOp(name: 'retry-dead' | 'delete-dead', id: string | undefined, options: BulkOptions): Promise<number> {
    let done = 0;
    for (const queue of await this.#queues()) {
      const store = this.#host.store(queue);
      for (;;) {
        const [moved, left] = (await store.call(name, [id ?? '', 1000])) as [number, number];
        if (id !== undefined) {
          if (moved >= 0) return moved;
          break;
        }
        done += moved;
        options.onProgress?.(done);
        if (left === 0 || moved === 0) break;
      }
    }
    if (id !== undefined) throw new JobNotFoundError(id, 'in the dead set');
    return done;
  }

  retryDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#deadOp('retry-dead', id, options);
  }

  deleteDead(id?: string, options: BulkOptions = {}): Promise<number> {
    return this.#deadOp('delete-dead', id, options);
  }

  async partitions(): Promise<PartitionOwner[]> {
    const redis = await this.#redis();
    const discovery = await this.#host.coordination();
    const owners: PartitionOwner[] = [];
    for (const queue of await this.#queues()) {
      const [snapshot, fence] = await Promise.all([
        discovery.snapshot(queue),
        redis.hgetall(this.#host.store(queue).keys.fence),
      ]);
      const members = new Map(snapshot.members.map((m) => [m.id, m]));
      const claims = new Map(snapshot.claims.map((c) => [c.shard, c]));
      for (let partition = 0; partition < this.#host.partitions; partition++) {
        const claim = claims.get(partition);
        const member = claim === undefined ? undefined : members.get(claim.owner);
        const fenced = fence[String(partition)];
        owners.push({
          queue,
          partition,
          owner: claim?.owner,
          host: member?.host,
          pid: member?.pid,
          token: claim?.token,
          fence: fenced === undefined ? undefined : Number(fenced),
        });
      }
    }
    return owners;
  }

  async pause(handler: string, options: PauseOptions = {}): Promise<void> {
    const redis = await this.#redis();
    const known = await this.#queues();
    if (options.force !== true && !(await this.#knows(handler, known))) {
      const consumers = await this.#consumerProcesses(known);
      throw new UnknownHandlerError(
        handler,
        [...consumers.keys()].sort(),
        'No live consumer registers it and no job of it was ever enqueued: check the name, or pause it anyway with { force: true }.',
      );
    }
    const queues = new Set([...known, this.#host.handlers().get(handler)?.queue ?? 'default']);
    // Queue by queue: on a cluster their keys live on different nodes.
    await Promise.all([...queues].map((queue) => redis.sadd(this.#host.store(queue).keys.paused, handler)));
  }

  /** Whether a live consumer registers `handler` or any queue has seen a job of it. */
  async #knows(handler: string, queues: readonly string[]): Promise<boolean> {
    if ((await this.#consumerProcesses(queues)).has(handler)) return true;
    const redis = await this.#redis();
    const seen = await Promise.all(queues.map((q) => redis.sismember(this.#host.store(q).keys.seen, handler)));
    return seen.some((n) => n === 1);
  }

  async throughput(minutes: number, queue?: string): Promise<QueueThroughput[]> {
    const redis = await this.#redis();
    const last = Math.floor((await this.#serverTime(redis)) / 60_000);
    const out: QueueThroughput[] = [];
    for (const name of await this.#queues(queue)) {
      const pipeline = redis.pipeline();
      const base = this.#host.store(name).keys.base;
      for (let m = last - minutes + 1; m <= last; m++) pipeline.hmget(`${base}tp:${m}`, 'c', 'f');
      const replies = (await pipeline.exec()) ?? [];
      out.push({
        queue: name,
        points: replies.map(([, value], i) => {
          const [c, f] = (value ?? [null, null]) as (string | null)[];
          return { at: (last - minutes + 1 + i) * 60_000, completed: Number(c ?? 0), failed: Number(f ?? 0) };
        }),
      });
    }
    return out;
  }

  /** Redis's clock (the scripts count by it), ms. */
  async #serverTime(redis: RedisClient): Promise<number> {
    const [seconds, micros] = (await redis.time()) as [number | string, number | string];
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async pauseQueue(queue: string): Promise<void> {
    const redis = await this.#redis();
    await this.#host.registry.remember(queue);
    // '*' is no handler name (they have no '*'): fetch.lua takes nothing of the queue while it is there.
    await redis.sadd(this.#host.store(queue).keys.paused, '*');
  }

  async unpauseQueue(queue: string): Promise<void> {
    const redis = await this.#redis();
    const keys = this.#host.store(queue).keys;
    await redis.multi().srem(keys.paused, '*').publish(keys.wake, '*').exec();
  }

  async unpause(handler: string): Promise<void> {
    const redis = await this.#redis();
    await Promise.all(
      (await this.#queues()).map((queue) => {
        const keys = this.#host.store(queue).keys;
        return redis.multi().srem(keys.paused, handler).publish(keys.wake, '*').exec();
      }),
    );
  }
}

function safeParse(raw: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(raw) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
