/**
 * The queue registry: `<prefix>queues`, the set of queue names the admin
 * views (stats, lists, the CLI, the dashboard) read, and each queue's set of
 * `ordered` handlers that consumers publish. Both are bookkeeping that the
 * processes using a queue rebuild: a producer adds its queue on its first
 * perform, a consumer adds its queues when it starts, on every partition it
 * takes over and on every idle re-check, and after Redis lost its data. So a
 * data loss or garbage in the key hides a running queue for at most one idle
 * re-check, and garbage of another type is deleted and reported, never in the
 * way of an enqueue.
 *
 * @module
 */

import { InvalidRecordError } from '@shardwork/core';
import type { RedisConnection } from '@shardwork/discovery-redis/kit';
import type { CompiledRegistration } from '@shardwork/jobs/adapter';
import { queueKeys, queuesKey } from './keys.js';

/** What the registry needs from the adapter. */
export interface QueueRegistryHost {
  readonly connection: RedisConnection;
  readonly prefix: string;
  /** Report a repaired key (`record:invalid` with `repaired: true`). */
  repaired(error: InvalidRecordError): void;
}

/** See the module documentation. */
export class QueueRegistry {
  readonly #host: QueueRegistryHost;
  readonly #key: string;
  /** Queues this process has added (or read) since it started. */
  readonly #known = new Set<string>();

  constructor(host: QueueRegistryHost) {
    this.#host = host;
    this.#key = queuesKey(host.prefix);
  }

  /** Add `queue` once per process (a producer's first perform to it). */
  async remember(queue: string): Promise<void> {
    if (this.#known.has(queue)) return;
    await this.add([queue]);
  }

  /** Add queues to the set (again): cheap, idempotent. */
  async add(queues: readonly string[]): Promise<void> {
    if (queues.length === 0) return;
    const redis = await this.#host.connection.ready();
    try {
      await redis.sadd(this.#key, ...queues);
    } catch (error) {
      if (!isWrongType(error)) throw this.#host.connection.mapError(error);
      await this.#repair(redis.type(this.#key));
      await redis.sadd(this.#key, ...queues, ...this.#known).catch((e: unknown) => {
        throw this.#host.connection.mapError(e);
      });
    }
    for (const queue of queues) this.#known.add(queue);
  }

  /**
   * Publish which handlers of this process are ordered on each of `queues`
   * (so producers without the registration line their jobs up too), and add
   * the queues. One transaction per queue: on a cluster the queues live on
   * different nodes.
   */
  async publish(queues: readonly string[], handlers: Iterable<CompiledRegistration>): Promise<void> {
    const redis = await this.#host.connection.ready();
    const regs = [...handlers];
    await Promise.all([
      this.add(queues),
      ...queues.map(async (queue) => {
        const multi = redis.multi();
        const key = queueKeys(this.#host.prefix, queue).ordered;
        for (const reg of regs) {
          if (reg.ordered) multi.sadd(key, reg.name);
          else multi.srem(key, reg.name);
        }
        try {
          await multi.exec();
        } catch (error) {
          throw this.#host.connection.mapError(error);
        }
      }),
    ]);
  }

  /** Every queue name known here or in Redis, sorted. */
  async list(): Promise<string[]> {
    const redis = await this.#host.connection.ready();
    let stored: string[];
    try {
      stored = await redis.smembers(this.#key);
    } catch (error) {
      if (!isWrongType(error)) throw this.#host.connection.mapError(error);
      await this.#repair(redis.type(this.#key));
      // A reader (the CLI) may know no queue itself: find them by their markers, once.
      // (A user without SCAN, as in the README's per-queue ACL, sees its own queues until they are added again.)
      stored = await this.#scan().catch(() => []);
      const names = [...new Set([...stored, ...this.#known])];
      if (names.length > 0) await redis.sadd(this.#key, ...names).catch(() => undefined);
    }
    for (const queue of stored) this.#known.add(queue);
    return [...this.#known].sort();
  }

  /** The queues whose marker (`<prefix>{<queue>}:info`) exists, by SCAN on every primary: only after a repair. */
  async #scan(): Promise<string[]> {
    const found = new Set<string>();
    const prefix = this.#host.prefix;
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}:info`;
    for (const node of await this.#host.connection.primaries()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const name = key.slice(prefix.length + 1, key.length - ':info'.length - 1);
          if (name !== '') found.add(name);
        }
      } while (cursor !== '0');
    }
    return [...found];
  }

  /** Delete garbage of another type in the key and report it. */
  async #repair(type: Promise<string>): Promise<void> {
    const found = await type.catch(() => 'value of another type');
    const redis = await this.#host.connection.ready();
    // A concurrent repair may have recreated the set already: its names come back with the next adds.
    await redis.del(this.#key).catch((error: unknown) => {
      throw this.#host.connection.mapError(error);
    });
    this.#host.repaired(
      new InvalidRecordError(
        this.#key,
        `a ${found} where the set of queue names belongs: deleted and rebuilt from the queues' markers`,
      ),
    );
  }
}

function isWrongType(error: unknown): boolean {
  return error instanceof Error && /^WRONGTYPE\b/.test(error.message);
}
