import { createDiscovery, InvalidOptionsError, Worker } from '@shardwork/core';
import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type RedisTestServer, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Dashboard, type DashboardWarning, startDashboard } from '../src/index.js';
import { randomName } from './support.js';

let redis: RedisTestServer;
let jobs: JobQueue;
let jobsUrl: string;
const opened: Dashboard[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  jobsUrl = `${redis.url}?prefix=${randomName('t')}:&partitions=2&leaseTtlMs=1000`;
  jobs = createJobQueue(jobsUrl);
  await jobs.perform({ handler: 'mail', args: { to: 'a@example.com' } });
});
afterAll(async () => {
  for (const d of opened) await d.close();
  await jobs?.stop();
  await redis?.stop();
});

async function open(options: Parameters<typeof startDashboard>[0]): Promise<Dashboard> {
  const dashboard = await startDashboard({ discovery: redis.url, jobs, port: 0, services: [], ...options });
  opened.push(dashboard);
  return dashboard;
}

const csrfOf = (html: string): string => /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] ?? '';

describe('options', () => {
  it('rejects bad options naming the option', async () => {
    await expect(startDashboard({ discovery: redis.url, port: -1 })).rejects.toThrow(InvalidOptionsError);
    await expect(startDashboard({ discovery: redis.url, port: 70000 })).rejects.toThrow(/"port"/);
    await expect(startDashboard({ discovery: redis.url, refreshMs: 5 })).rejects.toThrow(/"refreshMs"/);
    await expect(startDashboard({ discovery: redis.url, auth: { token: '' } })).rejects.toThrow(/"auth.token"/);
    await expect(startDashboard({ discovery: redis.url, auth: { username: 'a:b', password: 'x' } })).rejects.toThrow(
      /"auth.username"/,
    );
    await expect(startDashboard({ discovery: redis.url, services: [''] })).rejects.toThrow(/"services"/);
    await expect(startDashboard({ discovery: redis.url, readOnly: 'yes' as never })).rejects.toThrow(/"readOnly"/);
    await expect(startDashboard({ discovery: 42 as never })).rejects.toThrow(/"discovery"/);
    await expect(startDashboard({ discovery: redis.url, jobs: {} as never })).rejects.toThrow(/"jobs"/);
  });

  it('binds 127.0.0.1 by default and says when no job queue is configured', async () => {
    const d = await startDashboard({ discovery: redis.url, port: 0, services: [] });
    opened.push(d);
    expect(d.url).toBe(`http://127.0.0.1:${d.port}`);
    const html = await (await fetch(`${d.url}/jobs/dead`)).text();
    expect(html).toContain('no job queue configured');
    expect(await (await fetch(`${d.url}/queues`)).text()).toContain('no job queue configured');
  });
});

describe('listening beyond loopback without auth', () => {
  it('warns once through onWarning and on dashboard.warnings, saying how to add a token', async () => {
    const seen: DashboardWarning[] = [];
    const d = await open({ host: '0.0.0.0', onWarning: (w) => seen.push(w) });
    expect(seen).toEqual([
      expect.objectContaining({ code: 'UNAUTHENTICATED_NETWORK_BIND', host: '0.0.0.0', port: d.port }),
    ]);
    expect(d.warnings).toEqual(seen);
    expect(seen[0]?.message).toBe(
      `The dashboard listens on 0.0.0.0:${d.port}, which is reachable from the network, without authentication: ` +
        'anyone who can reach that port can read every service, member and job (with its arguments and errors) and retry, delete, cancel, promote and pause jobs, and forget stopped services. ' +
        'Add a token (auth: { token }) or a user and password (auth: { username, password }) and put TLS in front, or listen on 127.0.0.1 (the default).',
    );
    // It is a warning, not a refusal: the dashboard serves.
    expect((await fetch(`http://127.0.0.1:${d.port}/`)).status).toBe(200);

    const readOnly: DashboardWarning[] = [];
    await open({ host: '0.0.0.0', readOnly: true, onWarning: (w) => readOnly.push(w) });
    expect(readOnly[0]?.message).toContain(
      'can read every service, member and job (with its arguments and errors). Add',
    );
  });

  it('prints it with console.warn by default, and says nothing with auth or on loopback', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const exposed = await open({ host: '0.0.0.0' });
      expect(warn).toHaveBeenCalledWith(`[shardwork dashboard] ${exposed.warnings[0]?.message}`);
      warn.mockClear();
      const withToken = await open({ host: '0.0.0.0', auth: { token: 't0ken' } });
      const local = await open({ host: '127.0.0.1' });
      expect(withToken.warnings).toEqual([]);
      expect(local.warnings).toEqual([]);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
    await expect(startDashboard({ discovery: redis.url, onWarning: 'loud' as never })).rejects.toThrow(/"onWarning"/);
  });
});

