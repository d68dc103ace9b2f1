/**
 * Summary statistics of the benchmark samples.
 *
 * @module
 */

/** Median, p99 and friends of one series of samples. */
export interface Summary {
  readonly n: number;
  readonly median: number;
  /** Nearest-rank p99: with fewer than 100 samples it is the maximum. */
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

/** Summarise samples; `undefined` when there are none. */
export function summarize(samples: readonly number[]): Summary | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const at = (i: number): number => sorted[Math.min(n - 1, Math.max(0, i))] as number;
  const median = n % 2 === 1 ? at((n - 1) / 2) : (at(n / 2 - 1) + at(n / 2)) / 2;
  return {
    n,
    median,
    p99: at(Math.ceil(0.99 * n) - 1),
    min: at(0),
    max: at(n - 1),
    mean: sorted.reduce((a, b) => a + b, 0) / n,
  };
}

/** A number of milliseconds for a table cell: one decimal below 100, none above. */
export function ms(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  return x < 100 ? x.toFixed(1) : x.toFixed(0);
}

/** A plain number with `digits` decimals, or a dash. */
export function num(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  return x.toFixed(digits);
}

/** A GitHub-flavoured markdown table. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [line(header), line(align), ...rows.map(line)].join('\n');
}
