import { randomUUID } from 'node:crypto';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RedisTestServer, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, run } from './helpers.js';

describe('shardwork jobs show|wait|cancel (redis)', () => {
  let redis: RedisTestServer;
  let url: string;
  let consumer: JobQueue | undefined;
  // The id (or state) after "--": a nanoid may begin with "-", which would read as an option.
  const jobsCli = (command: string, target: string, ...options: string[]) =>
    run(['jobs', command, ...options, '--jobs', url, '--', target]);

  beforeAll(async () => {
    await buildOnce();
    redis = await startRedisServer();
  });
  afterEach(async () => {
    await consumer?.stop({ timeoutMs: 0 });
    consumer = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** A consumer of `add` (returns a + b), `broken` (dies at once) and `slow` (waits for its signal). */
  async function startConsumer(): Promise<JobQueue> {
    url = `${redis.url}?prefix=${randomUUID().slice(0, 8)}:&partitions=2&leaseTtlMs=1000`;
    const q = createJobQueue(url);
    q.register('add', (args) => Number(args.a) + Number(args.b));
    q.register(
      'broken',
      () => {
        throw new Error('disk full');
      },
      { maxFails: 1 },
    );
    q.register('slow', (_args, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)));
    q.on('error', () => undefined);
    await q.start();
    consumer = q;
    return q;
  }

  it('shows a job and waits for its result; exit 7 for a dead job, 4 for an unknown id', async () => {
    const q = await startConsumer();
    const { id } = await q.perform({ handler: 'add', args: { a: 2, b: 40 } });
    const waited = await jobsCli('wait', id, '--within', '20000');
    expect(waited.stderr).toBe('');
    expect(waited.code).toBe(0);
    expect(waited.stdout.trim()).toBe('42');
    const shown = await jobsCli('show', id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/state:\s+completed/);
    expect(shown.stdout).toMatch(/result:\s+42/);
    const asJson = await run(['--json', 'jobs', 'show', id, '--jobs', url]);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ id, state: 'completed', result: 42, handler: 'add' });
    const broken = await q.perform({ handler: 'broken' });
    const dead = await jobsCli('wait', broken.id, '--within', '20000');
    expect(dead.code).toBe(7);
    expect(dead.stderr).toContain('disk full');
    const unknown = await jobsCli('show', 'no-such-job');
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain('no-such-job');
  });

  it('cancels a running job (exit 0), says so for a finished one, and wait exits 7 and 8', async () => {
    const q = await startConsumer();
    const { id } = await q.perform({ handler: 'slow' });
    await until(async () => (await q.getJob(id))?.state === 'running', 20_000, 'running');
    const timedOut = await jobsCli('wait', id, '--within', '300');
    expect(timedOut.code).toBe(8);
    const cancelled = await jobsCli('cancel', id, '--reason', 'no longer needed');
    expect(cancelled.stderr).toBe('');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`cancelled job ${id} (it was running)`);
    await until(async () => (await q.getJob(id))?.state === 'cancelled', 20_000, 'cancelled');
    const waited = await jobsCli('wait', id);
    expect(waited.code).toBe(7);
    expect(waited.stderr).toContain('no longer needed');
    const again = await jobsCli('cancel', id);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already finished (cancelled)');
    expect((await jobsCli('cancel', 'no-such-job')).code).toBe(4);
  });

  it('promotes a scheduled job, and purges waiting jobs only with --yes', async () => {
    const q = await startConsumer();
    const later = await q.performIn({ handler: 'add', args: { a: 1, b: 1 } }, 3_600_000);
    const promoted = await jobsCli('promote', later.id);
    expect(promoted.stderr).toBe('');
    expect(promoted.stdout).toContain(`promoted job ${later.id}`);
    expect((await jobsCli('wait', later.id, '--within', '20000')).stdout.trim()).toBe('2');
    expect((await jobsCli('promote', later.id)).code).toBe(1); // completed: a JobStateError, nothing changed
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await q.performIn({ handler: 'add', args: { a: i, b: 0 } }, 3_600_000)).id);
    const refused = await jobsCli('purge', 'scheduled');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('would cancel 5 scheduled jobs: add --yes');
    expect((await q.stats()).total.scheduled).toBe(5);
    const purged = await jobsCli('purge', 'scheduled', '--yes');
    expect(purged.stderr).toBe('');
    expect(purged.stdout).toContain('purged 5 scheduled jobs');
    for (const id of ids) expect((await q.getJob(id))?.state).toBe('cancelled');
    expect((await jobsCli('purge', 'dead', '--yes')).code).toBe(1);
  });
});
