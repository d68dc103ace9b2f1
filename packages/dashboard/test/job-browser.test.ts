import { until } from '@shardwork/testkit';
import { describe, expect, it } from 'vitest';
import { jobBrowser } from './job-fixture.js';

const ctx = jobBrowser();

const url = (path: string): string => `${ctx.fx.dashboard.url}${path}`;
const stateOf = async (id: string): Promise<string | undefined> => (await ctx.fx.jobs.getJob(id))?.state;
const tag = (): Promise<string | null> => ctx.page.locator('section[data-job-page] h2 .tag').textContent();

describe('the job page in a browser', () => {
  it('is found by searching its id, follows the progress live, and cancels the running job', async () => {
    const { id } = await ctx.fx.jobs.perform({ handler: 'report', args: { progress: [30, 70] } });
    await until(async () => (await ctx.fx.jobs.getJob(id))?.progress === 30, 5000, 'progress 30');

    await ctx.page.goto(url('/queues'));
    await ctx.page.getByRole('searchbox', { name: 'job id' }).fill(id);
    await ctx.page.getByRole('searchbox', { name: 'job id' }).press('Enter');
    await ctx.page.waitForURL(url(`/jobs/${id}`));
    expect(await ctx.page.locator('code.job-id').first().textContent()).toBe(id);
    expect(await tag()).toBe('running');
    const bar = ctx.page.getByRole('progressbar', { name: 'progress' });
    expect(await bar.getAttribute('aria-valuenow')).toBe('30');

    // The next progress report shows without a reload, and the bar is drawn that wide.
    ctx.fx.step();
    await until(async () => (await bar.getAttribute('aria-valuenow')) === '70', 5000, 'the bar at 70');
    // The fill is drawn 70% as wide as the track (once its width transition has run).
    const filled = (): Promise<number> =>
      bar.evaluate((element) => {
        const fill = element.querySelector('.fill');
        return (fill?.getBoundingClientRect().width ?? 0) / element.getBoundingClientRect().width;
      });
    await until(async () => Math.abs((await filled()) - 0.7) < 0.02, 2000, 'the fill at 70% of the track');

    await ctx.page.getByRole('button', { name: 'Cancel' }).click();
    await ctx.page.waitForURL(url(`/jobs/${id}`));
    expect(await ctx.page.locator('.flash').textContent()).toBe(
      `Cancelled job ${id}: its running attempt is being aborted, and it ends cancelled`,
    );
    await until(async () => (await tag()) === 'cancelled', 5000, 'shown cancelled');
    expect(await stateOf(id)).toBe('cancelled');
    expect(await ctx.page.locator('[data-section="error"]').textContent()).toContain(
      'JobCancelledError: cancelled from the dashboard',
    );
    expect(await ctx.page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
  });

  it('promotes a scheduled job by clicking, and shows its result once it ran', async () => {
    const { id } = await ctx.fx.jobs.performIn({ handler: 'report', args: { month: '2026-11' } }, 3_600_000);
    await ctx.page.goto(url('/jobs/scheduled'));
    // The id in the list links to the job ctx.page.
    await ctx.page.locator(`tr[data-job="${id}"] a`).click();
    await ctx.page.waitForURL(url(`/jobs/${id}`));
    expect(await tag()).toBe('scheduled');

    await ctx.page.getByRole('button', { name: 'Promote' }).click();
    await ctx.page.waitForURL(url(`/jobs/${id}`));
    expect(await ctx.page.locator('.flash').textContent()).toBe(`Promoted job ${id}: it is ready to run now`);
    await until(async () => (await tag()) === 'completed', 5000, 'shown completed');
    const result = JSON.parse((await ctx.page.locator('[data-section="result"] pre.json').textContent()) ?? '');
    expect(result).toEqual({ rows: 18423, note: '<script>alert(1)</script>', month: '2026-11' });
    // Escaped markup stays text: no script element came from the result.
    expect(await ctx.page.locator('main script').count()).toBe(0);
  });

  it('retries a dead job from its page', async () => {
    const { id } = await ctx.fx.jobs.perform({ handler: 'report', args: { fail: true, month: 'oct' } });
    await until(async () => (await stateOf(id)) === 'dead', 5000, 'dead');
    await ctx.page.goto(url(`/jobs/${id}`));
    expect(await ctx.page.locator('[data-section="error"] .error-text').textContent()).toBe(
      'NonRetryableError: printer on fire <b>oct</b> (NON_RETRYABLE)',
    );
    ctx.fx.failing = false;
    try {
      await ctx.page.getByRole('button', { name: 'Retry' }).click();
      await ctx.page.waitForURL(url(`/jobs/${id}`));
      expect(await ctx.page.locator('.flash').textContent()).toBe(`Retried job ${id}`);
      await until(async () => (await tag()) === 'completed', 5000, 'shown completed');
    } finally {
      ctx.fx.failing = true;
    }
  });

  it('says so, with 404, for an id nobody knows', async () => {
    await ctx.page.goto(url('/jobs/completed'));
    await ctx.page.getByRole('searchbox', { name: 'job id' }).fill('never-enqueued-1');
    await ctx.page.getByRole('button', { name: 'Find job' }).click();
    await ctx.page.waitForURL(url('/jobs/never-enqueued-1'));
    expect(await ctx.page.locator('[data-job-missing] .alert').textContent()).toContain(
      'No such job (never enqueued, or finished and no longer kept)',
    );
    const response = await ctx.page.reload();
    expect(response?.status()).toBe(404);
  });
});
