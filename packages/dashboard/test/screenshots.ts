/**
 * Saves screenshots of the dashboard pages to docs/dashboard-*.png (1280x800):
 * the browser tests' scenario (3 replicas, one killed with SIGKILL and a new
 * one started, so the map has moved; a few dead and scheduled jobs; a report
 * job running, on its job page with its progress bar; on the queues page the
 * throughput chart of the default queue, whose earlier minutes are seeded, see
 * `seedThroughput`).
 *
 * Run by hand: node --conditions=@shardwork/source --import tsx packages/dashboard/test/screenshots.ts
 */

import { redisCommand, until } from '@shardwork/testkit';
import { chromium } from 'playwright-core';
import { startScenario } from './scenario.js';
import { CHROMIUM, killReplica, ROOT, startReplica } from './support.js';

/**
 * The store counts attempts as they happen, so a scenario that is a minute old
 * has one minute to chart. For a picture of an hour, the 59 minutes before the
 * current one get made-up counts in the same counters the job layer's scripts
 * increment (`<prefix>{<queue>}:tp:<minute>`, fields `c` and `f`): a daily-ish
 * swell of completions with a few failures. Only the screenshot does this.
 */
async function seedThroughput(port: number, prefix: string, queue: string): Promise<void> {
  const now = Math.floor(Date.now() / 60_000);
  for (let back = 1; back < 60; back++) {
    const key = `${prefix}{${queue}}:tp:${now - back}`;
    const completed = Math.round(22 + 14 * Math.sin(back / 8) + ((back * 37) % 9));
    const failed = back % 13 === 4 ? 4 : back % 6 === 0 ? 1 : 0;
    await redisCommand(port, ['HINCRBY', key, 'c', String(completed)]);
    if (failed > 0) await redisCommand(port, ['HINCRBY', key, 'f', String(failed)]);
    await redisCommand(port, ['PEXPIRE', key, '7200000']);
  }
}

const scenario = await startScenario({ refreshMs: 1000 });
const browser = await chromium.launch(CHROMIUM);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const { dashboard, jobs, replicas, service, redis } = scenario;
  const owners = (): Promise<string[]> =>
    page.$$eval('.shard', (cells) => cells.map((cell) => cell.getAttribute('data-owner') ?? ''));

  await page.goto(`${dashboard.url}/`);
  await until(async () => (await owners()).filter(Boolean).length === 6, 30_000, 'all shards owned');
  const victim = replicas[0];
  if (victim !== undefined) await killReplica(victim, 'SIGKILL');
  await until(async () => (await owners()).every((o) => o !== '' && o !== victim?.instance), 20_000, 'shards moved');
  replicas.push(await startReplica(service, redis.url));
  await new Promise((resolve) => setTimeout(resolve, 4000)); // let the newcomer take its share
  await page.screenshot({ path: `${ROOT}docs/dashboard-services.png` });

  for (const invoice of [1001, 1002, 1003]) await jobs.perform({ handler: 'send-invoice', args: { invoice } });
  for (let i = 0; i < 4; i++) {
    await jobs.performIn({ handler: 'send-invoice', args: { invoice: 2000 + i }, queue: 'billing' }, 3_600_000);
  }
  await until(async () => (await jobs.list('dead')).total === 3, 20_000, 'three dead jobs');
  // The payment provider is back: some invoices go through, and the chart's newest minute has them.
  scenario.failing = false;
  const before = scenario.completed.length;
  for (let i = 0; i < 8; i++) await jobs.perform({ handler: 'send-invoice', args: { invoice: 3000 + i } });
  await until(async () => scenario.completed.length - before === 8, 20_000, 'eight invoices sent');
  scenario.failing = true;
  await seedThroughput(redis.port, scenario.jobsPrefix, 'default');
  // Jobs of a handler that no process registers: the queues page flags them.
  for (const month of ['2026-10', '2026-11']) await jobs.perform({ handler: 'monthly-report', args: { month } });
  // A handler no consumer has registered yet can only be paused on purpose.
  await jobs.pause('reports', { force: true });
  await page.goto(`${dashboard.url}/queues`);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `${ROOT}docs/dashboard-queues.png` });

  await page.goto(`${dashboard.url}/jobs/dead`);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `${ROOT}docs/dashboard-dead.png` });

  // A job page: a report job part way through, its progress bar following it.
  const report = await jobs.perform({
    handler: 'export-report',
    args: { month: '2026-11', format: 'csv', steps: 20, stepMs: 1000 },
    key: 'tenant-7',
  });
  await until(async () => Number((await jobs.getJob(report.id))?.progress ?? 0) >= 55, 30_000, 'report at 55%');
  await page.goto(`${dashboard.url}/jobs/${report.id}`);
  await page.waitForTimeout(600);
  await page.screenshot({ path: `${ROOT}docs/dashboard-job.png` });
  console.log(
    'saved docs/dashboard-services.png, docs/dashboard-queues.png, docs/dashboard-dead.png, docs/dashboard-job.png',
  );
} finally {
  await browser.close();
  await scenario.close();
}
