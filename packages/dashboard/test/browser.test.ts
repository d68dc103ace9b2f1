import { createDiscovery, MemoryDiscovery, sharedMemoryStore, Worker } from '@shardwork/core';
import { until } from '@shardwork/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard } from '../src/index.js';
import { type Scenario, startScenario } from './scenario.js';
import { CHROMIUM, killReplica, randomName, startReplica } from './support.js';

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

describe('a service whose replicas all stopped', () => {
  it('is shown greyed as stopped (not red), with Forget only there, and Forget removes its records', async () => {
    const service = randomName('retired');
    const replica = await startReplica(service, scenario.redis.url, 4);
    const dashboard = await startDashboard({
      discovery: scenario.redis.url,
      services: [scenario.service, service],
      port: 0,
      refreshMs: 300,
    });
    const tab = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const stopped = tab.locator(`section[data-service="${service}"]`);
    try {
      await tab.goto(`${dashboard.url}/`);
      await until(
        async () => (await stopped.locator('.shard[data-owner]:not([data-owner=""])').count()) === 4,
        20_000,
        'the new service running, all 4 shards owned',
      );
      expect(await tab.getByRole('button', { name: 'Forget' }).count()).toBe(0);

      // Stopped for good (SIGTERM: a graceful stop); the page follows by itself.
      await killReplica(replica, 'SIGTERM');
      await until(async () => (await stopped.getAttribute('data-health')) === 'stopped', 10_000, 'shown as stopped');
      expect(await stopped.locator('h2 .tag').textContent()).toBe('stopped');
      expect(await stopped.locator('.shard').count()).toBe(4);
      expect(await stopped.locator('.shard.unowned, .bad').count()).toBe(0);
      // Greyed, not the red of unowned shards: grey cells with a grey dashed border, muted text.
      const looks = await stopped
        .locator('.shard')
        .first()
        .evaluate((cell) => {
          const style = cell.ownerDocument.defaultView.getComputedStyle(cell);
          return {
            background: style.backgroundColor,
            image: style.backgroundImage,
            border: style.borderTopColor,
            color: style.color,
          };
        });
      expect(looks).toEqual({
        background: 'rgb(243, 244, 246)',
        image: 'none',
        border: 'rgb(156, 163, 175)',
        color: 'rgb(107, 114, 128)',
      });
      // Forget is offered for the stopped service alone, never for the running one.
      expect(await tab.getByRole('button', { name: 'Forget' }).count()).toBe(1);
      expect(await tab.locator(`section[data-service="${scenario.service}"] button`).count()).toBe(0);

      await stopped.getByRole('button', { name: 'Forget' }).click();
      await tab.waitForURL(`${dashboard.url}/`);
      expect(await tab.locator('.flash').textContent()).toBe(`Forgot service ${service}: its records are removed`);
      expect(await stopped.getAttribute('data-health')).toBe('absent');
      expect(await tab.getByRole('button', { name: 'Forget' }).count()).toBe(0);
      const tool = await createDiscovery(scenario.redis.url);
      try {
        expect(await tool.services?.()).not.toContain(service);
      } finally {
        await tool.close();
      }
    } finally {
      await tab.close();
      await dashboard.close();
      await killReplica(replica);
    }
  });
});