describe('empty job pages', () => {
  it('say why they are empty, and never print a bare "none"', async () => {
    const own = createJobQueue(`${redis.url}?prefix=${randomName('e')}:&partitions=2&leaseTtlMs=1000`);
    try {
      const d = await open({ jobs: own });
      const empty = await (await fetch(`${d.url}/jobs/dead`)).text();
      expect(empty).toContain('data-empty="jobs">no dead jobs</td>');
      expect(empty).not.toContain('class="pager"');
      expect(empty).not.toMatch(/>\s*none\b/);
      const queues = await (await fetch(`${d.url}/queues`)).text();
      expect(queues).toContain('data-empty="queues">no queues: no job has been enqueued');

      await own.performIn({ handler: 'mail', args: {} }, 3_600_000);
      const past = (await (await fetch(`${d.url}/api/jobs/scheduled?offset=50`)).json()) as { html: string };
      expect(past.html).toContain(
        'no scheduled jobs at offset 50: there is 1; <a href="/jobs/scheduled">go to the first page</a>',
      );
      const first = await (await fetch(`${d.url}/jobs/scheduled`)).text();
      expect(first).toContain('1–1 of 1');
    } finally {
      await own.stop();
    }
  });
});

describe('services', () => {
  it('lists every service discovery knows when no services are given, with members and the shard map', async () => {
    const service = randomName('listed');
    const worker = new Worker({
      service,
      shards: 4,
      discovery: await createDiscovery(redis.url),
      leaseTtlMs: 1000,
      handler: async () => undefined,
    });
    await worker.start();
    try {
      const d = await startDashboard({ discovery: redis.url, jobs, port: 0 });
      opened.push(d);
      const instance = worker.status().instance ?? '';
      await until(
        async () => {
          const api = (await (await fetch(`${d.url}/api/services`)).json()) as {
            services: { name: string; snapshot: { claims: unknown[] } }[];
            html: string;
          };
          const mine = api.services.find((s) => s.name === service);
          return mine?.snapshot.claims.length === 4 && api.html.includes(`data-owner="${instance}"`);
        },
        20_000,
        'the service listed with all 4 shards owned',
      );
      const html = await (await fetch(`${d.url}/`)).text();
      expect(html).toContain(`data-member="${instance}"`);
      expect(html.match(/class="shard"/g)?.length).toBeGreaterThanOrEqual(4);
      expect(html).toContain('all owned');
    } finally {
      await worker.stop();
    }
  });
});

