/**
 * {@link JobRunner}: what becomes of each delivery of a work or partition
 * queue. A job that is due goes to the {@link Dispatcher} and runs; its
 * delivery is acknowledged only once the outcome is stored (a retry published
 * into the delay chain, a dead job published to the dead queue). A job that
 * comes back well before its time (from an earlier version's tiers, or with a
 * clock ahead of this one) is published into the delay chain again; one that
 * is at most {@link HOLD_EARLY_MS} early waits here instead.
 *
 * Such a republish and its acknowledgement are two steps, so each is a
 * tracked *move*: a partition waits for its moves before it drops its
 * connection, and a stop waits for them before it closes its channels;
 * otherwise the job would be in the broker twice (republished, and given back
 * unacknowledged) and run twice without any fault.
 *
 * An attempt ended by lost ownership (`aborted`) records nothing and counts no
 * attempt. In plain mode the delivery goes back to the queue. In partitioned
 * mode it is never put back on its own (RabbitMQ 3.10 requeues at the back of
 * a quorum queue, which would let later jobs of its key pass it): it keeps its
 * place in its key's line until the partition ends (the partition's connection
 * is dropped, which returns it to the front) or this replica owns the
 * partition again (a late lease renewal, or a `NotOwnerError` the handler
 * raised while the partition never moved), and then runs again here.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { InvalidRecordError, sleep } from '@shardwork/core';
import { backoffDelays, retrying } from '@shardwork/core/backend';
import {
  type AdapterRuntime,
  type AttemptOutcome,
  type CompiledRegistration,
  errorInfo,
  type RunExtras,
} from '@shardwork/jobs/adapter';
import type { Broker } from './broker.js';
import type { Delivery } from './consumer.js';
import { Dispatcher, type Task } from './dispatch.js';
import { decode, encode, excerpt, type JobMessage, type ReceivedJob } from './message.js';
import type { Topology } from './topology.js';

/** A job whose handler this process lacks is sent round again after about this long, for a process that has it. */
const UNKNOWN_HANDLER_RETRY_MS = 1000;

/**
 * A job at most this early waits in this process (holding its slot, and its
 * key's line) instead of being sent round the delay chain again: a tick
 * published as it falls, the broker's millisecond rounding of a TTL.
 */
export const HOLD_EARLY_MS = 250;

/** Where a delivery came from. */
export interface Source {
  /** Job queue name. */
  readonly queue: string;
  /** Broker queue it was consumed from (where a delayed or retried job goes back to). */
  readonly from: string;
  readonly partition?: number;
  readonly token?: number;
  /**
   * Partitioned mode: core's synchronous check that the partition's claim is
   * still this replica's (`ctx.held`: also while a hand-over drains, since
   * nobody else can own it before the claim is released).
   */
  readonly owned?: () => boolean;
  /**
   * Partitioned mode: aborts when the partition's running jobs must stop (its
   * lease is lost, or a hand-over or stop ran out of time). Deliveries of a
   * partition are never put back one by one; the partition's own connection
   * is dropped instead, and the broker returns them at the front.
   */
  readonly aborted?: AbortSignal;
  /** Partitioned mode: aborts when the partition is being handed over, lost or stopped. */
  readonly ending?: AbortSignal;
}

/** A dispatcher task with where its delivery came from. */
export interface SourcedTask extends Task {
  readonly source: Source;
}

/** What the runner needs from the adapter. */
export interface RunnerHost {
  readonly runtime: AdapterRuntime;
  readonly broker: Broker;
  readonly topology: Topology;
  /** Aborts when the adapter stops: new deliveries of a plain queue go back at once. */
  readonly stopping: AbortSignal;
  reportError(error: unknown): void;
}

/** See the module documentation. */
export class JobRunner {
  readonly dispatcher: Dispatcher<SourcedTask>;
  readonly #host: RunnerHost;
  /** Republishes and dead moves whose delivery is not settled yet, with their source. */
  readonly #moves = new Map<Promise<unknown>, Source>();

  constructor(host: RunnerHost, concurrency: number) {
    this.#host = host;
    this.dispatcher = new Dispatcher<SourcedTask>(concurrency);
  }

