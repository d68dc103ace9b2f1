import { type AdminJobQueue, UnsupportedFeatureError } from '@shardwork/jobs';
import { until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dashboard, startDashboard } from '../src/index.js';
import { type JobFixture, startJobFixture } from './job-fixture.js';

let fx: JobFixture;
let d: Dashboard;

beforeAll(async () => {
  fx = await startJobFixture();
  d = fx.dashboard;
});
afterAll(async () => {
  await fx?.close();
});

const csrfOf = (html: string): string => /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] ?? '';
const get = (path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${d.url}${path}`, { redirect: 'manual', ...init });
const html = async (path: string): Promise<string> => (await get(path)).text();
let csrf = '';
const token = async (): Promise<string> => {
  csrf ||= csrfOf(await html('/queues'));
  return csrf;
};
const post = async (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${d.url}${path}`, {
    method: 'POST',
    body: new URLSearchParams({ _csrf: await token(), ...body }),
    headers,
    redirect: 'manual',
  });
/** The page an action redirected to, as it shows with the action's flash cookie. */
const after = async (res: Response): Promise<string> => {
  expect(res.status).toBe(303);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
  return (await get(res.headers.get('location') ?? '/', { headers: { cookie } })).text();
};
const flash = (page: string): string => /<div class="flash[^"]*"[^>]*>[^<]*<\/div>/.exec(page)?.[0] ?? '(no flash)';
const stateOf = async (id: string): Promise<string | undefined> => (await fx.jobs.getJob(id))?.state;

