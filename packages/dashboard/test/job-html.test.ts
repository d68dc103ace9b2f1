import type { AdminJobQueue, JobDetails, JobState } from '@shardwork/jobs';
import { describe, expect, it } from 'vitest';
import { jobHref } from '../src/html.js';
import { JobLookups, type JobView, jobPageStatus } from '../src/job-data.js';
import { jobFragment } from '../src/job-html.js';

const ctx = { csrf: 'csrf-token', readOnly: false, back: '/jobs/job-1' };
const NOW = Date.UTC(2026, 11, 2, 12, 1, 42);
const job = (over: Partial<JobDetails> = {}): JobDetails => ({
  id: 'job-1',
  handler: 'report',
  queue: 'default',
  key: undefined,
  args: { month: '2026-11' },
  state: 'running',
  attempt: 1,
  fails: 0,
  maxFails: undefined,
  priority: undefined,
  enqueuedAt: NOW - 60_000,
  scheduledAt: NOW - 60_000,
  startedAt: NOW - 30_000,
  finishedAt: undefined,
  progress: undefined,
  result: undefined,
  error: undefined,
  partition: 1,
  owner: 'member-a',
  ...over,
});
const view = (over: Partial<JobView> = {}): JobView => ({
  configured: true,
  id: 'job-1',
  job: job(),
  refused: undefined,
  readAt: NOW,
  problem: undefined,
  ...over,
});
const buttons = (html: string): string[] =>
  [...html.matchAll(/<button type="submit"[^>]*>([^<]+)<\/button>/g)].map((m) => m[1] ?? '');

describe('job page actions by state', () => {
  const expected: Record<JobState, string[]> = {
    scheduled: ['Cancel', 'Promote'],
    ready: ['Cancel'],
    running: ['Cancel'],
    retrying: ['Cancel', 'Promote'],
    completed: [],
    dead: ['Retry'],
    cancelled: [],
  };
  for (const [state, labels] of Object.entries(expected) as [JobState, string[]][]) {
    it(`${state}: ${labels.join(', ') || 'no buttons'}`, () => {
      const html = jobFragment(view({ job: job({ state }) }), ctx, NOW);
      expect(buttons(html)).toEqual(labels);
      expect(buttons(jobFragment(view({ job: job({ state }) }), { ...ctx, readOnly: true }, NOW))).toEqual([]);
    });
  }

  it('posts the id with the CSRF token and comes back to the page', () => {
    const html = jobFragment(view({ job: job({ state: 'scheduled' }) }), ctx, NOW);
    expect(html).toContain(
      '<form method="post" action="/actions/promote" class="inline"><input type="hidden" name="_csrf" value="csrf-token"><input type="hidden" name="back" value="/jobs/job-1"><input type="hidden" name="id" value="job-1"><button type="submit" class="">Promote</button></form>',
    );
  });
});

describe('job page fields', () => {
  it('shows a percentage as a bar, anything else as JSON', () => {
    expect(jobFragment(view({ job: job({ progress: 0 }) }), ctx, NOW)).toContain('style="width:0%"');
    expect(jobFragment(view({ job: job({ progress: 100 }) }), ctx, NOW)).toContain('aria-valuenow="100"');
    for (const progress of [150, -1, { step: 'copy', done: 3 }]) {
      const html = jobFragment(view({ job: job({ progress }) }), ctx, NOW);
      expect(html, JSON.stringify(progress)).not.toContain('role="progressbar"');
      expect(html).toContain(`<pre class="json">`);
    }
  });

  it('shows partition and owner, and says why maxFails is unknown', () => {
    const html = jobFragment(view(), ctx, NOW);
    expect(html).toContain('<tr data-field="partition"><th>partition</th><td>1</td></tr>');
    expect(html).toContain('<tr data-field="owner"><th>owner</th><td><code>member-a</code></td></tr>');
    expect(html).toContain('– (handler not registered in this process)');
    expect(html).toContain(
      `<time class="nowrap" datetime="${new Date(NOW - 30_000).toISOString()}">${new Date(NOW - 30_000).toISOString()}</time>`,
    );
  });

  it('greys out the last data while the job backend is down', () => {
    const problem = { backend: 'Job queue at redis://127.0.0.1:1', reason: 'ECONNREFUSED', dataFrom: NOW - 5000 };
    const html = jobFragment(view({ problem, readAt: NOW - 5000 }), ctx, NOW);
    expect(html).toContain('data-banner="down"');
    expect(html).toMatch(/<div class="stale" data-stale="true"[^>]*>.*data-job-page="job-1"/s);
    // Stale "no such job" is not a 404: the store was not asked.
    expect(jobPageStatus(view({ job: undefined, problem, readAt: NOW - 5000 }))).toBe(200);
    expect(jobPageStatus(view({ job: undefined }))).toBe(404);
    expect(jobPageStatus(view({ job: undefined, refused: { kind: 'invalid-id', message: 'x' } }))).toBe(400);
    expect(jobPageStatus(view({ job: undefined, refused: { kind: 'unsupported', message: 'x' } }))).toBe(200);
    expect(jobPageStatus(view())).toBe(200);
  });
});

describe('jobHref', () => {
  it('puts an id in the path, URL-encoded, except where a path cannot carry it', () => {
    expect(jobHref('V1StGXR8_Z5jdHi6B-myT')).toBe('/jobs/V1StGXR8_Z5jdHi6B-myT');
    expect(jobHref('order:42/a?b#c')).toBe('/jobs/order%3A42%2Fa%3Fb%23c');
    for (const id of ['dead', 'completed', 'running', '.', '..']) {
      expect(jobHref(id)).toBe(`/jobs?id=${encodeURIComponent(id)}`);
    }
  });
});

describe('JobLookups', () => {
  it('keeps the last answer while the backend fails, with the time it was read', async () => {
    let down = false;
    const queue = {
      getJob: async (id: string) => {
        if (down) throw new Error('ECONNREFUSED');
        return job({ id });
      },
    } as unknown as AdminJobQueue;
    const lookups = new JobLookups(queue, 'Job queue at redis://x', (_key, start) => start());
    const live = await lookups.read('job-1');
    expect(live.problem).toBeUndefined();
    down = true;
    const stale = await lookups.read('job-1');
    expect(stale.job?.id).toBe('job-1');
    expect(stale.problem).toEqual({ backend: 'Job queue at redis://x', reason: 'ECONNREFUSED', dataFrom: live.readAt });
    const never = await lookups.read('job-2');
    expect(never).toMatchObject({ job: undefined, readAt: undefined, problem: { dataFrom: undefined } });
    expect(jobFragment(never, ctx, NOW)).toContain('not read yet: the job backend has not answered');
  });
});
