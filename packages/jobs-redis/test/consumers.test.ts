/**
 * Which handlers the live consumers run, against a real redis-server:
 * consumers publish their handler names with their lease; `stats()` counts
 * them per handler, `pause()` refuses a handler nothing knows, and a perform
 * for a handler that no live consumer runs is reported with `job:unhandled`.
 */

import { createJobQueue, type JobQueue, type JobQueueEventMap, UnknownHandlerError } from '@shardwork/jobs';
import { type RedisTestServer, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

let server: RedisTestServer;
let seq = 0;
const open: JobQueue[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.stop({ timeoutMs: 0 }).catch(() => undefined)));
});
afterAll(async () => {
  await server?.stop();
});

const fresh = (): string => `c${process.pid}r${++seq}:`;

function queue(prefix: string): JobQueue {
  const q = createJobQueue(`${server.url}?prefix=${prefix}&partitions=2&leaseTtlMs=1000`, {
    adapter: { revokeTimeoutMs: 1000, enqueueTimeoutMs: 500 },
  });
  q.on('error', () => undefined);
  open.push(q);
  return q;
}

describe('the logger option on redis://', () => {
  it('gets the adapter’s worker lines (why a new queue claims nothing for one TTL), the console nothing', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const lines: { fields: Record<string, unknown>; message: string }[] = [];
      const keep = (fields: Record<string, unknown>, message: string) => void lines.push({ fields, message });
      const q = createJobQueue(`${server.url}?prefix=${fresh()}&partitions=2&leaseTtlMs=1000`, {
        logger: { debug: () => undefined, info: keep, warn: keep, error: keep },
      });
      open.push(q);
      q.register('work', () => undefined);
      await q.start();
      const held = lines.find((l) => /claiming no partitions for/.test(l.message));
      expect(held?.fields).toMatchObject({ scope: 'queue default', service: 'default' });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('what the live consumers run', () => {
  it('stats() counts the live consumer processes per handler, and 0 for a handler whose jobs nobody runs', async () => {
    const prefix = fresh();
    const consumer = queue(prefix);
    consumer.register('mail', () => undefined);
    consumer.register('sms', () => undefined);
    await consumer.start();
    const producer = queue(prefix);
    await producer.perform({ handler: 'fax' });
    const stats = await producer.stats();
    expect(stats.handlers.mail?.consumers).toBe(1);
    expect(stats.handlers.sms?.consumers).toBe(1);
    expect(stats.handlers.fax).toMatchObject({ ready: 1, consumers: 0 });
    await consumer.stop();
    expect((await producer.stats()).handlers.mail?.consumers ?? 0).toBe(0);
  });

  it('pause() refuses a handler nothing knows unless forced; a handler a live consumer runs can be paused from anywhere', async () => {
    const prefix = fresh();
    const consumer = queue(prefix);
    consumer.register('mail', () => undefined);
    await consumer.start();
    const admin = queue(prefix);
    const refused = await admin.pause('mial').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnknownHandlerError);
    expect((refused as Error).message).toMatch(/registered: mail\). No live consumer registers it.*\{ force: true \}/);
    await admin.pause('mail');
    expect((await admin.stats()).handlers.mail?.paused).toBe(true);
    await admin.pause('later', { force: true });
    expect((await admin.stats()).handlers.later?.paused).toBe(true);
    // A handler the store has seen a job of is known too.
    await admin.perform({ handler: 'seen_only' });
    await admin.pause('seen_only');
  });

  it('reports a job for a handler that no live consumer runs with job:unhandled, once a minute', async () => {
    const prefix = fresh();
    const consumer = queue(prefix);
    consumer.register('mail', () => undefined);
    await consumer.start();
    const producer = queue(prefix);
    const unhandled: JobQueueEventMap['job:unhandled'][] = [];
    producer.on('job:unhandled', (e) => unhandled.push(e));
    await producer.perform({ handler: 'mail' });
    await producer.perform({ handler: 'fax' });
    // The producer's view of the consumers is read in the background, never on the perform's path.
    await until(
      async () => {
        await producer.perform({ handler: 'fax' });
        return unhandled.length > 0;
      },
      3000,
      'job:unhandled',
    );
    await producer.perform({ handler: 'fax' });
    await producer.perform({ handler: 'mail' });
    expect(unhandled).toHaveLength(1);
    expect(unhandled[0]?.job.handler).toBe('fax');
    expect(unhandled[0]?.reason).toMatch(/no live consumer of queue "default" registers handler "fax"/);
  });
});
