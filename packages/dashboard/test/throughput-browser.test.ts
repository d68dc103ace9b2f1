import { until } from '@shardwork/testkit';
import { describe, expect, it } from 'vitest';
import { jobBrowser } from './job-fixture.js';

const ctx = jobBrowser();

/** Drawn size and fill of every bar part of a class in the first chart. */
const drawn = (cls: 'completed' | 'failed'): Promise<{ height: number; width: number; fill: string }[]> =>
  ctx.page.$$eval(`figure.tp-chart svg rect.${cls}`, (rects) =>
    rects.map((rect) => {
      const box = rect.getBoundingClientRect();
      return {
        height: box.height,
        width: box.width,
        fill: rect.ownerDocument.defaultView?.getComputedStyle(rect).fill ?? '',
      };
    }),
  );

describe('the throughput chart in a browser', () => {
  it('draws bars of non-zero height for completed and failed jobs, live, in two colours', async () => {
    await ctx.page.goto(`${ctx.fx.dashboard.url}/queues`);
    expect(await ctx.page.locator('figure.tp-chart').count()).toBe(0); // nothing has run yet: no queue

    for (let i = 0; i < 4; i++) await ctx.fx.jobs.perform({ handler: 'report', args: { month: `m${i}` } });
    await ctx.fx.jobs.perform({ handler: 'report', args: { fail: true, month: 'x' } });
    // No reload: the page's poll brings the chart.
    await until(
      async () => (await drawn('completed')).length > 0 && (await drawn('failed')).length > 0,
      10_000,
      'bars for completed and failed attempts',
    );
    const completed = await drawn('completed');
    const failed = await drawn('failed');
    for (const part of [...completed, ...failed]) {
      expect(part.height).toBeGreaterThan(0);
      expect(part.width).toBeGreaterThan(2);
    }
    expect(completed[0]?.fill).toBe('rgb(37, 99, 235)');
    expect(failed[0]?.fill).toBe('rgb(220, 38, 38)');
    // 4 completed, 1 failed: the completed part is the taller one.
    const sum = (parts: { height: number }[]): number => parts.reduce((n, p) => n + p.height, 0);
    expect(sum(completed)).toBeGreaterThan(sum(failed));

    const chart = ctx.page.getByRole('img', { name: /completed and failed attempts per minute, last 60 minutes/ });
    await expect.poll(() => chart.count()).toBe(1);
    const box = await chart.boundingBox();
    // Small but legible at 1280 px: about a third of the page wide, in proportion.
    expect(box?.width).toBeGreaterThan(300);
    expect(box?.width).toBeLessThanOrEqual(420);
    expect(box?.height).toBeGreaterThan(90);
    expect(await ctx.page.locator('figure.tp-chart svg text.max').textContent()).toMatch(/^max [1-9]\d*\/min$/);
    expect(await ctx.page.locator('figure.tp-chart figcaption small').textContent()).toBe('4 completed, 1 failed');
    expect(await ctx.page.locator('.tp-legend').textContent()).toBe('completed failed');
  });
});
