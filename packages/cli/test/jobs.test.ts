import { randomUUID } from 'node:crypto';
import { createJobQueue, type JobQueue, NonRetryableError } from '@shardwork/jobs';
import { freePort, type RedisTestServer, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/index.js';
import { buildOnce, fakeTty, run } from './helpers.js';

interface Page {
  total: number;
  jobs: { id: string; handler: string; queue: string; key?: string; args: unknown; state: string }[];
}
interface Stats {
  total: Record<string, number>;
  handlers: Record<string, Record<string, number> & { paused: boolean; consumers?: number }>;
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
    expect(badState.stderr).toContain('scheduled, ready, running, retrying, completed, dead, cancelled');
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

  it('says why a page is empty instead of an empty table and "none"', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    const empty = await jobsCli('list', 'dead');
    expect(empty.stderr).toBe('');
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('no dead jobs\n');
    await json('enqueue', 'email', '{}');
    const filtered = await jobsCli('list', 'ready', '--handler', 'report', '--queue', 'default');
    expect(filtered.stdout).toBe('no ready jobs of handler report in queue default\n');
    const past = await jobsCli('list', 'ready', '--offset', '5');
    expect(past.code).toBe(0);
    expect(past.stdout).toBe('no ready jobs at offset 5: there is 1 (offsets 0-0)\n');
    // --json keeps its shape: an empty page is { total: 0, jobs: [] }.
    expect(await json<Page>('list', 'dead')).toEqual({ total: 0, jobs: [] });
  });

  it('refuses an in-process memory:// store with exit 1, naming the shared backend to use instead', async () => {
    for (const args of [['stats'], ['list', 'dead'], ['enqueue', 'email', '{}'], ['pause', 'email']]) {
      const r = await run(['jobs', ...args, '--jobs', 'memory://']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('--jobs memory:// is an in-process store: it lives inside the one process');
      expect(r.stderr).toContain("--jobs 'redis://127.0.0.1:6379?prefix=app:'");
    }
    const env = await run(['jobs', 'stats'], { env: { SHARDWORK_JOBS: 'memory://' } });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('SHARDWORK_JOBS=memory:// is an in-process store');
  });

  it('refuses to pause a handler nobody knows with exit 4, and pauses it with --force', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    // A store in use (its default queue exists), and a handler of which it has never seen a job.
    await json('enqueue', 'email', '{}');
    const handler = `not-yet-${randomUUID().slice(0, 6)}`;
    const refused = await jobsCli('pause', handler);
    expect(refused.code).toBe(4);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(
      `shardwork: Not paused: no live consumer registers the handler "${handler}" and the job store has never seen a job of it (a typo?).`,
    );
    expect(refused.stderr).toContain('pass --force to pause it anyway');
    expect((await json<Stats>('stats')).handlers[handler]).toBeUndefined();

    const forced = await jobsCli('pause', handler, '--force');
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toBe(`paused ${handler}\n`);
    expect((await json<Stats>('stats')).handlers[handler]?.paused).toBe(true);
    expect((await json<{ paused: boolean }>('pause', handler, '--force')).paused).toBe(true);
    expect((await jobsCli('unpause', handler)).code).toBe(0);
    expect((await json<Stats>('stats')).handlers[handler]?.paused ?? false).toBe(false);
    // --force belongs to pause only.
    expect((await jobsCli('unpause', handler, '--force')).code).toBe(1);
  });

  it('shows live consumers per handler and flags a handler whose jobs nobody will run', async () => {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    const consumer: JobQueue = createJobQueue(url);
    consumer.register('email', () => undefined);
    await consumer.start();
    try {
      await json('enqueue', 'report', '{}');
      await json('enqueue', 'report', '{}', '--in', '60000');
      await until(
        async () => (await json<Stats>('stats')).handlers.email?.consumers === 1,
        20_000,
        'the consumer of email counted',
      );
      const stats = await json<Stats>('stats');
      expect(stats.handlers.report?.consumers).toBe(0);
      const table = await jobsCli('stats');
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/│ email\s+│.*│ no\s+│ 1\s+│/);
      expect(table.stdout).toMatch(/│ report\s+│.*│ no\s+│ 0 \(!\)\s+│/);
      expect(table.stdout).toContain(
        '(!) report: 2 jobs waiting, and no live consumer registers this handler: its jobs will wait until a process that registers "report" starts.',
      );
      expect(table.stdout).not.toContain('(!) email');
    } finally {
      await consumer.stop();
    }
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