  /** Resolves once the moves in flight of `source` (of every source, without one) have settled their deliveries. */
  async moves(source?: Source): Promise<void> {
    const pending = [...this.#moves].filter(([, s]) => source === undefined || s === source).map(([p]) => p);
    await Promise.all(pending);
  }

  #track(source: Source, move: Promise<unknown>): void {
    const settled = move.then(
      () => undefined,
      () => undefined,
    );
    this.#moves.set(settled, source);
    void settled.then(() => this.#moves.delete(settled));
  }

  /** Handle one delivery of `source`. */
  onDelivery(source: Source, delivery: Delivery): void {
    if (source.aborted?.aborted === true) return; // returned with the partition's connection
    if (source.aborted === undefined && this.#host.stopping.aborted) {
      delivery.requeue();
      return;
    }
    const job = decode(delivery.message.body);
    if (typeof job === 'string') {
      this.#track(source, this.#deadInvalid(source, delivery, job));
      return;
    }
    if (job.runAt - Date.now() > HOLD_EARLY_MS) {
      // Early by more than a moment: into the delay chain again for what is left.
      this.#track(source, this.#forward(source, job, delivery));
      return;
    }
    const reg = this.#host.runtime.handlers.get(job.handler);
    if (reg === undefined) {
      // A partition queue carries every handler of its queue; one this process lacks waits for one that has it.
      const later = { ...job, runAt: Date.now() + UNKNOWN_HANDLER_RETRY_MS };
      this.#track(source, this.#forward(source, later, delivery));
      return;
    }
    this.dispatcher.add({
      source,
      handler: reg.name,
      maxConcurrency: reg.maxConcurrency,
      line:
        reg.ordered && job.key !== undefined && source.partition !== undefined
          ? `${source.from}|${job.key}`
          : undefined,
      start: () => this.#attempt(source, reg, job, delivery),
      drop: () => this.#giveBack(source, delivery),
    });
  }

  /**
   * Republish a job to its queue or into the delay chain, then acknowledge
   * the delivery. If that fails, a plain queue's delivery is put back; a
   * partition's is tried again (it holds its place in its key's line) until
   * its partition ends.
   */
  async #forward(source: Source, job: JobMessage, delivery: Delivery): Promise<boolean> {
    const broker = this.#host.broker;
    // A partition's delivery holds its key's place: publish again until the partition ends; a plain one goes back.
    const again = (): boolean => source.aborted !== undefined && !delivery.lost.aborted && !source.aborted.aborted;
    try {
      await retrying(() => broker.timed(broker.place(source.from, source.queue, job)), {
        retryable: again,
        signal: source.aborted,
        backoff: { initialMs: 100, maxMs: 2000 },
        onRetry: (error) => this.#host.reportError(error),
      });
    } catch (error) {
      if (source.aborted?.aborted !== true || error !== source.aborted.reason) this.#host.reportError(error);
      this.#giveBack(source, delivery);
      return false;
    }
    delivery.ack();
    return true;
  }

