/**
 * What a newcomer reads (issue 21): `error` payloads that print their error,
 * and messages of a worker run for a queue (the `subject` option) that speak
 * of the queue, its partitions and the adapter's consumer, with the cause.
 */

import { inspect } from 'node:util';
import {
  compileOptions,
  DiscoveryUnavailableError,
  ErrorPayload,
  errorPayload,
  InvalidOptionsError,
  LeaseTtlMismatchError,
  RevokeTimeoutError,
  ShardCountMismatchError,
  TypedEmitter,
  Worker,
  type WorkerSubject,
} from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { advanceUntil, Cluster, started, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

describe('error event payloads', () => {
  it('keep the shape { error } and print the error: String, template, message, inspect', async () => {
    const cluster = new Cluster(2);
    const { worker } = cluster.add();
    const payloads: unknown[] = [];
    worker.on('error', (payload) => payloads.push(payload));
    worker.on('state', () => {
      throw new DiscoveryUnavailableError('memory', 'a listener that throws');
    });
    await started(worker);
    const payload = payloads[0] as { error: unknown };
    expect(payload).toBeInstanceOf(ErrorPayload);
    // Destructuring, as every listener written so far does, still works.
    const { error } = payload;
    expect(error).toBeInstanceOf(DiscoveryUnavailableError);
    expect(String(payload)).toBe(
      'DiscoveryUnavailableError: Discovery backend memory unavailable: a listener that throws',
    );
    expect(`${payload}`).not.toContain('[object Object]');
    expect((payload as ErrorPayload).message).toBe('Discovery backend memory unavailable: a listener that throws');
    const shown = inspect(payload);
    expect(shown).toContain('DiscoveryUnavailableError: Discovery backend memory unavailable');
    expect(shown).toContain(inspect(error).split('\n')[0] as string);
    expect(payload).toEqual({ error });
    await cluster.stopAll();
  });

  it('are made printable for every emitter on TypedEmitter, also from a plain { error } object', () => {
    // The job layer's JobQueue emits `{ error }` through the same emitter.
    class Queue extends TypedEmitter<{ error: { readonly error: unknown; readonly queue: string } }> {
      fail(error: unknown): void {
        this.emit('error', { error, queue: 'default' });
      }
    }
    const q = new Queue();
    const seen: unknown[] = [];
    q.on('error', (e) => seen.push(e));
    q.fail(new Error('store unreachable'));
    q.fail('a string thrown');
    expect(seen.map(String)).toEqual(['Error: store unreachable', 'a string thrown']);
    expect(seen[0]).toMatchObject({ queue: 'default', message: 'store unreachable' });
    expect(String(errorPayload({ code: 42 }))).toBe('{"code":42}');
  });
});

const QUEUE: WorkerSubject = {
  kind: 'queue',
  name: 'default',
  unit: 'partition',
  member: 'producer and consumer',
  countOption: 'partitions',
  handler: (p) => `the redis job adapter's consumer of partition ${p} of queue "default"`,
};

describe('the subject option', () => {
  it('words shard-count and lease-TTL mismatches for a queue and its partitions', async () => {
    const cluster = new Cluster(4, 'swj-default');
    const a = cluster.add({ subject: QUEUE });
    await started(a.worker);
    const failure = async (options: object): Promise<unknown> => {
      const b = cluster.add({ subject: QUEUE, ...options });
      const result = b.worker.start().catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(50);
      return result;
    };
    const count = await failure({ shards: 8 });
    expect(count).toBeInstanceOf(ShardCountMismatchError);
    expect(count).toMatchObject({ service: 'swj-default', expected: 4, actual: 8 });
    expect((count as Error).message).toBe(
      'Queue "default" has 4 partitions in the discovery backend, but this replica was started with partitions: 8. ' +
        'Every producer and consumer of queue "default" must use the same partitions; found 4 stored. ' +
        'To change it, stop every producer and consumer of the queue and use a new queue name.',
    );
    const ttl = await failure({ leaseTtlMs: 3000 });
    expect(ttl).toBeInstanceOf(LeaseTtlMismatchError);
    expect((ttl as Error).message).toMatch(
      /^Queue "default" has leaseTtlMs: 1000 in the discovery backend, but this replica was started with leaseTtlMs: 3000\. Every producer and consumer of queue "default" must use the same leaseTtlMs; found 1000 stored \(.* took its partitions over\)/,
    );
    expect((ttl as Error).message).not.toMatch(/service|shard/i);
    await cluster.stopAll();
  });

  it('keeps the wording of a plain service without it', () => {
    expect(new ShardCountMismatchError('svc', 4, 8).message).toBe(
      'Service "svc" has 4 shards in the discovery backend, but this replica was started with shards: 8. ' +
        'Every replica of a service must use the same shard count; to change it, stop all replicas and use a new service name.',
    );
    expect(new RevokeTimeoutError(3, 10_000, { reason: 'lease-lost' }).message).toBe(
      'Handler of shard 3 did not stop within 10000 ms after its signal aborted; ' +
        'the claim was released anyway and ctx.owned is false for it. Make the handler honour ctx.signal.',
    );
  });

  it('names the consumer and the outage, not "your handler", when a lost lease outlasts revokeTimeoutMs', async () => {
    const cluster = new Cluster(2);
    const a = cluster.add({
      subject: QUEUE,
      revokeTimeoutMs: 500,
      // A consumer stuck in a call to the unreachable store, deaf to its signal.
      handler: () => new Promise(() => undefined),
    });
    await started(a.worker);
    await advanceUntil(() => a.worker.status().shards.length === 2, 500);
    a.conn.setAvailable(false);
    await advanceUntil(() => a.errors.some((e) => e instanceof RevokeTimeoutError), 5000);
    const timeout = a.errors.find((e) => e instanceof RevokeTimeoutError) as RevokeTimeoutError;
    expect(timeout.reason).toBe('lease-lost');
    expect(timeout.message).toMatch(
      /^The redis job adapter's consumer of partition [01] of queue "default" did not stop within 500 ms after partition [01] was revoked \(this replica's lease was lost: Lease of member \S+ lost: no successful renewal before the deadline; Discovery backend memory unavailable: connection unavailable \(fault injected\)\); ctx\.owned has been false for it since\.$/,
    );
    expect(timeout.message).not.toContain('honour ctx.signal');
    a.conn.setAvailable(true);
    await cluster.stopAll();
  });

  it('words a revoke timeout in its units even without a described handler', () => {
    const { subject } = compileOptions({
      service: 's',
      shards: 4,
      handler: () => undefined,
      subject: { unit: 'slot' },
    });
    expect(new RevokeTimeoutError(3, 500, { reason: 'rebalance', subject }).message).toBe(
      'The handler of slot 3 did not stop within 500 ms after slot 3 was revoked (the assignment moved it to another replica); ' +
        'the claim was released anyway and ctx.owned is false for it. Make the handler honour ctx.signal.',
    );
  });

  it('is validated, naming the field', () => {
    const base = { service: 's', shards: 2, handler: () => undefined };
    const bad = (subject: unknown) => () => new Worker({ ...base, subject: subject as WorkerSubject });
    expect(bad({ kind: '' })).toThrow(expect.objectContaining({ option: 'subject.kind' }));
    expect(bad({ unit: 'a\nb' })).toThrow(InvalidOptionsError);
    expect(bad({ handler: 'the consumer' })).toThrow(expect.objectContaining({ option: 'subject.handler' }));
    expect(bad('queue')).toThrow(expect.objectContaining({ option: 'subject' }));
  });

  it('prefixes the lines printed when nobody listens with the queue', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const cluster = new Cluster(1);
      const { worker } = cluster.add({
        subject: QUEUE,
        retry: { maximumAttempts: 1 },
        handler: () => {
          throw new Error('boom');
        },
      });
      await started(worker);
      await vi.advanceTimersByTimeAsync(10);
      expect(warn.mock.calls.map((c) => String(c[0]))).toContain(
        '[shardwork queue default] partition 0 do failed: boom',
      );
      await cluster.stopAll();
    } finally {
      warn.mockRestore();
    }
  });
});