describe('the job page', () => {
  it('shows every field of a completed job, args and result as escaped pretty JSON, times as ISO dates', async () => {
    const { id } = await fx.jobs.perform({
      handler: 'report',
      args: { month: '<img src=x onerror=alert(1)>', invoice: 1796218164151491 },
      key: 'tenant-7',
    });
    await fx.jobs.waitFor(id, { timeoutMs: 5000 });
    const job = await fx.jobs.getJob(id);
    const res = await get(`/jobs/${id}`);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain(`<code class="job-id">${id}</code> <span class="tag state completed">completed</span>`);
    for (const [field, value] of [
      ['handler', 'report'],
      ['queue', 'default'],
      ['key', '<code>tenant-7</code>'],
      ['attempt', '1'],
      ['fails', '0'],
      ['maxFails', '3'],
    ]) {
      expect(page).toMatch(new RegExp(`<tr data-field="${field}"><th>[^<]+</th><td>${value}</td></tr>`));
    }
    for (const field of ['enqueuedAt', 'scheduledAt', 'startedAt', 'finishedAt'] as const) {
      const iso = new Date(job?.[field] ?? 0).toISOString();
      expect(page).toContain(`<tr data-field="${field}"><th>`);
      expect(page).toContain(`<time class="nowrap" datetime="${iso}">${iso}</time>`);
    }
    expect(page).toContain('– (no partitions on this adapter)');
    // Pretty (indented) and escaped; a long number never broken.
    expect(page).toContain(
      '<pre class="json">{\n  &quot;month&quot;: &quot;&lt;img src=x onerror=alert(1)&gt;&quot;,<wbr>\n  &quot;invoice&quot;: <span class="nowrap">1796218164151491</span>\n}</pre>',
    );
    expect(page).toContain('&quot;note&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<script>alert');
    expect(page).toContain('data-section="result"');
    expect(page).toContain('no progress reported');
    // Nothing to do with a completed job.
    expect(page).not.toMatch(/<form method="post"/);
    // The page polls its own API, which has the same fragment.
    expect(page).toContain(`data-api="/api/job/${id}"`);
    const api = (await (await get(`/api/job/${id}`)).json()) as { job: { state: string }; html: string };
    expect(api.job.state).toBe('completed');
    expect(api.html).toContain('data-section="result"');
  });

  it('shows a running job with a progress bar, and cancels it (PRG, with the result flashed)', async () => {
    const { id } = await fx.jobs.perform({ handler: 'report', args: { progress: [42.5] } });
    await until(async () => (await fx.jobs.getJob(id))?.progress === 42.5, 5000, 'progress 42.5 stored');
    const page = await html(`/jobs/${id}`);
    expect(page).toContain('<span class="tag state running">running</span>');
    expect(page).toContain('aria-valuenow="42.5" data-progress="42.5"><span class="fill" style="width:42.5%">');
    expect(page).toContain('<p class="progress-label">42.5%</p>');
    expect(page).toContain('>Cancel</button>');
    expect(page).not.toContain('>Promote</button>');
    expect(page).not.toContain('>Retry</button>');

    const res = await post('/actions/cancel', { id, back: `/jobs/${id}` });
    expect(res.headers.get('location')).toBe(`/jobs/${id}`);
    expect(flash(await after(res))).toBe(
      `<div class="flash" role="status">Cancelled job ${id}: its running attempt is being aborted, and it ends cancelled</div>`,
    );
    await until(async () => (await stateOf(id)) === 'cancelled', 5000, 'cancelled');
    const cancelled = await html(`/jobs/${id}`);
    expect(cancelled).toContain('<span class="tag state cancelled">cancelled</span>');
    expect(cancelled).toContain('<h2>Cancelled</h2>');
    expect(cancelled).toContain('cancelled from the dashboard');
    expect(cancelled).not.toContain('>Cancel</button>');

    // Again: refused, and said so in red.
    const again = flash(await after(await post('/actions/cancel', { id, back: `/jobs/${id}` })));
    expect(again).toBe(
      `<div class="flash error" role="alert">Not cancelled: job ${id} had already finished (cancelled)</div>`,
    );
  });

  it('promotes a scheduled job, and shows a refused promote as a message, not a 500', async () => {
    const { id } = await fx.jobs.performIn({ handler: 'report', args: { month: '2026-11' } }, 3_600_000);
    const page = await html(`/jobs/${id}`);
    expect(page).toContain('<span class="tag state scheduled">scheduled</span>');
    expect(page).toContain('>Promote</button>');
    expect(page).toContain('>Cancel</button>');
    expect(page).toContain('– (not started)');

    expect(flash(await after(await post('/actions/promote', { id, back: `/jobs/${id}` })))).toBe(
      `<div class="flash" role="status">Promoted job ${id}: it is ready to run now</div>`,
    );
    await until(async () => (await stateOf(id)) === 'completed', 5000, 'the promoted job ran');

    const refused = flash(await after(await post('/actions/promote', { id, back: `/jobs/${id}` })));
    expect(refused).toBe(
      `<div class="flash error" role="alert">Cannot promote job ${id}: it is completed; promote works on scheduled, retrying, ready jobs. Nothing was changed.</div>`,
    );
  });

  it('shows a dead job with its error and retries it from the page', async () => {
    const { id } = await fx.jobs.perform({ handler: 'report', args: { fail: true, month: 'oct' } });
    await until(async () => (await stateOf(id)) === 'dead', 5000, 'dead');
    const page = await html(`/jobs/${id}`);
    expect(page).toContain(
      '<p class="error-text"><b>NonRetryableError</b>: printer on fire &lt;b&gt;oct&lt;/b&gt; <small class="muted">(NON_RETRYABLE)</small></p>',
    );
    expect(page).toContain('>Retry</button>');
    expect(page).not.toContain('>Promote</button>');
    expect(page).not.toContain('>Cancel</button>');

    fx.failing = false;
    try {
      expect(flash(await after(await post('/actions/retry', { id, back: `/jobs/${id}` })))).toBe(
        `<div class="flash" role="status">Retried job ${id}</div>`,
      );
      await until(async () => (await stateOf(id)) === 'completed', 5000, 'the retried job completed');
    } finally {
      fx.failing = true;
    }
  });

  it('answers 404 with a clear page for an unknown id; actions on it say so', async () => {
    const res = await get('/jobs/no-such-job-42');
    expect(res.status).toBe(404);
    const page = await res.text();
    expect(page).toContain('No such job (never enqueued, or finished and no longer kept)');
    expect(page).toContain('data-job-missing="true"');
    // The API answers 200 (the page script would take anything else for an outage), with no job.
    const api = await get('/api/job/no-such-job-42');
    expect(api.status).toBe(200);
    const body = (await api.json()) as { job?: unknown; readAt?: number; html: string };
    expect(body.job).toBeUndefined();
    expect(body.readAt).toBeGreaterThan(0);
    expect(body.html).toContain('No such job');

    for (const [path, verb] of [
      ['/actions/cancel', 'cancel'],
      ['/actions/promote', 'promote'],
    ]) {
      const shown = flash(
        await after(await post(path as string, { id: 'no-such-job-42', back: '/jobs/no-such-job-42' })),
      );
      expect(shown).toBe(
        `<div class="flash error" role="alert">No job no-such-job-42 to ${verb}: never enqueued, or finished and no longer kept</div>`,
      );
    }
  });

  it('answers 400 for text that cannot be a job id', async () => {
    const res = await get('/jobs/has%20space');
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This is not a job id');
  });
});