describe('fencing tokens', () => {
  /** Per token on the page: its text, on how many lines it is laid out, and whether it overflows its cell. */
  const tokens = (): Promise<{ text: string; lines: number; overflows: boolean }[]> =>
    page.$$eval('.shard .token, tr.movement td.token', (elements) =>
      elements.map((element) => {
        const range = element.ownerDocument.createRange();
        range.selectNodeContents(element);
        const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
        const cell = element.closest('.shard') ?? element;
        return { text: element.textContent ?? '', lines: tops.size, overflows: cell.scrollWidth > cell.clientWidth };
      }),
    );

  it('are never broken across lines, on a desktop or a phone', async () => {
    try {
      for (const width of [1280, 700, 360]) {
        await page.setViewportSize({ width, height: 800 });
        await page.goto(`${scenario.dashboard.url}/`);
        await until(async () => (await page.locator('.shard .token').count()) === 6, 20_000, 'six tokens shown');
        // A movement to nobody (seen between two polls) has no token: "–".
        const seen = (await tokens()).filter((t) => t.text !== '–');
        expect(seen.length).toBeGreaterThanOrEqual(6);
        for (const token of seen) {
          // Redis tokens are 16 digits, as long as etcd's createRevision × 1000 + shard can get.
          expect(token.text).toMatch(/^\d{16}$/);
          expect(token, `${token.text} at ${width}px`).toMatchObject({ lines: 1, overflows: false });
        }
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });
});

describe('while a backend is down', () => {
  it('greys out the last data and shows its age, is live again once the backend is back, and greys out when the dashboard is gone', async () => {
    // A memory store shared by a worker and the dashboard's own connection, which can be cut.
    const store = randomName('stale');
    const service = randomName('svc');
    const worker = new Worker({ service, shards: 4, discovery: `memory://${store}`, handler: () => undefined });
    const discovery = new MemoryDiscovery({ store: sharedMemoryStore(store) });
    await worker.start();
    const dashboard = await startDashboard({
      discovery,
      services: [service],
      port: 0,
      refreshMs: 200,
      backendTimeoutMs: 500,
    });
    const tab = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // The greyed block is rendered anew on every poll (its age changes): a block replaced between
    // finding it and reading its style has no computed style, so read again until it is the one in the page.
    const staleStyle = async (): Promise<{ filter: string; opacity: number }> => {
      for (;;) {
        const style = await tab.locator('[data-stale="true"]').evaluate((element) =>
          element.isConnected
            ? {
                filter: element.ownerDocument.defaultView.getComputedStyle(element).filter,
                opacity: Number(element.ownerDocument.defaultView.getComputedStyle(element).opacity),
              }
            : undefined,
        );
        if (style !== undefined) return style;
      }
    };
    const updated = async (): Promise<string> => (await tab.locator('#updated').textContent()) ?? '';
    try {
      await tab.goto(`${dashboard.url}/`);
      await until(
        async () => (await tab.locator('.shard[data-owner]:not([data-owner=""])').count()) === 4,
        20_000,
        'all 4 shards owned',
      );
      await until(async () => /^updated /.test(await updated()), 5_000, 'a live poll');
      expect(await tab.locator('[data-stale]').count()).toBe(0);

      discovery.setAvailable(false);
      await until(
        async () => (await tab.locator('[data-stale="true"] .shardmap .shard').count()) === 4,
        10_000,
        'the map greyed out',
      );
      expect(await staleStyle()).toEqual({ filter: 'grayscale(1)', opacity: expect.closeTo(0.55, 2) });
      expect(await tab.locator('[data-banner="down"]').textContent()).toMatch(
        /^Discovery backend unreachable: .+; showing data from \d\d:\d\d:\d\d UTC, [\d.]+ (ms|s) old \(greyed out: not live\)$/,
      );
      await until(
        async () => /^not live: data from .+, \d+ s old$/.test(await updated()),
        5_000,
        'the header says not live',
      );
      // The age goes on counting while the backend stays down.
      const age = async (): Promise<number> => Number(await tab.locator('[data-stale]').getAttribute('data-age-ms'));
      const first = await age();
      await until(async () => (await age()) >= first + 400, 5_000, 'an older age on a later poll');

      discovery.setAvailable(true);
      await until(async () => (await tab.locator('[data-stale], [data-banner]').count()) === 0, 10_000, 'live again');
      await until(async () => /^updated /.test(await updated()), 5_000, 'the header says updated');

      // The dashboard itself gone: the page keeps what it shows, greyed out, and says since when.
      await dashboard.close();
      await until(
        async () => (await tab.locator('#content.stale').count()) === 1,
        10_000,
        'the page greyed out when the dashboard is unreachable',
      );
      expect(await updated()).toMatch(/^dashboard unreachable \(.+\): page from .+, \d+ s old$/);
      expect(
        await tab
          .locator('#content')
          .evaluate((element) => element.ownerDocument.defaultView.getComputedStyle(element).filter),
      ).toBe('grayscale(1)');
    } finally {
      await tab.close();
      await dashboard.close();
      await worker.stop();
      await discovery.close();
    }
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

describe('numbers in job args and errors', () => {
  it('are never broken across lines, even on a phone', async () => {
    const invoice = 1796218164151491;
    scenario.failing = true;
    try {
      const { id } = await scenario.jobs.perform({
        handler: 'send-invoice',
        args: { invoice, customer: 'ada@example.com' },
      });
      await until(async () => (await scenario.jobs.list('dead')).jobs.some((j) => j.id === id), 20_000, 'job dead');
      await page.setViewportSize({ width: 360, height: 800 });
      await page.goto(`${scenario.dashboard.url}/jobs/dead`);
      const row = page.locator(`tr[data-job="${id}"]`);
      expect(await row.textContent()).toContain(`payment provider rejected invoice ${invoice}`);
      const numbers = await row.locator('code.args .nowrap, td.error .nowrap').evaluateAll((elements) =>
        elements.map((element) => {
          const range = element.ownerDocument.createRange();
          range.selectNodeContents(element);
          return {
            text: element.textContent ?? '',
            lines: new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size,
          };
        }),
      );
      expect(numbers).toEqual([
        { text: String(invoice), lines: 1 },
        { text: String(invoice), lines: 1 },
      ]);
    } finally {
      scenario.failing = false;
      await page.setViewportSize({ width: 1280, height: 800 });
    }
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
