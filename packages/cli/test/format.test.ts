import { describe, expect, it } from 'vitest';
import { renderTable, shorten, wrapWords } from '../src/format.js';
import { renderJobs, renderStats, waitingWithoutConsumer } from '../src/jobs.js';
import { describeSnapshot, renderService } from '../src/status.js';
import { diff } from '../src/watch.js';

const TOKEN = '1796218164151491'; // 16 digits, as etcd (createRevision × 1000 + shard) and Redis tokens now are
const counts = (o: Partial<Record<'scheduled' | 'ready' | 'running' | 'retrying' | 'dead', number>> = {}) => ({
  scheduled: 0,
  ready: 0,
  running: 0,
  retrying: 0,
  dead: 0,
  ...o,
});
const digitRuns = (text: string): string[] => text.match(/\d+/g) ?? [];

describe('shorten', () => {
  it('keeps text that fits and cuts the rest with one "…"', () => {
    expect(shorten('web-0:7079', 20)).toBe('web-0:7079');
    expect(shorten('billing-sync-7d9f8b6c5d-x2x7q:7079', 20, 'middle')).toBe('billing-sy…2x7q:7079');
    expect(shorten('billing-sync-7d9f8b6c5d-x2x7q:7079', 9, 'middle')).toBe('bill…7079');
    expect(shorten('abcdefghij', 5)).toBe('abcd…');
  });

  it('never cuts inside a run of digits, at either end', () => {
    expect(shorten(`token ${TOKEN} x`, 12)).toBe('token …');
    expect(shorten(`host:${TOKEN}`, 12, 'middle')).toBe('host:…');
    expect(shorten(TOKEN, 10, 'middle')).toBe('…');
    for (let max = 1; max < 40; max++) {
      for (const at of ['middle', 'end'] as const) {
        const text = `pod-123-abc:${TOKEN}:42`;
        const short = shorten(text, max, at);
        expect(short.length).toBeLessThanOrEqual(Math.max(1, max));
        // Every number left is a whole number of the original.
        for (const run of digitRuns(short)) expect(['123', TOKEN, '42']).toContain(run);
      }
    }
  });
});

describe('wrapWords', () => {
  it('breaks only between words and keeps the separator at the line end', () => {
    expect(wrapWords(['0', '1', '22', '333'], 7, ', ')).toEqual(['0, 1,', '22, 333']);
    expect(wrapWords([`(token ${TOKEN})`], 10)).toEqual([`(token ${TOKEN})`]);
    expect(wrapWords(['a', 'b'], undefined)).toEqual(['a b']);
  });
});

describe('renderTable', () => {
  const head = ['shard', 'owner', 'member', 'token'];
  const rows = [0, 1, 2].map((i) => [
    String(i),
    `billing-sync-7d9f8b6c5d-x2x7q-${i}:7079`,
    'fWDYOxVj',
    `${TOKEN.slice(0, -1)}${i}`,
  ]);

  it('prints every cell in full when there is no width (a pipe)', () => {
    const text = renderTable(head, rows, { flexible: { 1: 'middle' } });
    for (const row of rows) for (const cell of row) expect(text).toContain(cell);
  });

  it('on a narrow terminal shortens the flexible column, never a token, and no line is wider', () => {
    for (const width of [50, 56, 60, 80]) {
      const text = renderTable(head, rows, { width, flexible: { 1: 'middle' } });
      for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(width);
      for (const row of rows) expect(text).toContain(row[3]);
      // Every number printed is a whole number of some cell.
      const whole = new Set(rows.flatMap((r) => r.flatMap(digitRuns)));
      for (const run of digitRuns(text)) expect(whole).toContain(run);
      expect(text).toContain('7079'); // the middle "…" keeps the pid
    }
  });

  it('falls back to one block per row when even the fixed columns do not fit', () => {
    const text = renderTable(head, rows, { width: 30, flexible: { 1: 'middle' } });
    expect(text).not.toContain('┌');
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(30);
    for (const row of rows) expect(text).toMatch(new RegExp(`^token\\s+${row[3]}$`, 'm'));
  });
});

describe('renderJobs', () => {
  it('says why a page is empty instead of printing an empty table and "none"', () => {
    expect(renderJobs({ total: 0, jobs: [] }, { state: 'dead', offset: 0 })).toBe('no dead jobs');
    expect(renderJobs({ total: 0, jobs: [] }, { state: 'ready', offset: 0, handler: 'email', queue: 'mail' })).toBe(
      'no ready jobs of handler email in queue mail',
    );
    const past = renderJobs({ total: 3, jobs: [] }, { state: 'dead', offset: 50 });
    expect(past).toBe('no dead jobs at offset 50: there are 3 (offsets 0-2)');
    expect(past).not.toContain('none');
  });

  it('fits a page to an 80-column terminal without cutting a number', () => {
    const runAt = Date.UTC(2026, 11, 2, 12, 50, 10, 983);
    const jobs = [0, 1].map((i) => ({
      id: `10MBgQBqCeSM0tTqt-lD${i}`,
      handler: 'send-invoice-to-customer',
      queue: 'billing',
      key: undefined,
      args: { invoice: 123456789012 + i, customer: 'ada@example.com' },
      fails: 12,
      runAt,
      state: 'dead' as const,
      lastError: {
        name: 'Error',
        message: `payment provider rejected invoice ${123456789012 + i} with a long explanation`,
      },
    }));
    const text = renderJobs({ total: 2, jobs } as never, { state: 'dead', offset: 0, width: 80 });
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(text).toContain(new Date(runAt).toISOString());
    for (const run of digitRuns(text))
      expect(run.length === 12 ? ['123456789012', '123456789013'] : [run]).toContain(run);
    expect(text).toContain('1-2 of 2');
  });
});

