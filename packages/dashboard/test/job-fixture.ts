import { NonRetryableError } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { type Dashboard, type DashboardOptions, startDashboard } from '../src/index.js';
import { CHROMIUM } from './support.js';

/**
 * The job page tests' setup: a memory:// job queue run in this process with
 * one handler, `report`, that the test steers, and a dashboard over it.
 *
 * `report` reports each number of `args.progress` with `ctx.progress()` and
 * then waits for {@link JobFixture.step} (or its cancellation); fails for
 * good (`NonRetryableError`) when `args.fail` is set and `failing` is; and
 * returns `{ rows, note, month }`, `note` being markup that must come out escaped.
 */
export interface JobFixture {
  readonly jobs: JobQueue;
  readonly dashboard: Dashboard;
  /** While true, jobs with `args.fail` go dead. */
  failing: boolean;
  /** Let every attempt that waits after a progress report go on. */
  step(): void;
  /** A second dashboard over the same queue, closed with the fixture. */
  open(options?: Partial<DashboardOptions>): Promise<Dashboard>;
  close(): Promise<void>;
}

/** What `report` returns (besides `month`): markup in `note`, a number in `rows`. */
export const REPORT_RESULT = { rows: 18423, note: '<script>alert(1)</script>' } as const;

/** Start the queue and a dashboard (refreshing every 200 ms) over it. */
export async function startJobFixture(options: Partial<DashboardOptions> = {}): Promise<JobFixture> {
  // progressIntervalMs 0: every ctx.progress() is stored at once, so a test sees each value.
  const jobs = createJobQueue('memory://', { progressIntervalMs: 0 });
  const waiting = new Set<() => void>();
  const opened: Dashboard[] = [];
  const next = (signal: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const go = (): void => {
        waiting.delete(go);
        resolve();
      };
      waiting.add(go);
      signal.addEventListener(
        'abort',
        () => {
          waiting.delete(go);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  const fixture: JobFixture = {
    jobs,
    dashboard: undefined as unknown as Dashboard,
    failing: true,
    step() {
      for (const go of [...waiting]) go();
    },
    async open(more = {}) {
      const dashboard = await startDashboard({
        discovery: 'memory://',
        jobs,
        services: [],
        port: 0,
        refreshMs: 200,
        ...options,
        ...more,
      });
      opened.push(dashboard);
      return dashboard;
    },
    async close() {
      for (const d of opened) await d.close();
      fixture.step();
      await jobs.stop({ timeoutMs: 1000 });
    },
  };
  jobs.register(
    'report',
    async (args, ctx) => {
      const steps = Array.isArray(args.progress) ? args.progress : [];
      for (const value of steps) {
        ctx.progress(value as number | Record<string, unknown>);
        await next(ctx.signal);
      }
      if (args.fail === true && fixture.failing) {
        throw new NonRetryableError(`printer on fire <b>${String(args.month ?? '')}</b>`);
      }
      return { ...REPORT_RESULT, month: args.month ?? null };
    },
    { maxFails: 3 },
  );
  await jobs.start();
  (fixture as { dashboard: Dashboard }).dashboard = await fixture.open();
  return fixture;
}

/** A job fixture and a Chromium page (1280×800) for the tests of one file. */
export interface JobBrowser {
  readonly fx: JobFixture;
  readonly page: Page;
}

/** Start a {@link JobFixture} and a Chromium page before the file's tests, and close both after them. */
export function jobBrowser(): JobBrowser {
  let fx: JobFixture | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  beforeAll(async () => {
    fx = await startJobFixture();
    browser = await chromium.launch(CHROMIUM);
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });
  afterAll(async () => {
    await browser?.close();
    await fx?.close();
  });
  return {
    get fx() {
      if (fx === undefined) throw new Error('jobBrowser(): used before its beforeAll ran');
      return fx;
    },
    get page() {
      if (page === undefined) throw new Error('jobBrowser(): used before its beforeAll ran');
      return page;
    },
  };
}
