import { createJobQueue, type JobQueue, NonRetryableError } from '@shardwork/jobs';
import { type PostgresTestServer, startPostgres, until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, run } from './helpers.js';

interface Page {
  total: number;
  jobs: { id: string; handler: string; state: string; args: unknown }[];
}

describe('shardwork jobs (postgres://, PostgreSQL alone)', () => {
  let server: PostgresTestServer;
  let url: string;
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await run(['--json', 'jobs', ...args, '--jobs', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    [server] = await Promise.all([startPostgres(), buildOnce()]);
    url = `${server.url}?schema=clijobs&partitions=2&leaseTtlMs=1000`;
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('enqueues, lists, shows, counts, cancels, and retries a dead job, as on Redis', async () => {
    const enqueued = await json<{ id: string }>('enqueue', 'email', '{"to":"a@example.com"}');
    const page = await json<Page>('list', 'ready');
    expect(page.jobs.map((j) => j.id)).toEqual([enqueued.id]);
    expect(page.jobs[0]).toMatchObject({ handler: 'email', args: { to: 'a@example.com' } });
    const shown = await json<{ id: string; state: string }>('show', enqueued.id);
    expect(shown).toMatchObject({ id: enqueued.id, state: 'ready' });
    expect(await json<{ cancelled: boolean }>('cancel', enqueued.id)).toMatchObject({ cancelled: true });

    // A consumer of this process makes one job dead; the CLI retries it and the consumer completes it.
    const q: JobQueue = createJobQueue(url);
    q.on('error', () => undefined);
    let refuse = true;
    q.register('fragile', () => {
      if (refuse) throw new NonRetryableError('refused on purpose');
    });
    await q.start();
    try {
      const { id } = await q.perform({ handler: 'fragile' });
      await until(async () => (await q.stats()).total.dead === 1, 15_000, 'the job is dead');
      expect((await json<{ total: Record<string, number> }>('stats')).total).toMatchObject({ dead: 1, ready: 0 });
      refuse = false;
      const retried = await run(['jobs', 'retry', id, '--jobs', url]);
      expect(retried.code).toBe(0);
      await until(async () => (await q.getJob(id))?.state === 'completed', 15_000, 'the retried job completed');
    } finally {
      await q.stop();
    }
    const missing = await run(['jobs', 'show', 'no-such-job', '--jobs', url]);
    expect(missing.code).toBe(4);
  });
});
