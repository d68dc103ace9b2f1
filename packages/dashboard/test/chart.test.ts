import type { CountedState, QueueThroughput } from '@shardwork/jobs';
import { describe, expect, it } from 'vitest';
import { barHeights, CHART_COLOURS, throughputChart, throughputSection } from '../src/chart.js';
import { queuesFragment } from '../src/html.js';
import type { QueueRow, QueuesView } from '../src/index.js';
import { lastFullMinute } from '../src/throughput.js';

const NOW = Date.UTC(2026, 11, 7, 17, 0, 30);
const MINUTE = 60_000;
const START = Math.floor(NOW / MINUTE) * MINUTE - 59 * MINUTE;

/** 60 points, oldest first; `counts[i]` is [completed, failed] of minute i (zeros elsewhere). */
function series(queue: string, counts: Record<number, [number, number]> = {}, minutes = 60): QueueThroughput {
  return {
    queue,
    points: Array.from({ length: minutes }, (_, i) => ({
      at: START + i * MINUTE,
      completed: counts[i]?.[0] ?? 0,
      failed: counts[i]?.[1] ?? 0,
    })),
  };
}

interface Rect {
  readonly cls: string;
  readonly count: number;
  readonly x: number;
  readonly y: number;
  readonly height: number;
  readonly fill: string;
}

function rects(svg: string): Rect[] {
  return [
    ...svg.matchAll(
      /<rect class="(\w+)" data-count="(\d+)" x="([\d.]+)" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="([^"]+)"\/>/g,
    ),
  ].map((m) => ({
    cls: m[1] ?? '',
    count: Number(m[2]),
    x: Number(m[3]),
    y: Number(m[4]),
    height: Number(m[5]),
    fill: m[6] ?? '',
  }));
}

/** The plot's baseline and top (the max line) in the SVG's units, read from the drawing itself. */
function plot(svg: string): { top: number; bottom: number } {
  const lines = [...svg.matchAll(/<line x1="[\d.]+" y1="([\d.]+)"/g)].map((m) => Number(m[1]));
  return { top: Math.min(...lines), bottom: Math.max(...lines) };
}

describe('throughput chart (SVG)', () => {
  it('scales the busiest minute to the max line, stacks failed on completed, and labels the max', () => {
    const svg = throughputChart(series('default', { 10: [2, 3], 40: [7, 3], 59: [5, 0] }), 'tp-0');
    const { top, bottom } = plot(svg);
    expect(bottom - top).toBeGreaterThan(50);
    expect(svg).toContain('data-max="10"');
    expect(svg).toContain('>max 10/min</text>');
    expect(svg).toContain('data-completed="14" data-failed="6"');

    const drawn = rects(svg);
    expect(drawn.map((r) => `${r.cls}:${r.count}`)).toEqual([
      'completed:2',
      'failed:3',
      'completed:7',
      'failed:3',
      'completed:5',
    ]);
    const h = bottom - top;
    const [c10, f10, c40, f40, c59] = drawn as [Rect, Rect, Rect, Rect, Rect];
    // The busiest minute (7 + 3) reaches the max line exactly; the others in proportion.
    expect(c40.y + c40.height).toBeCloseTo(bottom, 1);
    expect(f40.y).toBeCloseTo(top, 1);
    expect(c40.height).toBeCloseTo((h * 7) / 10, 1);
    expect(f40.height).toBeCloseTo((h * 3) / 10, 1);
    expect(c59.height).toBeCloseTo(h / 2, 1);
    expect(c10.height + f10.height).toBeCloseTo(h / 2, 1);
    // Failed sits on top of completed, in its own colour.
    expect(f10.y + f10.height).toBeCloseTo(c10.y, 1);
    expect(f10.fill).toBe(CHART_COLOURS.failed);
    expect(c10.fill).toBe(CHART_COLOURS.completed);
    expect(CHART_COLOURS.failed).not.toBe(CHART_COLOURS.completed);
    // Oldest on the left: minute 10 left of minute 40 left of minute 59, the newest at the right edge.
    expect(c10.x).toBeLessThan(c40.x);
    expect(c40.x).toBeLessThan(c59.x);
    expect(c59.x).toBeGreaterThan(300);
  });

  it('keeps a lone failure visible beside many completions, without rising above the max line', () => {
    const scale = 86 / 1000;
    const h = barHeights({ at: 0, completed: 999, failed: 1 }, scale);
    expect(h.failed).toBe(1);
    expect(h.completed + h.failed).toBeLessThanOrEqual(86 + 1e-9);
    expect(barHeights({ at: 0, completed: 0, failed: 0 }, scale)).toEqual({ completed: 0, failed: 0 });
    const svg = throughputChart(series('q', { 0: [999, 1], 1: [0, 1] }), 'x');
    const failed = rects(svg).filter((r) => r.cls === 'failed');
    expect(failed.map((r) => r.height)).toEqual([1, 1]);
  });

  it('labels time from −60 min to now, and carries an accessible title and description', () => {
    const svg = throughputChart(series('default', { 59: [4, 1] }), 'tp-3');
    expect(svg).toContain('>−60 min</text>');
    expect(svg).toContain('>−30 min</text>');
    expect(svg).toContain('>now</text>');
    expect(svg).toMatch(/^<svg [^>]*role="img" aria-labelledby="tp-3-title" aria-describedby="tp-3-desc"/);
    expect(svg).toContain(
      '<title id="tp-3-title">Queue default: completed and failed attempts per minute, last 60 minutes</title>',
    );
    expect(svg).toContain(
      '<desc id="tp-3-desc">4 completed and 1 failed attempts in the last 60 minutes; at most 5 in one minute.</desc>',
    );
    // Each bar says its minute and counts on hover.
    expect(svg).toContain('<title>17:00 UTC: 4 completed, 1 failed</title>');
    // A shorter window is labelled as what it is.
    expect(throughputChart(series('q', {}, 10), 'y')).toContain('>−10 min</text>');
  });

  it('draws no bar and says so when nothing was counted (max 0), with or without points', () => {
    for (const s of [series('idle'), { queue: 'idle', points: [] }]) {
      const svg = throughputChart(s, 'z');
      expect(rects(svg)).toEqual([]);
      expect(svg).not.toContain('<g class="bar"');
      expect(svg).toContain('data-max="0"');
      expect(svg).toContain('>max 0/min</text>');
      expect(svg).toContain('>no completed or failed attempts</text>');
      expect(svg).toContain('>−60 min</text>');
      expect(svg).not.toMatch(/NaN|Infinity/);
    }
  });

  it('escapes the queue name everywhere it appears', () => {
    const name = `<b>"q"&'x'</b>`;
    const html = throughputSection({ kind: 'counted', series: [series(name, { 59: [1, 0] })] }, [name]);
    expect(html).not.toContain('<b>');
    expect(html).toContain('data-queue="&lt;b&gt;&quot;q&quot;&amp;&#39;x&#39;&lt;/b&gt;"');
    expect(html).toContain('<title id="tp-0-title">Queue &lt;b&gt;&quot;q&quot;&amp;&#39;x&#39;&lt;/b&gt;: ');
    expect(html).toContain('<figcaption>&lt;b&gt;&quot;q&quot;&amp;&#39;x&#39;&lt;/b&gt; <small>');
    const refused = throughputSection({ kind: 'unsupported', message: 'no <counts> & "no" chart' }, []);
    expect(refused).toContain('(no &lt;counts&gt; &amp; &quot;no&quot; chart)');
  });
});

