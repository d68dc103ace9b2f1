import type { Snapshot } from '@shardwork/core';
import type { CountedState } from '@shardwork/jobs';
import { describe, expect, it } from 'vitest';
import { jobsFragment, queuesFragment, servicesFragment, unbrokenNumbers } from '../src/html.js';
import type { JobsView, QueueRow, QueuesView, ServicesView } from '../src/index.js';
import { isLoopbackHost } from '../src/security.js';

const ctx = { csrf: 'csrf-token', readOnly: false, back: '/queues' };
const NOW = Date.UTC(2026, 11, 2, 12, 1, 42);
const zero: Record<CountedState, number> = { scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 };
const row = (name: string, counts: Partial<Record<CountedState, number>>, extra: Partial<QueueRow> = {}): QueueRow => ({
  name,
  counts: { ...zero, ...counts },
  waitMs: undefined,
  throughput: undefined,
  ...extra,
});

describe('queues page: live consumers per handler', () => {
  const view: QueuesView = {
    configured: true,
    queues: [row('default', { ready: 4, scheduled: 1, dead: 3 })],
    handlers: [
      row('email', { ready: 1 }, { paused: false, consumers: 2 }),
      row('report', { ready: 2, scheduled: 1 }, { paused: false, consumers: 0 }),
      row('old', { dead: 3 }, { paused: false, consumers: 0 }),
      row('elsewhere', { ready: 1 }, { paused: false }),
    ],
    total: { ...zero, ready: 4, scheduled: 1, dead: 3 },
    throughputKnown: false,
    readAt: NOW,
    problem: undefined,
  };
  const html = queuesFragment(view, ctx, NOW);
  const rowOf = (name: string): string => new RegExp(`<tr data-handler="${name}"[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';

  it('shows how many live consumers registered each handler ("–" where the backend cannot tell)', () => {
    expect(html).toContain('>consumers</th>');
    expect(rowOf('email')).toContain('data-consumers="2">2<');
    expect(rowOf('elsewhere')).toContain('data-consumers=""');
    expect(rowOf('elsewhere')).toContain('title="this job backend cannot tell"');
  });

  it('flags a handler with waiting jobs and no live consumer, and says its jobs will wait', () => {
    expect(rowOf('report')).toContain('data-no-consumer="true"');
    expect(html).toContain(
      '<p class="alert" role="alert" data-warning="no-consumer" data-handler="report"><b>report</b>: 3 jobs waiting, and no live consumer registers this handler: its jobs will wait until a process that registers it starts.</p>',
    );
    // Dead jobs wait for nobody; an unknown consumer count is no alarm.
    for (const name of ['email', 'old', 'elsewhere']) {
      expect(rowOf(name)).not.toContain('data-no-consumer');
      expect(html).not.toContain(`data-warning="no-consumer" data-handler="${name}"`);
    }
  });
});

describe('empty job pages', () => {
  const page = (over: Partial<JobsView>): string =>
    jobsFragment(
      {
        configured: true,
        state: 'dead',
        total: 0,
        offset: 0,
        limit: 50,
        jobs: [],
        readAt: NOW,
        problem: undefined,
        ...over,
      },
      ctx,
      NOW,
    );

  it('says there are no jobs, without a pager saying "none"', () => {
    const html = page({});
    expect(html).toContain('data-empty="jobs">no dead jobs</td>');
    expect(html).not.toContain('class="pager"');
    expect(html).not.toMatch(/\bnone\b/);
    expect(html).not.toContain('Retry all dead');
  });

  it('past the last page, says how many there are and links the first page', () => {
    const html = page({ state: 'scheduled', total: 3, offset: 50 });
    expect(html).toContain(
      'no scheduled jobs at offset 50: there are 3; <a href="/jobs/scheduled">go to the first page</a>',
    );
    expect(html).not.toMatch(/\bnone\b/);
  });

  it('does not claim "no jobs" when the backend was never read', () => {
    const html = page({
      readAt: undefined,
      problem: { backend: 'Job queue at redis://127.0.0.1:1', reason: 'ECONNREFUSED', dataFrom: undefined },
    });
    expect(html).toContain('not read yet: the job backend has not answered');
    expect(html).not.toContain('no dead jobs');
    expect(html).not.toContain('data-stale');
  });
});

describe('stale data while a backend is down', () => {
  const snapshot: Snapshot = {
    revision: '1796218154145266',
    shardCount: 2,
    members: [{ id: 'member-a', host: 'web-0', pid: 7079, startedAt: NOW - 60_000, weight: 1, labels: {}, joinSeq: 1 }],
    claims: [
      { shard: 0, owner: 'member-a', token: 1796218164151491 },
      { shard: 1, owner: 'member-a', token: 1796218164151492 },
    ],
    invalid: [],
  };
  const view = (problem: ServicesView['problem']): ServicesView => ({
    services: [{ name: 'orders', snapshot, health: 'ok' }],
    canForget: true,
    movements: [],
    readAt: NOW - 35_000,
    problem,
  });

  it('greys out the last data read and says how old it is', () => {
    const html = servicesFragment(
      view({ backend: 'Discovery at redis://127.0.0.1:6379', reason: 'ECONNREFUSED', dataFrom: NOW - 35_000 }),
      ctx,
      NOW,
    );
    expect(html).toContain(
      'Discovery at redis://127.0.0.1:6379 unreachable: ECONNREFUSED; showing data from 12:01:07 UTC, 35.0 s old (greyed out: not live)',
    );
    // The whole service, shard map included, is inside the greyed-out part.
    expect(html).toMatch(/<div class="stale" data-stale="true" data-age-ms="35000"[^>]*>[\s\S]*class="shardmap"/);
  });

  it('shows live data as it is, and tokens and revisions as unbreakable numbers', () => {
    const html = servicesFragment(view(undefined), ctx, NOW);
    expect(html).not.toContain('data-stale');
    expect(html).not.toContain('data-banner');
    expect(html).toContain('<small>token <span class="token">1796218164151491</span></small>');
    expect(html).toContain('revision <span class="nowrap">1796218154145266</span>');
  });
});

describe('a stopped service', () => {
  const running: Snapshot = {
    revision: '17',
    shardCount: 2,
    members: [{ id: 'member-a', host: 'web-0', pid: 7079, startedAt: NOW - 60_000, weight: 1, labels: {}, joinSeq: 1 }],
    claims: [{ shard: 0, owner: 'member-a', token: 1796218164151491 }],
    invalid: [],
  };
  const stopped: Snapshot = { revision: '18', shardCount: 3, members: [], claims: [], invalid: [] };
  const view = (over: Partial<ServicesView> = {}): ServicesView => ({
    services: [
      { name: 'orders', snapshot: running, health: 'degraded' },
      { name: 'retired', snapshot: stopped, health: 'stopped' },
    ],
    canForget: true,
    movements: [],
    readAt: NOW,
    problem: undefined,
    ...over,
  });
  const section = (html: string, name: string): string =>
    new RegExp(`<section[^>]*data-service="${name}"[\\s\\S]*?</section>`).exec(html)?.[0] ?? '';

  it('is greyed and says stopped, with no red unowned shards, and offers Forget with the CSRF token', () => {
    const html = servicesFragment(view(), ctx, NOW);
    const retired = section(html, 'retired');
    expect(retired).toMatch(/^<section class="card idle" data-service="retired" data-health="stopped">/);
    expect(retired).toContain('<span class="tag idle">stopped</span> no live member, 3 shards');
    expect(retired.match(/class="shard off"/g)).toHaveLength(3);
    expect(retired).not.toMatch(/unowned|class="bad"|class="shard unowned"/);
    expect(retired).toContain(
      '<form method="post" action="/actions/forget" class="inline"><input type="hidden" name="_csrf" value="csrf-token"><input type="hidden" name="back" value="/queues"><input type="hidden" name="service" value="retired"><button type="submit" class="secondary">Forget</button></form>',
    );
    // A running service, even a degraded one, is red where shards are unowned and has nothing to forget.
    const orders = section(html, 'orders');
    expect(orders).toContain('data-health="degraded"');
    expect(orders).toContain('<span class="bad">1 unowned</span>');
    expect(orders).not.toContain('/actions/forget');
  });

  it('offers no Forget when read-only, and says so when the backend cannot forget', () => {
    const readOnly = servicesFragment(view(), { ...ctx, readOnly: true }, NOW);
    expect(section(readOnly, 'retired')).toContain('data-health="stopped"');
    expect(readOnly).not.toContain('<form');
    const unsupported = servicesFragment(view({ canForget: false }), ctx, NOW);
    expect(unsupported).not.toContain('/actions/forget');
    expect(section(unsupported, 'retired')).toContain(
      '<p class="muted" data-forget="unsupported">This discovery backend cannot forget a service.</p>',
    );
  });

  it('without any record says so, greyed as well', () => {
    const gone = servicesFragment(
      view({ services: [{ name: 'gone', snapshot: { ...stopped, shardCount: undefined }, health: 'absent' }] }),
      ctx,
      NOW,
    );
    expect(section(gone, 'gone')).toContain('data-health="absent"');
    expect(gone).toContain('The discovery backend holds no record of this service');
    expect(gone).not.toContain('/actions/forget');
  });
});

describe('unbrokenNumbers', () => {
  it('makes every run of digits one unbreakable span, escapes the rest, and prefers breaks after the given characters', () => {
    expect(unbrokenNumbers('{"invoice":1796218164151491,"to":"<a>"}', ',')).toBe(
      '{&quot;invoice&quot;:<span class="nowrap">1796218164151491</span>,<wbr>&quot;to&quot;:&quot;&lt;a&gt;&quot;}',
    );
    // Entities are made after splitting, so their digits are never wrapped.
    expect(unbrokenNumbers("it's 42")).toBe('it&#39;s <span class="nowrap">42</span>');
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback addresses in every spelling, and nothing else', () => {
    for (const host of [
      '127.0.0.1',
      '127.8.9.10',
      'localhost',
      'LOCALHOST',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of [
      '0.0.0.0',
      '::',
      '10.0.0.5',
      '192.168.1.20',
      'example.com',
      'web-0',
      '::ffff:10.0.0.1',
      '128.0.0.1',
    ]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});