describe('search by id and links', () => {
  it('a search form in the header of every page leads to the job page', async () => {
    for (const path of ['/queues', '/jobs/dead', '/jobs/completed', '/']) {
      expect(await html(path)).toContain('<form method="get" action="/jobs" class="search" role="search">');
    }
    const { id } = await fx.jobs.performIn({ handler: 'report', args: {} }, 3_600_000);
    const found = await get(`/jobs?id=${encodeURIComponent(` ${id} `)}`);
    expect(found.status).toBe(303);
    expect(found.headers.get('location')).toBe(`/jobs/${id}`);
    // The job page fills the search box with its id.
    expect(await html(`/jobs/${id}`)).toContain(`name="id" value="${id}"`);
    const empty = await get('/jobs');
    expect(empty.status).toBe(200);
    expect(await empty.text()).toContain('Find a job by id');
  });

  it('carries any job id: URL-encoded in the path, or in the query where a path cannot carry it', async () => {
    const odd = `a/b?c#d%e<x>"'&`;
    await fx.jobs.performIn({ handler: 'report', args: {} }, 3_600_000, { id: odd });
    const search = await get(`/jobs?id=${encodeURIComponent(odd)}`);
    expect(search.headers.get('location')).toBe(`/jobs/${encodeURIComponent(odd)}`);
    const res = await get(`/jobs/${encodeURIComponent(odd)}`);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('<code class="job-id">a/b?c#d%e&lt;x&gt;&quot;&#39;&amp;</code>');
    expect(page).not.toContain('<x>');
    // Its actions come back to its page.
    expect(page).toContain(`name="back" value="/jobs/${encodeURIComponent(odd).replaceAll("'", '&#39;')}"`);
    expect(await html('/jobs/scheduled')).toContain(
      `<a href="/jobs/${encodeURIComponent(odd).replaceAll("'", '&#39;')}"><code>a/b?c#d%e&lt;x&gt;`,
    );

    // A job named like a list: its page is /jobs?id=dead, and /jobs/dead stays the list.
    await fx.jobs.performIn({ handler: 'report', args: {} }, 3_600_000, { id: 'dead' });
    const named = await get('/jobs?id=dead');
    expect(named.status).toBe(200);
    const namedPage = await named.text();
    expect(namedPage).toContain('<code class="job-id">dead</code> <span class="tag state scheduled">');
    // It polls /api/job with its own query (?id=dead).
    expect(namedPage).toContain('data-api="/api/job"');
    expect(((await (await get('/api/job?id=dead')).json()) as { job: { id: string } }).job.id).toBe('dead');
    expect(await html('/jobs/dead')).toContain('<h2>dead jobs');
    expect(await html('/jobs/scheduled')).toContain('<a href="/jobs?id=dead"><code>dead</code></a>');
  });

  it('lists completed and cancelled jobs, each id linking to its page', async () => {
    const { id } = await fx.jobs.perform({ handler: 'report', args: { month: 'listed' } });
    await fx.jobs.waitFor(id, { timeoutMs: 5000 });
    const completed = await html('/jobs/completed');
    expect(completed).toContain('<h2>completed jobs');
    expect(completed).toContain('<th>finished (UTC)</th>');
    expect(completed).toContain(`<tr data-job="${id}"><td><a href="/jobs/${id}"><code>${id}</code></a></td>`);
    expect(completed).toMatch(/<nav>.*<a href="\/jobs\/completed" class="active">Completed<\/a>.*Cancelled/);
    const scheduled = await fx.jobs.performIn({ handler: 'report', args: {} }, 3_600_000);
    await fx.jobs.cancel(scheduled.id, { reason: 'not needed <any more>' });
    const cancelled = await html('/jobs/cancelled');
    expect(cancelled).toContain('<th>reason</th>');
    expect(cancelled).toContain(`<a href="/jobs/${scheduled.id}">`);
    expect(cancelled).toContain('not needed &lt;any more&gt;');
  });
});

