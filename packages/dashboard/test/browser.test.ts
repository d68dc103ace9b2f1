import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test/support/wait.js';
import { startDashboard } from '../src/index.js';
import { type Scenario, startScenario } from './scenario.js';
import { CHROMIUM, killReplica } from './support.js';

let scenario: Scenario;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  scenario = await startScenario();
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
});
afterAll(async () => {
  await browser?.close();
  await scenario?.close();
});

/** Owner of every shard on the page, '' for unowned. */
const owners = (): Promise<string[]> =>
  page.$$eval('.shard', (cells) => cells.map((cell) => cell.getAttribute('data-owner') ?? ''));

describe('services page', () => {
  it('shows every shard owned, then the shards of a killed replica moving to the others', async () => {
    await page.goto(`${scenario.dashboard.url}/`);
    const live = new Set(scenario.replicas.map((r) => r.instance));
    await until(
      async () => {
        const now = await owners();
        return now.length === 6 && now.every((o) => live.has(o)) && new Set(now).size === 3;
      },
      30_000,
      'all 6 shards owned, spread over the 3 replicas',
    );
    for (const r of scenario.replicas) {
      expect(await page.locator(`tr[data-member="${r.instance}"]`).count()).toBe(1);
    }
    const victim = scenario.replicas[0];
    if (victim === undefined) throw new Error('no replica');
    const lost = (await owners()).filter((o) => o === victim.instance).length;
    expect(lost).toBeGreaterThan(0);

    await killReplica(victim, 'SIGKILL');
    live.delete(victim.instance);
    await until(
      async () => {
        const now = await owners();
        return now.length === 6 && now.every((o) => live.has(o));
      },
      20_000,
      'the killed replica’s shards owned by the survivors',
    );
    await until(
      async () => (await page.locator(`tr.movement[data-from="${victim.instance}"]`).count()) >= lost,
      10_000,
      'the movements listed',
    );
    const movement = page.locator(`tr.movement[data-from="${victim.instance}"]`).first();
    expect(live.has((await movement.getAttribute('data-to')) ?? '')).toBe(true);
    await until(
      async () => (await page.locator(`tr[data-member="${victim.instance}"]`).count()) === 0,
      10_000,
      'the killed member gone from the members table',
    );
  });
});

describe('jobs pages', () => {
  it('shows a dead job with its error, retries it from the page, and it completes', async () => {
    const { id } = await scenario.jobs.perform({ handler: 'send-invoice', args: { invoice: 42 } });
    await until(async () => (await scenario.jobs.list('dead')).jobs.some((j) => j.id === id), 20_000, 'job dead');

    await page.goto(`${scenario.dashboard.url}/jobs/dead`);
    const row = page.locator(`tr[data-job="${id}"]`);
    await expect(row.textContent()).resolves.toContain('payment provider rejected invoice 42');
    expect(await row.textContent()).toContain('send-invoice');
    expect(await row.textContent()).toContain('{"invoice":42}');

    scenario.failing = false;
    await row.getByRole('button', { name: 'Retry' }).click();
    await page.waitForURL(/\/jobs\/dead$/);
    expect(await page.locator('.flash').textContent()).toContain(`Retried job ${id}`);
    await until(() => scenario.completed.includes(id), 20_000, 'the retried job completed');
    // The page refreshes itself: the dead list empties without a reload.
    await until(async () => (await page.locator('[data-empty="jobs"]').count()) === 1, 10_000, 'dead list empty');
    expect((await scenario.jobs.list('dead')).total).toBe(0);

    await page.goto(`${scenario.dashboard.url}/queues`);
    const dead = page.locator('tr[data-handler="send-invoice"] td[data-count="dead"]');
    expect(await dead.textContent()).toBe('0');
  });

  it('pauses and unpauses a handler by clicking', async () => {
    await page.goto(`${scenario.dashboard.url}/queues`);
    const row = page.locator('tr[data-handler="send-invoice"]');
    expect(await row.getAttribute('data-paused')).toBe('false');
    await row.getByRole('button', { name: 'Pause' }).click();
    await page.waitForURL(/\/queues$/);
    expect(await page.locator('.flash').textContent()).toContain('Paused send-invoice');
    expect(await page.locator('tr[data-handler="send-invoice"]').getAttribute('data-paused')).toBe('true');
    expect((await scenario.jobs.stats()).handlers['send-invoice']?.paused).toBe(true);

    await page.locator('tr[data-handler="send-invoice"]').getByRole('button', { name: 'Unpause' }).click();
    await page.waitForURL(/\/queues$/);
    expect(await page.locator('.flash').textContent()).toContain('Unpaused send-invoice');
    expect((await scenario.jobs.stats()).handlers['send-invoice']?.paused).toBe(false);
  });
});

describe('token auth in a browser', () => {
  it('trades ?token= for a cookie, drops it from the address, and the page keeps polling with the cookie', async () => {
    const secured = await startDashboard({
      discovery: scenario.redis.url,
      jobs: scenario.jobs,
      services: [scenario.service],
      port: 0,
      refreshMs: 300,
      auth: { token: 'browser-token' },
    });
    try {
      const context = await browser.newContext();
      const tab = await context.newPage();
      const denied = await tab.goto(`${secured.url}/queues`);
      expect(denied?.status()).toBe(401);
      const ok = await tab.goto(`${secured.url}/queues?token=browser-token`);
      expect(ok?.status()).toBe(200);
      expect(tab.url()).toBe(`${secured.url}/queues`);
      await until(async () => /^updated /.test((await tab.locator('#updated').textContent()) ?? ''), 10_000, 'a poll');
      const cookies = await context.cookies();
      expect(cookies.find((c) => c.name === 'shardwork_session')?.httpOnly).toBe(true);
      await context.close();
    } finally {
      await secured.close();
    }
  });
});