describe('renderStats', () => {
  it('shows live consumers per handler and flags waiting jobs that no consumer will run', () => {
    const stats = {
      total: counts({ ready: 3, scheduled: 2 }),
      queues: { default: counts({ ready: 3, scheduled: 2 }) },
      handlers: {
        email: { ...counts({ ready: 1 }), paused: false, consumers: 2 },
        report: { ...counts({ ready: 2, scheduled: 2 }), paused: false, consumers: 0 },
        idle: { ...counts({ dead: 4 }), paused: false, consumers: 0 },
        legacy: { ...counts(), paused: true },
      },
    };
    expect(waitingWithoutConsumer(stats.handlers.report)).toBe(4);
    expect(waitingWithoutConsumer(stats.handlers.idle)).toBe(0); // dead jobs wait for nobody
    expect(waitingWithoutConsumer(stats.handlers.legacy)).toBe(0); // unknown is no alarm
    const text = renderStats(stats);
    expect(text).toMatch(/│ email\s+│.*│ no\s+│ 2\s+│/);
    expect(text).toMatch(/│ report\s+│.*│ no\s+│ 0 \(!\)\s+│/);
    expect(text).toMatch(/│ idle\s+│.*│ 0\s+│/);
    expect(text).toMatch(/│ legacy\s+│.*│ yes\s+│ -\s+│/);
    expect(text).toContain(
      '(!) report: 4 jobs waiting, and no live consumer registers this handler: its jobs will wait until a process that registers "report" starts.',
    );
    expect(text).not.toMatch(/\(!\) (email|idle|legacy)/);
    const narrow = renderStats(stats, 60);
    for (const line of narrow.split('\n')) expect(line.length).toBeLessThanOrEqual(60);
  });

  it('says the store is empty instead of a table of zeros', () => {
    const text = renderStats({ total: counts(), queues: {}, handlers: {} });
    expect(text).toMatch(/^no jobs in the store/);
  });
});

describe('renderService and health', () => {
  const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
  const member = {
    id: 'fWDYOxVjAbCd',
    host: 'web-0',
    pid: 7079,
    startedAt: NOW - 1000,
    weight: 1,
    labels: {},
    joinSeq: 1,
  };
  const running = describeSnapshot(
    'orders',
    {
      revision: '17',
      shardCount: 2,
      members: [member],
      claims: [{ shard: 0, owner: member.id, token: 5 }],
      invalid: [],
    },
    NOW,
  );
  const stopped = describeSnapshot(
    'billing',
    { revision: '18', shardCount: 4, members: [], claims: [], invalid: [] },
    NOW,
  );

  it('derives the health as core does: degraded while it runs with unowned shards, stopped without member or claim', () => {
    expect(running).toMatchObject({ health: 'degraded', degraded: true, unowned: [1] });
    expect(stopped).toMatchObject({ health: 'stopped', degraded: false, unowned: [0, 1, 2, 3] });
    const absent = describeSnapshot('x', {
      revision: '0',
      shardCount: undefined,
      members: [],
      claims: [],
      invalid: [],
    });
    expect(absent.health).toBe('absent');
  });

  it('prints a stopped service as stopped: no DEGRADED, no tables of unowned shards, how to forget it', () => {
    const text = renderService(stopped);
    expect(text).toBe(
      'service billing  shards 4  owned 0  members 0  revision 18  stopped\n' +
        '  stopped: no live member and no claim, every replica stopped; the backend keeps its records (4 shards). If it is gone for good: shardwork services forget billing',
    );
    const narrow = renderService(stopped, false, 40);
    for (const line of narrow.split('\n')) expect(line.length).toBeLessThanOrEqual(40);
    expect(narrow).toContain('  shardwork services forget billing');
    expect(renderService(running)).toContain('DEGRADED: 1 unowned');
  });

  it('reports a change of health as a watch event', () => {
    const before = describeSnapshot(
      'billing',
      {
        revision: '1',
        shardCount: 1,
        members: [member],
        claims: [{ shard: 0, owner: member.id, token: 9 }],
        invalid: [],
      },
      NOW,
    );
    const after = describeSnapshot(
      'billing',
      { revision: '2', shardCount: 1, members: [], claims: [], invalid: [] },
      NOW,
    );
    expect(diff(before, after, 'T').map((e) => e.type)).toEqual(['member:left', 'shard:moved', 'service:health']);
    expect(diff(before, after, 'T').at(-1)).toEqual({
      type: 'service:health',
      at: 'T',
      service: 'billing',
      from: 'ok',
      to: 'stopped',
    });
  });
});