describe('job actions: CSRF and read-only', () => {
  it('refuses Cancel and Promote without the CSRF token or from another origin', async () => {
    const { id } = await fx.jobs.performIn({ handler: 'report', args: {} }, 3_600_000);
    const raw = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${d.url}${path}`, { method: 'POST', body: new URLSearchParams(body), headers, redirect: 'manual' });
    for (const path of ['/actions/cancel', '/actions/promote']) {
      expect((await raw(path, { id })).status).toBe(403);
      expect((await raw(path, { id, _csrf: 'wrong' })).status).toBe(403);
      expect((await raw(path, { id, _csrf: await token() }, { origin: 'http://evil.example' })).status).toBe(403);
    }
    expect(await stateOf(id)).toBe('scheduled');
  });

  it('read-only: the job page has no action forms (the search stays) and every action POST is refused', async () => {
    const readOnly = await fx.open({ readOnly: true });
    const { id } = await fx.jobs.performIn({ handler: 'report', args: {} }, 3_600_000);
    const page = await (await fetch(`${readOnly.url}/jobs/${id}`)).text();
    expect(page).toContain('<span class="tag state scheduled">scheduled</span>');
    expect(page).not.toContain('<form method="post"');
    expect(page).not.toMatch(/>(Cancel|Promote|Retry)<\/button>/);
    expect(page).toContain('<form method="get" action="/jobs" class="search"');
    const csrfToken = csrfOf(page);
    for (const path of ['/actions/cancel', '/actions/promote', '/actions/retry']) {
      const res = await fetch(`${readOnly.url}${path}`, {
        method: 'POST',
        body: new URLSearchParams({ id, _csrf: csrfToken }),
        headers: { 'x-csrf-token': csrfToken },
        redirect: 'manual',
      });
      expect(res.status).toBe(403);
    }
    expect(await stateOf(id)).toBe('scheduled');
  });
});

describe('a job backend that cannot look jobs up (amqp://)', () => {
  it('says so on the job page and the finished lists, and refuses actions with its message, never a 500', async () => {
    const refusal = (): Promise<never> =>
      Promise.reject(
        new UnsupportedFeatureError('amqp', 'lookup', 'it cannot look a job up by id; use redis:// across processes'),
      );
    // The queue, with the calls amqp:// refuses refusing.
    const amqpLike = new Proxy(fx.jobs, {
      get(target, prop) {
        if (prop === 'getJob' || prop === 'cancel' || prop === 'promote' || prop === 'list') return refusal;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as AdminJobQueue;
    const amqp = await startDashboard({ discovery: 'memory://', jobs: amqpLike, services: [], port: 0 });
    try {
      const res = await fetch(`${amqp.url}/jobs/some-job`);
      expect(res.status).toBe(200);
      const page = await res.text();
      expect(page).toContain(
        'This job backend cannot look jobs up by id: The amqp job adapter does not support lookup: it cannot look a job up by id',
      );
      expect(page).not.toContain('data-banner');
      const list = await (await fetch(`${amqp.url}/jobs/completed`)).text();
      expect(list).toContain('cannot list jobs: The amqp job adapter does not support lookup');
      expect(list).not.toContain('unreachable');

      const csrfToken = csrfOf(page);
      const cancel = await fetch(`${amqp.url}/actions/cancel`, {
        method: 'POST',
        body: new URLSearchParams({ id: 'some-job', _csrf: csrfToken, back: '/jobs/some-job' }),
        redirect: 'manual',
      });
      expect(cancel.status).toBe(303);
      const cookie = (cancel.headers.get('set-cookie') ?? '').split(';')[0] as string;
      const shown = await (await fetch(`${amqp.url}/jobs/some-job`, { headers: { cookie } })).text();
      expect(flash(shown)).toBe(
        '<div class="flash error" role="alert">The amqp job adapter does not support lookup: it cannot look a job up by id; use redis:// across processes</div>',
      );
    } finally {
      await amqp.close();
    }
  });
});
