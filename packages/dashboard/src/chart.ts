/**
 * The queues page's throughput charts: completed and failed attempts per
 * minute, one small chart per queue, drawn as inline SVG on the server (no
 * chart library, no script, nothing fetched: the CSP allows none of it).
 *
 * @module
 */

import type { QueueThroughput, ThroughputPoint } from '@shardwork/jobs';
import { esc } from './escape.js';
import { CHART_MINUTES, type StoreThroughput } from './throughput.js';

/**
 * Colours of the two series. Blue and red stay apart for the common colour
 * vision deficiencies too, which the dashboard's green and red would not.
 */
export const CHART_COLOURS = { completed: '#2563eb', failed: '#dc2626' } as const;

/** The SVG's own coordinate space (viewBox); CSS scales it to the column's width. */
const WIDTH = 360;
const HEIGHT = 128;
const PLOT = { left: 4, right: 356, top: 18, bottom: 104 } as const;
const PLOT_W = PLOT.right - PLOT.left;
const PLOT_H = PLOT.bottom - PLOT.top;
const MUTED = '#6b7280';

/** Two decimals are plenty for a 360-unit drawing, and keep the markup short. */
const fix = (n: number): string => String(Math.round(n * 100) / 100);

const minuteOf = (at: number): string => new Date(at).toISOString().slice(11, 16);

/**
 * Heights of a minute's completed and failed parts, stacked, at `scale` units
 * per attempt. A part that is not zero is at least 1 unit high, so one failure
 * beside a thousand completions is still seen; what that adds is taken off the
 * larger part, so no bar rises above the max line.
 */
export function barHeights(point: ThroughputPoint, scale: number): { completed: number; failed: number } {
  let completed = point.completed > 0 ? Math.max(1, point.completed * scale) : 0;
  let failed = point.failed > 0 ? Math.max(1, point.failed * scale) : 0;
  const excess = completed + failed - PLOT_H;
  if (excess > 0) {
    if (completed >= failed) completed -= excess;
    else failed -= excess;
  }
  return { completed, failed };
}

function bar(point: ThroughputPoint, x: number, width: number, scale: number): string {
  if (point.completed + point.failed === 0) return '';
  const h = barHeights(point, scale);
  const rect = (cls: 'completed' | 'failed', y: number, height: number, count: number): string =>
    height === 0
      ? ''
      : `<rect class="${cls}" data-count="${count}" x="${fix(x)}" y="${fix(y)}" width="${fix(width)}" height="${fix(height)}" fill="${CHART_COLOURS[cls]}"/>`;
  return `<g class="bar" data-at="${point.at}" data-completed="${point.completed}" data-failed="${point.failed}"><title>${minuteOf(point.at)} UTC: ${point.completed} completed, ${point.failed} failed</title>${rect('completed', PLOT.bottom - h.completed, h.completed, point.completed)}${rect('failed', PLOT.bottom - h.completed - h.failed, h.failed, point.failed)}</g>`;
}

/**
 * One queue's chart: a stacked bar per minute (completed below, failed on
 * top), oldest on the left, scaled so that the busiest minute reaches the
 * dashed max line, which is labelled with its count. Time runs from
 * "−60 min" to "now". `id` makes the `<title>`/`<desc>` ids unique on the page.
 */
export function throughputChart(series: QueueThroughput, id: string): string {
  const points = series.points;
  const minutes = points.length > 0 ? points.length : CHART_MINUTES;
  const max = points.reduce((m, p) => Math.max(m, p.completed + p.failed), 0);
  const completed = points.reduce((n, p) => n + p.completed, 0);
  const failed = points.reduce((n, p) => n + p.failed, 0);
  const slot = PLOT_W / minutes;
  // A 1-unit gap between bars while they are wide enough to spare it.
  const width = slot > 3 ? slot - 1 : slot;
  const scale = max === 0 ? 0 : PLOT_H / max;
  const bars = points.map((p, i) => bar(p, PLOT.left + i * slot, width, scale)).join('');
  const label = (x: number, anchor: 'start' | 'middle' | 'end', text: string): string =>
    `<text x="${fix(x)}" y="${HEIGHT - 8}" text-anchor="${anchor}" fill="${MUTED}">${text}</text>`;
  const empty =
    max === 0
      ? `<text class="empty" x="${WIDTH / 2}" y="${PLOT.top + PLOT_H / 2 + 4}" text-anchor="middle" fill="${MUTED}">no completed or failed attempts</text>`
      : '';
  const queue = esc(series.queue);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="tp" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-labelledby="${id}-title" aria-describedby="${id}-desc" data-queue="${queue}" data-max="${max}" data-completed="${completed}" data-failed="${failed}">
<title id="${id}-title">Queue ${queue}: completed and failed attempts per minute, last ${minutes} minutes</title>
<desc id="${id}-desc">${completed} completed and ${failed} failed attempts in the last ${minutes} minutes; at most ${max} in one minute.</desc>
<line x1="${PLOT.left}" y1="${PLOT.top}" x2="${PLOT.right}" y2="${PLOT.top}" stroke="#d1d5db" stroke-dasharray="3 3"/>
<text class="max" x="${PLOT.left}" y="${PLOT.top - 5}" fill="${MUTED}">max ${max}/min</text>
${bars}${empty}
<line x1="${PLOT.left}" y1="${PLOT.bottom}" x2="${PLOT.right}" y2="${PLOT.bottom}" stroke="#9ca3af"/>
${label(PLOT.left, 'start', `−${minutes} min`)}${label(PLOT.left + PLOT_W / 2, 'middle', `−${Math.round(minutes / 2)} min`)}${label(PLOT.right, 'end', 'now')}
</svg>`;
}

/** The legend: a swatch and a name per series. */
const legend = `<p class="tp-legend" aria-hidden="true"><span class="swatch" style="background:${CHART_COLOURS.completed}"></span>completed <span class="swatch" style="background:${CHART_COLOURS.failed}"></span>failed</p>`;

/**
 * The queues page's chart card: a chart per queue (those in `queues`, the
 * queue table's, and any other the store counted), or, where the job backend
 * keeps no counts, a short note saying so. Nothing before the first read.
 */
export function throughputSection(view: StoreThroughput | undefined, queues: readonly string[]): string {
  if (view === undefined) return '';
  if (view.kind === 'unsupported') {
    return `<section class="card" data-throughput="unsupported"><h2>Completed and failed per minute</h2><p class="muted">No charts: this job backend keeps no per-minute counts (${esc(view.message)}).</p></section>`;
  }
  const byQueue = new Map(view.series.map((s) => [s.queue, s]));
  const names = [...new Set([...queues, ...byQueue.keys()])].sort();
  if (names.length === 0) return '';
  const charts = names
    .map((name, i) => {
      const series = byQueue.get(name) ?? { queue: name, points: [] };
      const done = series.points.reduce((n, p) => n + p.completed, 0);
      const failed = series.points.reduce((n, p) => n + p.failed, 0);
      return `<figure class="tp-chart" data-queue="${esc(name)}"><figcaption>${esc(name)} <small>${done} completed, ${failed} failed</small></figcaption>${throughputChart(series, `tp-${i}`)}</figure>`;
    })
    .join('');
  return `<section class="card" data-throughput="counted"><h2>Completed and failed per minute <small>last ${CHART_MINUTES} min, counted in the job store by every consumer</small></h2>${legend}<div class="tp-grid">${charts}</div></section>`;
}
