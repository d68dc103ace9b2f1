/**
 * The key layout (see `lua/common.lua` for every key): all keys of a queue
 * start with `<prefix>{<queue>}:`. The hash tag is the queue name, so every Lua
 * script touches one slot and runs on Redis Cluster, and different queues
 * spread over the cluster's nodes; one queue lives on one node (a script must
 * see the queue's unique keys, dead set and concurrency counters atomically).
 *
 * @module
 */

/** Base of every key of `queue`: `<prefix>{<queue>}:`. */
export function queueBase(prefix: string, queue: string): string {
  return `${prefix}{${queue}}:`;
}

/** Key names the TypeScript side reads directly (admin views); the scripts derive the rest. */
export function queueKeys(prefix: string, queue: string) {
  const b = queueBase(prefix, queue);
  return {
    base: b,
    jobs: `${b}jobs`,
    meta: `${b}meta`,
    fails: `${b}fails`,
    err: `${b}err`,
    dead: `${b}dead`,
    paused: `${b}paused`,
    seen: `${b}seen`,
    ordered: `${b}ordered`,
    count: `${b}count`,
    fence: `${b}fence`,
    cron: `${b}cron`,
    info: `${b}info`,
    wake: `${b}wake`,
    fin: `${b}fin`,
    done: (state: 'completed' | 'cancelled') => `${b}done:${state}`,
    /** Ready list of a handler (`h`), or of its jobs given priority r (`h|r`). */
    ready: (p: number, handler: string) => `${b}p${p}:r:${handler}`,
    /** The `h|r` of the lists of jobs given a priority that may hold jobs. */
    prio: (p: number) => `${b}p${p}:prio`,
    due: (p: number) => `${b}p${p}:due`,
    run: (p: number) => `${b}p${p}:run`,
    busy: (p: number) => `${b}p${p}:busy`,
    line: (p: number, key: string) => `${b}p${p}:line:${key}`,
  };
}

/** The keys of one queue. */
export type QueueKeys = ReturnType<typeof queueKeys>;

/** The set of queue names ever used under `prefix` (outside any queue's hash tag). */
export function queuesKey(prefix: string): string {
  return `${prefix}queues`;
}

// One hash for every adapter with partitions, so that a key meets its partition whatever the store.
export { partitionOf } from '@shardwork/jobs/adapter';