  /** Put a delivery back: a plain queue's at once; a partition's when its connection drops (in order). */
  #giveBack(source: Source, delivery: Delivery): void {
    if (source.aborted === undefined) delivery.requeue();
  }

  async #deadInvalid(source: Source, delivery: Delivery, problem: string): Promise<void> {
    const error = new InvalidRecordError(`${source.from} message ${delivery.message.messageId ?? '(no id)'}`, problem);
    this.#host.runtime.emit('record:invalid', { error });
    const body = Buffer.from(
      JSON.stringify({ invalid: problem, diedAt: Date.now(), raw: excerpt(delivery.message.body) }),
    );
    await this.#toDead(source, delivery, delivery.message.messageId ?? `invalid-${Date.now()}`, body);
  }

  /** Publish a body to the source queue's dead queue, then acknowledge the delivery (give it back if that fails). */
  async #toDead(source: Source, delivery: Delivery, messageId: string, body: Buffer): Promise<boolean> {
    const { broker, topology } = this.#host;
    try {
      await broker.ensureWork(source.from, source.queue);
      await broker.send({ routingKey: topology.deadQueue(source.queue), messageId }, body);
      delivery.ack();
      return true;
    } catch (error) {
      this.#host.reportError(error);
      this.#giveBack(source, delivery);
      return false;
    }
  }

  /**
   * Run a job and settle its delivery: an ordered one again after each
   * backoff (holding its line), a partition's again after lost ownership
   * while the partition stays here (see the module documentation).
   */
  async #attempt(source: Source, reg: CompiledRegistration, message: ReceivedJob, delivery: Delivery): Promise<void> {
    const rt = this.#host.runtime;
    // Channel lost, stop past its timeout, or the partition ended (a waiting job whose channel is gone starts as a no-op).
    const signal = delivery.lost;
    const owned = source.owned;
    const extras: RunExtras = {
      signal,
      ...(source.partition === undefined ? {} : { partition: source.partition }),
      ...(source.token === undefined ? {} : { token: source.token }),
      owned: owned === undefined ? () => !signal.aborted : () => !signal.aborted && owned(),
    };
    let job = message;
    job.ordered = reg.ordered;
    const early = job.runAt - Date.now();
    if (early > 0) await sleep(early, signal).catch(() => undefined);
    for (let lapses = 0; ; ) {
      // A pause since it came (see pause.ts): the broker may have given it to another consumer already.
      if (delivery.stale() && !(await delivery.alive())) return;
      if (signal.aborted) return; // the broker has it back (with the channel, or the partition's connection)
      if (owned !== undefined && !owned()) {
        if (await this.#ownedAgain(source, signal, lapses++)) continue;
        return;
      }
      const outcome = await rt.run(job, extras);
      if (outcome.type === 'aborted' && owned !== undefined) {
        // Nothing recorded, no attempt counted; the job keeps its place (see the module documentation).
        if (await this.#ownedAgain(source, signal, lapses++)) continue;
        return;
      }
      if (outcome.type === 'retry' && reg.ordered && job.key !== undefined && source.partition !== undefined) {
        // The line waits for this job: keep it (unacknowledged) and run it again here after the backoff.
        const nextRunAt = Date.now() + outcome.delayMs;
        rt.report(job, outcome, nextRunAt);
        job = job.failed(errorInfo(outcome.error, Date.now()), nextRunAt);
        await sleep(outcome.delayMs, signal).catch(() => undefined);
        continue;
      }
      await this.#settle(source, delivery, job, outcome);
      return;
    }
  }

  /**
   * Partitioned mode, ownership lapsed for an attempt: wait (backing off, so
   * that a handler that keeps raising `NotOwnerError` does not spin) until the
   * partition ends or the delivery is lost (false: the dropped connection
   * returns the job, in order), or this replica owns the partition again
   * (true: run it again).
   */
  async #ownedAgain(source: Source, signal: AbortSignal, lapses: number): Promise<boolean> {
    const owned = source.owned ?? (() => true);
    const over = source.ending === undefined ? signal : AbortSignal.any([signal, source.ending]);
    setMaxListeners(0, over);
    await sleep(backoffDelays({ initialMs: 20, maxMs: 2000 })(lapses + 1, undefined) ?? 2000, over).catch(
      () => undefined,
    );
    while (!over.aborted && !owned()) await sleep(50, over).catch(() => undefined);
    return !over.aborted && owned();
  }

  async #settle(source: Source, delivery: Delivery, job: ReceivedJob, outcome: AttemptOutcome): Promise<void> {
    const rt = this.#host.runtime;
    switch (outcome.type) {
      case 'completed':
        delivery.ack();
        rt.report(job, outcome);
        return;
      case 'aborted':
        // Plain mode (a partition's never gets here): back to the queue, unless its channel is gone and the broker has it.
        this.#giveBack(source, delivery);
        return;
      case 'retry': {
        const now = Date.now();
        const nextRunAt = now + outcome.delayMs;
        const next = job.failed(errorInfo(outcome.error, now), nextRunAt);
        if (await this.#forward(source, next, delivery)) rt.report(job, outcome, nextRunAt);
        return;
      }
      case 'dead': {
        const now = Date.now();
        const dead = job.failed(errorInfo(outcome.error, now), job.runAt);
        const body = encode(dead, { deadReason: outcome.reason, diedAt: now });
        if (await this.#toDead(source, delivery, job.id, body)) rt.report(job, outcome);
        return;
      }
    }
  }
}
