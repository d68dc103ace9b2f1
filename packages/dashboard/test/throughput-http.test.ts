import { NonRetryableError } from '@shardwork/core';
import { type AdminJobQueue, createJobQueue, type JobQueue, UnsupportedFeatureError } from '@shardwork/jobs';
import { until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dashboard, startDashboard } from '../src/index.js';
import { randomName } from './support.js';

let jobs: JobQueue;
const queue = randomName('charts');
const opened: Dashboard[] = [];

beforeAll(async () => {
  jobs = createJobQueue('memory://');
  jobs.register(
    'tally',
    (args) => {
      if (args.fail === true) throw new NonRetryableError('no <b>luck</b>');
    },
    { queue },
  );
  await jobs.start();
  for (let i = 0; i < 3; i++) await jobs.perform({ handler: 'tally', args: { n: i } });
  for (let i = 0; i < 2; i++) await jobs.perform({ handler: 'tally', args: { fail: true } });
  await until(
    async () => {
      const points = (await jobs.throughput({ queue }))[0]?.points ?? [];
      return points.reduce((n, p) => n + p.completed + p.failed, 0) === 5;
    },
    5000,
    'five attempts counted',
  );
});
afterAll(async () => {
  for (const d of opened) await d.close();
  await jobs?.stop({ timeoutMs: 1000 });
});

async function open(queueLike: AdminJobQueue): Promise<Dashboard> {
  const dashboard = await startDashboard({ discovery: 'memory://', jobs: queueLike, services: [], port: 0 });
  opened.push(dashboard);
  return dashboard;
}

/** The queue, with `throughput` replaced. */
const withThroughput = (throughput: AdminJobQueue['throughput']): AdminJobQueue =>
  new Proxy(jobs, {
    get(target, prop) {
      if (prop === 'throughput') return throughput;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as AdminJobQueue;

const chartOf = (html: string): string =>
  new RegExp(`<figure class="tp-chart" data-queue="${queue}">[\\s\\S]*?</figure>`).exec(html)?.[0] ?? '';

describe('the throughput chart on /queues (memory://)', () => {
  it('charts the completed and failed attempts of the queue, on the page and in the polling API', async () => {
    const d = await open(jobs);
    const res = await fetch(`${d.url}/queues`);
    expect(res.status).toBe(200);
    const chart = chartOf(await res.text());
    expect(chart).toContain(`<figcaption>${queue} <small>3 completed, 2 failed</small></figcaption>`);
    expect(chart).toMatch(/<svg [^>]*role="img"[^>]*data-completed="3" data-failed="2"/);
    expect(chart).toContain('<title id="tp-0-title">');
    // All five ran within the last minute or two: the newest bars carry them.
    expect(chart).toMatch(/<rect class="completed" data-count="\d+" [^>]*height="[1-9]/);
    expect(chart).toMatch(/<rect class="failed" data-count="\d+" [^>]*height="[1-9]/);
    expect(chart).toContain('>now</text>');

    const api = (await (await fetch(`${d.url}/api/queues`)).json()) as {
      storeThroughput?: { kind: string; series: { queue: string; points: { completed: number; failed: number }[] }[] };
      queues: { name: string; completedLastMinute?: number }[];
      html: string;
    };
    expect(api.storeThroughput?.kind).toBe('counted');
    const series = api.storeThroughput?.series.find((s) => s.queue === queue);
    expect(series?.points).toHaveLength(60);
    expect(series?.points.reduce((n, p) => n + p.completed, 0)).toBe(3);
    expect(series?.points.reduce((n, p) => n + p.failed, 0)).toBe(2);
    expect(typeof api.queues.find((q) => q.name === queue)?.completedLastMinute).toBe('number');
    expect(chartOf(api.html)).toContain('data-completed="3" data-failed="2"');
    // The queue's column is the store's count now, and says so.
    expect(api.html).toContain(`data-completed-last-minute="`);
    expect(api.html).toContain('attempts completed in the last full minute, counted in the job store');
  });

  it('says in a short note that a backend without counts has no chart: 200, no banner, counts still shown', async () => {
    const d = await open(
      withThroughput(() =>
        Promise.reject(new UnsupportedFeatureError('amqp', 'admin', 'it keeps no counts of completed jobs')),
      ),
    );
    const res = await fetch(`${d.url}/queues`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(
      'No charts: this job backend keeps no per-minute counts (The amqp job adapter does not support admin: it keeps no counts of completed jobs).',
    );
    expect(html).not.toContain('<svg');
    expect(html).not.toContain('data-banner');
    expect(html).toContain(`<tr data-queue="${queue}">`);
    // The process-local column stays, as before.
    expect(html).toContain('completed: jobs finished by this process over the last 10 s.');
    const api = (await (await fetch(`${d.url}/api/queues`)).json()) as { problem?: unknown; html: string };
    expect(api.problem).toBeUndefined();
    expect(api.html).toContain('data-throughput="unsupported"');
  });

  it('keeps the last chart, greyed under the banner, while the counts cannot be read', async () => {
    let down = false;
    const d = await open(
      withThroughput(() => (down ? Promise.reject(new Error('connection refused')) : jobs.throughput())),
    );
    expect(chartOf(await (await fetch(`${d.url}/queues`)).text())).toContain('data-completed="3" data-failed="2"');
    down = true;
    const res = await fetch(`${d.url}/queues`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('data-banner="down"');
    expect(html).toContain('unreachable: connection refused');
    expect(html).toMatch(
      new RegExp(`<div class="stale" data-stale="true"[^>]*>[\\s\\S]*<figure class="tp-chart" data-queue="${queue}">`),
    );
    expect(chartOf(html)).toContain('data-completed="3" data-failed="2"');
    down = false;
    const back = await (await fetch(`${d.url}/queues`)).text();
    expect(back).not.toContain('data-banner');
    expect(chartOf(back)).toContain('data-completed="3" data-failed="2"');
  });
});
