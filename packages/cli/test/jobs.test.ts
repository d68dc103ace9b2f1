import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createJobQueue, type JobQueue, NonRetryableError } from '@shardwork/jobs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type RedisTestServer, startRedisServer } from '../../../test/support/redis-server.js';
import { until } from '../../../test/support/wait.js';
import { main } from '../src/index.js';
import { buildOnce, run } from './helpers.js';

/** A stream that says it is a terminal and keeps what is written. */
function fakeTty(): Writable & { isTTY: true; columns: number; text(): string } {
  let buffer = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      buffer += chunk.toString();
      callback();
    },
  });
  return Object.assign(stream, { isTTY: true as const, columns: 100, text: () => buffer });
}

interface Page {
  total: number;
  jobs: { id: string; handler: string; queue: string; key?: string; args: unknown; state: string }[];
}
interface Stats {
  total: Record<string, number>;
  handlers: Record<string, Record<string, number> & { paused: boolean }>;
}

describe('shardwork jobs (redis)', () => {
  let redis: RedisTestServer;
  let url: string;
  const jobsCli = (...args: string[]) => run(['jobs', ...args, '--jobs', url]);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await run(['--json', 'jobs', ...args, '--jobs', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as T;
  };

  /** Make `n` dead jobs of handler `fail`: a consumer whose handler refuses them. */
  async function makeDead(n: number, totalDead = n): Promise<string[]> {
    const q: JobQueue = createJobQueue(url);
    const ids: string[] = [];
    q.register('fail', () => {
      throw new NonRetryableError('refused on purpose');
    });
    await q.start();
    try {
      for (let i = 0; i < n; i++) ids.push((await q.perform({ handler: 'fail', args: { i } })).id);
      // Count in the store: jobs retried before die again in this consumer too.
      await until(async () => (await q.stats()).total.dead === totalDead, 20_000, `${totalDead} jobs dead`);
    } finally {
      await q.stop();
    }
    return ids;
  }

  beforeAll(async () => {
    await buildOnce();
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('enqueues a job that list ready then shows', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    const r = await jobsCli('enqueue', 'email', '{"to":"a@example.com"}', '--key', 'k1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = /enqueued job (\S+)/.exec(r.stdout)?.[1];
    expect(id).toBeDefined();

    const page = await json<Page>('list', 'ready');
    expect(page.total).toBe(1);
    expect(page.jobs[0]).toMatchObject({
      id,
      handler: 'email',
      key: 'k1',
      args: { to: 'a@example.com' },
      state: 'ready',
    });

    const later = await json<{ id: string }>('enqueue', 'email', '{}', '--in', '60000');
    const scheduled = await json<Page>('list', 'scheduled', '--handler', 'email');
    expect(scheduled.jobs.map((j) => j.id)).toEqual([later.id]);

    const table = await jobsCli('list', 'ready');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(id as string);
    expect(table.stdout).toContain('1-1 of 1');

    const stats = await json<Stats>('stats');
    expect(stats.total.ready).toBe(1);
    expect(stats.total.scheduled).toBe(1);
  });

  it('rejects bad input with exit 1 naming the problem', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    const badJson = await jobsCli('enqueue', 'email', '{nope');
    expect(badJson.code).toBe(1);
    expect(badJson.stderr).toContain('argsJson is not valid JSON');
    const badState = await jobsCli('list', 'zombie');
    expect(badState.code).toBe(1);
    expect(badState.stderr).toContain('scheduled, ready, running, retrying, dead');
    const badAt = await jobsCli('enqueue', 'email', '{}', '--at', 'tomorrowish');
    expect(badAt.code).toBe(1);
    expect(badAt.stderr).toContain('--at');
    const both = await jobsCli('retry', 'some-id', '--all');
    expect(both.code).toBe(1);
    const noUrl = await run(['jobs', 'stats']);
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toContain('SHARDWORK_JOBS');
    const badLimit = await jobsCli('list', 'ready', '--limit', '0');
    expect(badLimit.code).toBe(1);
    expect(badLimit.stderr).toContain('--limit');
  });

  it('retries all dead jobs, deletes one, and exits 4 for an unknown id', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    const ids = await makeDead(3);
    expect((await json<Stats>('stats')).total.dead).toBe(3);
    const dead = await json<Page>('list', 'dead', '--limit', '2');
    expect(dead.total).toBe(3);
    expect(dead.jobs).toHaveLength(2);

    const retried = await jobsCli('retry', '--all');
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain('retried 3 dead jobs');
    const after = await json<Stats>('stats');
    expect(after.total.dead).toBe(0);
    expect(after.total.ready).toBe(3);

    const more = await makeDead(2, 5);
    // The retried ones failed again too: 5 dead now.
    expect((await json<Stats>('stats')).total.dead).toBe(5);
    const del = await jobsCli('delete', more[0] as string);
    expect(del.code).toBe(0);
    expect(del.stdout).toContain(`deleted dead job ${more[0]}`);
    const left = await json<Page>('list', 'dead', '--limit', '100');
    expect(left.jobs.map((j) => j.id)).not.toContain(more[0]);
    expect(left.total).toBe(4);
    expect(left.jobs.map((j) => j.id)).toEqual(expect.arrayContaining(ids));

    const missing = await jobsCli('retry', 'no-such-job');
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('no-such-job');
    const missingDelete = await jobsCli('delete', 'no-such-job');
    expect(missingDelete.code).toBe(4);

    const all = await json<{ deleted: number }>('delete', '--all');
    expect(all.deleted).toBe(4);
    expect((await json<Stats>('stats')).total.dead).toBe(0);
  });

  it('pauses and unpauses a handler', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    await json('enqueue', 'report', '{}');
    const p = await jobsCli('pause', 'report');
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('paused report');
    expect((await json<Stats>('stats')).handlers.report?.paused).toBe(true);
    const table = await jobsCli('stats');
    expect(table.stdout).toMatch(/report.*yes/);
    await jobsCli('unpause', 'report');
    expect((await json<Stats>('stats')).handlers.report?.paused).toBe(false);
  });

  it('shows a progress bar on a terminal for retry --all (in-process main)', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    await makeDead(4);
    const stdout = fakeTty();
    const stderr = fakeTty();
    const code = await main(['node', 'shardwork', 'jobs', 'retry', '--all', '--jobs', url], {
      stdout,
      stderr,
      env: {},
    });
    expect(code).toBe(0);
    expect(stdout.text()).toContain('retried 4 dead jobs');
    expect(stderr.text()).toContain('retry dead jobs [');
    expect(stderr.text()).toContain('4/4');
  });

  it('exits 2 naming the job store when it is unreachable', async () => {
    const port = await freePort();
    const r = await run(['jobs', 'stats', '--jobs', `redis://127.0.0.1:${port}`, '--timeout', '2000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
  });
});