describe('security headers', () => {
  it('sends a CSP without external sources, DENY framing and nosniff', async () => {
    const d = await open({});
    const res = await fetch(`${d.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/https?:/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).not.toMatch(/<script>|https?:\/\/(?!127)/);
  });
});

describe('token auth', () => {
  it('401 without the token, bearer accepted, ?token= trades for a cookie', async () => {
    const d = await open({ auth: { token: 's3cret-token' } });
    expect((await fetch(`${d.url}/`)).status).toBe(401);
    expect((await fetch(`${d.url}/api/services`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${d.url}/api/services`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(
      200,
    );
    expect((await fetch(`${d.url}/queues?token=nope`, { redirect: 'manual' })).status).toBe(401);
    const trade = await fetch(`${d.url}/queues?token=s3cret-token&x=1`, { redirect: 'manual' });
    expect(trade.status).toBe(303);
    expect(trade.headers.get('location')).toBe('/queues?x=1');
    const cookie = trade.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).not.toContain('s3cret-token');
    const session = cookie.split(';')[0] as string;
    const page = await fetch(`${d.url}/queues?x=1`, { headers: { cookie: session } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('mail');
    expect((await fetch(`${d.url}/`, { headers: { cookie: 'shardwork_session=forged' } })).status).toBe(401);
  });
});

describe('basic auth', () => {
  it('401 with WWW-Authenticate, right credentials pass', async () => {
    const d = await open({ auth: { username: 'ops', password: 'pa55' } });
    const denied = await fetch(`${d.url}/`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const basic = (u: string, p: string): Record<string, string> => ({
      authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
    });
    expect((await fetch(`${d.url}/`, { headers: basic('ops', 'wrong') })).status).toBe(401);
    expect((await fetch(`${d.url}/`, { headers: basic('root', 'pa55') })).status).toBe(401);
    expect((await fetch(`${d.url}/`, { headers: basic('ops', 'pa55') })).status).toBe(200);
  });
});

describe('CSRF', () => {
  it('refuses a POST without the token or from another origin, runs it with the token', async () => {
    const d = await open({});
    const csrf = csrfOf(await (await fetch(`${d.url}/queues`)).text());
    expect(csrf.length).toBeGreaterThan(20);
    const post = (body: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${d.url}/actions/pause`, { method: 'POST', body: new URLSearchParams(body), headers, redirect: 'manual' });
    expect((await post({ handler: 'mail', back: '/queues' })).status).toBe(403);
    expect((await post({ handler: 'mail', _csrf: 'wrong' })).status).toBe(403);
    expect((await post({ handler: 'mail', _csrf: csrf }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post({ handler: 'mail', _csrf: csrf }, { referer: 'http://evil.example/x' })).status).toBe(403);
    expect((await jobs.stats()).handlers.mail?.paused).toBe(false);

    const ok = await post({ handler: 'mail', _csrf: csrf, back: '/queues' }, { origin: d.url });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/queues');
    expect((await jobs.stats()).handlers.mail?.paused).toBe(true);
    // The flash message shows once on the page redirected to.
    const flash = (ok.headers.get('set-cookie') ?? '').split(';')[0] as string;
    expect(await (await fetch(`${d.url}/queues`, { headers: { cookie: flash } })).text()).toContain('Paused mail');

    // The header works for fetch; an off-site back is not followed.
    const viaHeader = await fetch(`${d.url}/actions/unpause`, {
      method: 'POST',
      body: new URLSearchParams({ handler: 'mail', back: '//evil.example/' }),
      headers: { 'x-csrf-token': csrf },
      redirect: 'manual',
    });
    expect(viaHeader.status).toBe(303);
    expect(viaHeader.headers.get('location')).toBe('/');
    expect((await jobs.stats()).handlers.mail?.paused).toBe(false);
  });
});

describe('handlers without a live consumer', () => {
  it('shows live consumers per handler and flags one whose jobs will wait', async () => {
    const url = `${redis.url}?prefix=${randomName('c')}:&partitions=2&leaseTtlMs=1000`;
    const consumer = createJobQueue(url);
    consumer.register('email', () => undefined);
    await consumer.start();
    const producer = createJobQueue(url);
    try {
      await producer.perform({ handler: 'report', args: {} });
      const d = await open({ jobs: producer });
      let html = '';
      await until(
        async () => {
          html = await (await fetch(`${d.url}/queues`)).text();
          return /<tr data-handler="email"[^>]*>.*?data-consumers="1">1</.test(html);
        },
        20_000,
        'the consumer of email counted',
      );
      expect(html).toMatch(/<tr data-handler="report"[^>]*data-no-consumer="true"/);
      expect(html).toContain(
        '<b>report</b>: 1 job waiting, and no live consumer registers this handler: its jobs will wait until a process that registers it starts.',
      );
      expect(html).not.toContain('data-warning="no-consumer" data-handler="email"');
    } finally {
      await consumer.stop();
      await producer.stop();
    }
  });

  it('refuses to pause a handler nobody knows, with a clear message', async () => {
    const d = await open({});
    const csrf = csrfOf(await (await fetch(`${d.url}/queues`)).text());
    const res = await fetch(`${d.url}/actions/pause`, {
      method: 'POST',
      body: new URLSearchParams({ handler: 'mial', _csrf: csrf, back: '/queues' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    const flash = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const page = await (await fetch(`${d.url}/queues`, { headers: { cookie: flash } })).text();
    expect(page).toContain(
      '<div class="flash error" role="alert">Not paused: no live consumer registers the handler &quot;mial&quot; and the job store has never seen a job of it, so nothing would be paused. Check the name against the handlers listed here.</div>',
    );
    expect((await jobs.stats()).handlers.mial).toBeUndefined();
  });
});

describe('read-only', () => {
  it('renders no action buttons and refuses every POST', async () => {
    const d = await open({ readOnly: true });
    const html = await (await fetch(`${d.url}/queues`)).text();
    expect(html).toContain('mail');
    // No action form; only the header's search by id (a GET) is left.
    expect(html).not.toContain('<form method="post"');
    expect(html.match(/<form /g)).toEqual(['<form ']);
    expect(html).toContain('<form method="get" action="/jobs" class="search"');
    expect(html).not.toContain('Pause');
    const csrf = csrfOf(html);
    const res = await fetch(`${d.url}/actions/pause`, {
      method: 'POST',
      body: new URLSearchParams({ handler: 'mail', _csrf: csrf }),
      headers: { 'x-csrf-token': csrf },
      redirect: 'manual',
    });
    expect(res.status).toBe(403);
    expect((await jobs.stats()).handlers.mail?.paused).toBe(false);
  });
});

describe('backend down', () => {
  it('renders with a banner and the last data while Redis is down, and recovers', async () => {
    const service = randomName('svc');
    const worker = new Worker({
      service,
      shards: 3,
      discovery: await createDiscovery(redis.url),
      leaseTtlMs: 1000,
      handler: async () => undefined,
    });
    await worker.start();
    const d = await open({ services: [service], backendTimeoutMs: 1000 });
    try {
      await until(
        async () => (await (await fetch(`${d.url}/`)).text()).includes(`data-service="${service}"`),
        20_000,
        'service shown',
      );
      const restarted = redis.restart({ keepData: false, downMs: 8000 });
      let down = '';
      await until(
        async () => {
          const res = await fetch(`${d.url}/`);
          expect(res.status).toBe(200);
          down = await res.text();
          return down.includes('data-banner="down"');
        },
        7000,
        'banner while Redis is down',
      );
      expect(down).toMatch(/Discovery at redis:\/\/127\.0\.0\.1:\d+ unreachable: .+; showing data from \d\d:\d\d:\d\d/);
      expect(down).toContain(`data-service="${service}"`); // the last known data is still shown
      // … greyed out as not live, with its age.
      expect(down).toMatch(/showing data from \d\d:\d\d:\d\d UTC, [\d.]+ (ms|s) old \(greyed out: not live\)/);
      expect(down).toMatch(
        new RegExp(
          `<div class="stale" data-stale="true" data-age-ms="\\d+"[^>]*>[\\s\\S]*data-service="${service}"[\\s\\S]*class="shardmap"`,
        ),
      );
      const api = (await (await fetch(`${d.url}/api/queues`)).json()) as { problem?: { reason: string } };
      expect(api.problem?.reason).toBeTruthy();
      await restarted;
      await until(
        async () => {
          const html = await (await fetch(`${d.url}/`)).text();
          const queues = await (await fetch(`${d.url}/queues`)).text();
          return (
            !html.includes('data-banner') &&
            !queues.includes('data-banner') &&
            !html.includes('data-stale') &&
            !queues.includes('data-stale')
          );
        },
        30_000,
        'banner gone after Redis is back',
      );
    } finally {
      await worker.stop();
    }
  });
});
