/**
 * One queue's scripts: every call sends the queue's base, the epoch this
 * process knows and the partition count, and turns the common status replies
 * into outcomes: data loss is reported once and the queue carries on, a
 * partition-count mismatch is a clear error, a stale token is a value.
 *
 * @module
 */

import { InvalidOptionsError, InvalidRecordError } from '@shardwork/core';
import type { RedisConnection } from '@shardwork/discovery-redis/kit';
import { QueueCorruptedError, QueueDataLostError } from '@shardwork/jobs/adapter';
import { type QueueKeys, queueKeys } from './keys.js';
import { type ScriptName, script } from './scripts.js';

/** What each bookkeeping key holds, for the report when garbage in it was deleted. */
const REBUILT: Readonly<Record<string, string>> = {
  info: "the queue's marker (the next call reports the queue as recreated)",
  count: 'the job counts of stats() (they start again from zero)',
  seen: 'the handler names ever enqueued (rebuilt by new jobs)',
  ordered: 'which handlers are ordered (republished by the consumers)',
  paused: 'the paused handlers (all of them run again)',
  conc: 'the running counts of maxConcurrency (they start again from zero)',
  fence: "the partitions' fencing tokens (every owner takes its partitions over again)",
  cron: 'the newest tick of each periodic job (ticks missed before now are not caught up)',
  unique: 'the unique keys of queued jobs (a duplicate of a queued unique job may be accepted once)',
};

/** A fenced call's reply: the script's own fields, or `stale` when the token is not the partition's. */
export type Fenced = { readonly stale: false; readonly reply: unknown[] } | { readonly stale: true };

/** See the module documentation. */
export class QueueStore {
  readonly queue: string;
  readonly keys: QueueKeys;
  readonly #connection: RedisConnection;
  readonly #partitions: number;
  /** ARGV[3] of every script: the partition count and the retention of finished jobs (common.lua). */
  readonly #shape: string;
  readonly #onLost: (error: QueueDataLostError) => void;
  readonly #onInvalid: (error: InvalidRecordError, repaired: boolean) => void;
  #epoch = '';

  constructor(
    connection: RedisConnection,
    prefix: string,
    queue: string,
    partitions: number,
    keep: { readonly count: number; readonly ageMs: number },
    onLost: (error: QueueDataLostError) => void,
    onInvalid: (error: InvalidRecordError, repaired: boolean) => void,
  ) {
    this.queue = queue;
    this.keys = queueKeys(prefix, queue);
    this.#connection = connection;
    this.#partitions = partitions;
    this.#shape = `${partitions}|${keep.count}|${keep.ageMs}`;
    this.#onLost = onLost;
    this.#onInvalid = onInvalid;
  }

  /** A bookkeeping key held another type and a script deleted it: say what that lost. */
  #onRepaired(key: string, found: string): void {
    const name = key.slice(this.keys.base.length);
    const lost = REBUILT[name] ?? 'its contents';
    this.#onInvalid(
      new InvalidRecordError(key, `a ${found} where the queue keeps ${lost}: deleted and started afresh`),
      true,
    );
  }

  /** Run a script; `stale` when it refused a fencing token. */
  async fenced(name: ScriptName, args: readonly (string | number)[]): Promise<Fenced> {
    for (let attempt = 0; ; attempt++) {
      const reply = (await this.#connection.run(
        script(name),
        [this.keys.jobs],
        [this.keys.base, this.#epoch, this.#shape, ...args],
      )) as unknown[];
      const [status] = reply;
      if (status === 'OK') {
        this.#epoch = String(reply[1]);
        return { stale: false, reply: reply.slice(2) };
      }
      if (status === 'STALE') return { stale: true };
      if (status === 'PARTS') {
        throw new InvalidOptionsError(
          'partitions',
          this.#partitions,
          `${String(reply[1])}, the partition count stored for queue "${this.queue}" (every producer and consumer of a queue must use the same)`,
        );
      }
      if (status === 'REPAIRED' && attempt < 3) {
        for (let i = 1; i < reply.length; i += 2) this.#onRepaired(String(reply[i]), String(reply[i + 1]));
        continue;
      }
      if (status === 'GARBAGE') {
        const key = String(reply[1]);
        throw new QueueCorruptedError(
          'redis',
          this.queue,
          key,
          String(reply[2]),
          key.endsWith(':dead') ? 'zset' : 'hash',
        );
      }
      if (status === 'LOST' && attempt === 0) {
        this.#onLost(
          new QueueDataLostError('redis', this.queue, `its marker ${this.keys.info} is gone or was replaced`),
        );
        this.#epoch = '';
        continue;
      }
      throw new Error(`@shardwork/jobs-redis: unexpected reply from ${name}.lua: ${JSON.stringify(reply)}`);
    }
  }

  /** Run a script that takes no fencing token. */
  async call(name: ScriptName, args: readonly (string | number)[]): Promise<unknown[]> {
    const result = await this.fenced(name, args);
    if (result.stale) throw new Error(`@shardwork/jobs-redis: ${name}.lua answered STALE without a token`);
    return result.reply;
  }
}