describe('throughput section', () => {
  it('charts every queue of the table and every counted one, with unique ids and a legend', () => {
    const html = throughputSection({ kind: 'counted', series: [series('mail', { 59: [3, 1] })] }, ['billing', 'mail']);
    expect([...html.matchAll(/<figure class="tp-chart" data-queue="([^"]+)"/g)].map((m) => m[1])).toEqual([
      'billing',
      'mail',
    ]);
    expect(html).toContain('<figcaption>billing <small>0 completed, 0 failed</small>');
    expect(html).toContain('<figcaption>mail <small>3 completed, 1 failed</small>');
    const ids = [...html.matchAll(/<title id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(2);
    expect(html).toContain(`<span class="swatch" style="background:${CHART_COLOURS.completed}"></span>completed`);
    expect(html).toContain(`<span class="swatch" style="background:${CHART_COLOURS.failed}"></span>failed`);
  });

  it('is a short note where the backend refuses, and nothing before the first read', () => {
    const html = throughputSection({ kind: 'unsupported', message: 'The amqp job adapter does not support admin' }, [
      'mail',
    ]);
    expect(html).toContain('data-throughput="unsupported"');
    expect(html).toContain('No charts: this job backend keeps no per-minute counts');
    expect(html).not.toContain('<svg');
    expect(throughputSection(undefined, ['mail'])).toBe('');
  });
});

describe('the queues table with store-kept counts', () => {
  const zero: Record<CountedState, number> = { scheduled: 0, ready: 0, running: 0, retrying: 0, dead: 0 };
  const row = (name: string, extra: Partial<QueueRow> = {}): QueueRow => ({
    name,
    counts: zero,
    waitMs: undefined,
    throughput: 0.5,
    ...extra,
  });
  const view = (over: Partial<QueuesView>): QueuesView => ({
    configured: true,
    queues: [row('mail', { completedLastMinute: 12 })],
    handlers: [row('send', { paused: false, consumers: 1 })],
    total: zero,
    throughputKnown: true,
    readAt: NOW,
    problem: undefined,
    ...over,
  });
  const ctx = { csrf: 't', readOnly: false, back: '/queues' };
  const queueRow = (html: string): string => /<tr data-queue="mail">[\s\S]*?<\/tr>/.exec(html)?.[0] ?? '';

  it("shows the last full minute's completions from the store in the queue column, and the chart", () => {
    const html = queuesFragment(
      view({ storeThroughput: { kind: 'counted', series: [series('mail', { 58: [12, 0] })] } }),
      ctx,
      NOW,
    );
    expect(queueRow(html)).toContain('<td class="num" data-completed-last-minute="12">12/min</td>');
    expect(queueRow(html)).not.toContain('0.5/s');
    expect(html).toContain('attempts completed in the last full minute, counted in the job store by every consumer');
    expect(html).toContain('<figure class="tp-chart" data-queue="mail">');
  });

  it("keeps this process's column where the store cannot count (and says why there is no chart)", () => {
    const html = queuesFragment(view({ storeThroughput: { kind: 'unsupported', message: 'nope' } }), ctx, NOW);
    expect(queueRow(html)).toContain('<td class="num">0.5/s</td>');
    expect(html).not.toContain('data-completed-last-minute');
    expect(html).toContain('completed: jobs finished by this process over the last 10 s.');
    expect(html).toContain('No charts: this job backend keeps no per-minute counts (nope).');
  });

  it('takes the minute before the newest, which is still being counted', () => {
    expect(lastFullMinute(series('q', { 58: [4, 2], 59: [9, 0] }))).toBe(4);
    expect(lastFullMinute(series('q', {}, 1))).toBeUndefined();
    expect(lastFullMinute(undefined)).toBeUndefined();
  });
});
