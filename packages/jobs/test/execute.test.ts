import { NonRetryableError, NotOwnerError } from '@shardwork/core';
import { createJobQueue, SimpleQueue } from '@shardwork/jobs';
import type { AdapterRuntime, RunnableJob } from '@shardwork/jobs/adapter';
import { describe, expect, it } from 'vitest';

/** A queue whose adapter hands us the runtime, so an attempt can be run with chosen extras. */
function runtimeOf(handler: (ctx: { assertOwned(): void }) => Promise<void> | void): AdapterRuntime {
  let runtime: AdapterRuntime | undefined;
  const adapter = new SimpleQueue();
  const attach = adapter.attach.bind(adapter);
  adapter.attach = (rt) => {
    runtime = rt;
    attach(rt);
  };
  const queue = createJobQueue(adapter);
  queue.register('h', (_args, ctx) => handler(ctx), { maxFails: 4 });
  void queue.stats(); // attaches the adapter
  return new Proxy({} as AdapterRuntime, {
    get: (_target, name) => {
      if (runtime === undefined) throw new Error('not attached yet');
      const value = runtime[name as keyof AdapterRuntime];
      return typeof value === 'function' ? value.bind(runtime) : value;
    },
  });
}

const job = (fails = 0): RunnableJob => ({
  id: 'j1',
  handler: 'h',
  queue: 'default',
  key: 'k',
  args: {},
  argsJson: '{}',
  enqueuedAt: Date.now(),
  runAt: Date.now(),
  uniqueKey: undefined,
  ordered: true,
  fails,
});

describe('an attempt whose ownership was lost is not a failure', () => {
  it('NotOwnerError from assertOwned() after the lease was lost: aborted, no attempt counted', async () => {
    let owned = true;
    const rt = runtimeOf(async (ctx) => {
      owned = false; // the lease is lost while the handler works
      ctx.assertOwned();
    });
    await Promise.resolve();
    const outcome = await rt.run(job(), { partition: 3, token: 7, owned: () => owned });
    expect(outcome.type).toBe('aborted');
    expect((outcome as { error: unknown }).error).toBeInstanceOf(NotOwnerError);
  });

  it('any failure once ownership is gone is not counted either (the next owner runs the job again)', async () => {
    let owned = true;
    const rt = runtimeOf(async () => {
      owned = false;
      throw new Error('the database said no');
    });
    await Promise.resolve();
    expect((await rt.run(job(3), { partition: 0, token: 1, owned: () => owned })).type).toBe('aborted');
  });

  it('a NotOwnerError while still owned (a store refused the token) is not counted either', async () => {
    const rt = runtimeOf(() => {
      throw new NotOwnerError(0, 1, 'the store holds a newer token');
    });
    await Promise.resolve();
    expect((await rt.run(job(), { partition: 0, token: 1, owned: () => true })).type).toBe('aborted');
  });

  it('a job fetched ahead does not start once ownership is gone (a resumed zombie): its handler is never called', async () => {
    let calls = 0;
    const rt = runtimeOf(() => {
      calls++;
    });
    await Promise.resolve();
    expect((await rt.run(job(), { partition: 0, token: 1, owned: () => false })).type).toBe('aborted');
    expect(calls).toBe(0);
  });

  it('failures while owned are failures: retry, then dead after maxFails, and NonRetryableError dies at once', async () => {
    const plain = runtimeOf(() => {
      throw new Error('boom');
    });
    await Promise.resolve();
    expect((await plain.run(job(0), { owned: () => true })).type).toBe('retry');
    expect(await plain.run(job(3), { owned: () => true })).toMatchObject({ type: 'dead', reason: 'max-fails' });
    const fatal = runtimeOf(() => {
      throw new NonRetryableError('bad input');
    });
    await Promise.resolve();
    expect(await fatal.run(job(0), { owned: () => true })).toMatchObject({ type: 'dead', reason: 'non-retryable' });
  });

  it('where nothing is owned (the in-process adapter), a NotOwnerError is an ordinary non-retryable failure', async () => {
    const rt = runtimeOf(() => {
      throw new NotOwnerError(0, 1, 'from some other store');
    });
    await Promise.resolve();
    expect(await rt.run(job(), {})).toMatchObject({ type: 'dead', reason: 'non-retryable' });
  });
});
