import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type PostgresTestServer, startPostgres, until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dashboard, startDashboard } from '../src/index.js';

describe('the dashboard over a postgres:// queue (PostgreSQL alone)', () => {
  let server: PostgresTestServer;
  let jobs: JobQueue;
  let d: Dashboard;
  beforeAll(async () => {
    server = await startPostgres();
    jobs = createJobQueue(`${server.url}?schema=dash&partitions=2&leaseTtlMs=1000`);
    jobs.on('error', () => undefined);
    jobs.register('report', (args) => ({ rows: (args.n as number) * 2 }));
    await jobs.start();
    d = await startDashboard({ discovery: 'memory://', jobs, services: [], port: 0, refreshMs: 200 });
  }, 60_000);
  afterAll(async () => {
    await d?.close();
    await jobs?.stop();
    await server?.stop();
  });

  it('lists the queue, and shows a completed job with its result and its partition', async () => {
    const { id } = await jobs.perform({ handler: 'report', args: { n: 21 } });
    await jobs.waitFor(id, { timeoutMs: 10_000 });
    await until(
      async () => ((await (await fetch(`${d.url}/api/queues`)).json()) as { html: string }).html.includes('report'),
      10_000,
      'the queue view names the handler',
    );
    const page = await (await fetch(`${d.url}/jobs/${id}`)).text();
    expect(page).toContain(`<code class="job-id">${id}</code> <span class="tag state completed">completed</span>`);
    expect(page).toContain('42');
    expect(page).not.toContain('no partitions on this adapter');
    const queues = await (await fetch(`${d.url}/queues`)).text();
    expect(queues).toContain('report');
  });
});
