/**
 * Small formatting helpers shared by the commands.
 *
 * A terminal wraps a line that is wider than itself at whatever column it
 * reaches, which cuts a 16-digit fencing token (or a pid, or a date) in two.
 * So on a terminal every table and long line is fitted to its width here:
 * text columns are shortened with "…", a line is broken only between words,
 * and a run of digits is never cut. In a pipe (no width) nothing is fitted.
 *
 * @module
 */

import Table from 'cli-table3';

/** `1234` -> `1.2s`, `90_000` -> `1m30s`, `undefined` -> `-`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(1)}s`;
  const s = Math.floor(abs / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${sign}${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** First 8 characters of a member id: long enough to tell members apart on screen. */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

/** Where {@link shorten} puts the "…": in the middle keeps both ends (`host…-x2x7q:7079`), at the end keeps the start. */
export type ShortenAt = 'middle' | 'end';

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
// biome-ignore lint/suspicious/noControlCharactersInRegex: colour escapes are what it removes
const ANSI = /\x1b\[[0-9;]*m/g;
/** Display width: colour escapes take no room, and our text is otherwise single-width (ASCII and "…"). */
const width = (text: string): number => [...text.replace(ANSI, '')].length;

/**
 * Shorten `text` to at most `max` columns with one "…", never cutting inside
 * a run of digits (a cut that would land in a number moves to its edge, so
 * the result may be shorter than `max`). In the middle, the end is kept
 * first: it tells similar names apart (a pod's suffix, the pid of
 * `host:pid`), and a number it ends in is kept whole when it fits.
 * Text that fits is returned as is.
 */
export function shorten(text: string, max: number, at: ShortenAt = 'end'): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  const keep = Math.max(0, max - 1);
  const cutsNumber = (i: number): boolean => isDigit(chars[i - 1]) && isDigit(chars[i]);
  let from = at === 'end' ? chars.length : chars.length - Math.floor(keep / 2);
  if (from < chars.length && cutsNumber(from)) {
    let start = from;
    while (start > 0 && isDigit(chars[start - 1])) start--;
    if (chars.length - start <= keep) from = start;
    else while (from < chars.length && isDigit(chars[from])) from++;
  }
  let head = keep - (chars.length - from);
  while (head > 0 && cutsNumber(head)) head--;
  return `${chars.slice(0, head).join('')}…${chars.slice(from).join('')}`;
}

/**
 * Join `words` with `separator` into lines of at most `max` columns, breaking
 * only between words (a word longer than a line gets a line of its own).
 * Without `max` (a pipe) everything stays on one line.
 */
export function wrapWords(words: readonly string[], max: number | undefined, separator = ' '): string[] {
  if (max === undefined) return [words.join(separator)];
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line === '') line = word;
    else if (width(line) + width(separator) + width(word) <= max) line += separator + word;
    else {
      lines.push(separator.trimEnd() === '' ? line : line + separator.trimEnd());
      line = word;
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines;
}

/** A line of text fitted to the terminal: broken between words, never inside one. */
export function fitLine(text: string, max: number | undefined): string {
  return max === undefined ? text : wrapWords(text.split(' '), max).join('\n');
}

/** How {@link renderTable} may fit a table to a terminal. */
export interface TableOptions {
  /** Terminal width in columns; `undefined` (a pipe) prints every cell in full. */
  readonly width?: number | undefined;
  /**
   * Columns (by index) whose text may be shortened to fit, and where the "…"
   * goes. The others (ids, numbers, tokens, dates) are never shortened.
   */
  readonly flexible?: Readonly<Record<number, ShortenAt>>;
}

/** Narrowest a shortened column gets: a few characters either side of the "…" still tell values apart. */
const MIN_FLEXIBLE = 8;

/** Columns a table of these widths takes: `│ a │ b │`, one space of padding each side. */
const tableWidth = (widths: readonly number[]): number => widths.reduce((sum, w) => sum + w + 3, 1);

function boxed(head: readonly string[], rows: readonly (readonly string[])[]): string {
  // No colours inside the table: cli-table3 measures width on the raw string,
  // and pipes (tests, `| less`) should get plain text.
  const t = new Table({ head: [...head], style: { head: [], border: [], compact: true } });
  for (const row of rows) t.push([...row]);
  return t.toString();
}

/**
 * Render a table in the house style (compact box, no colours). On a terminal
 * narrower than the table, the flexible columns are shortened (widest first,
 * down to {@link MIN_FLEXIBLE}); if it still does not fit, each row is printed
 * as a block of `name  value` lines instead, which fits any terminal that can
 * hold the longest value. Either way no number is cut and no line is left for
 * the terminal to wrap at an arbitrary column.
 */
export function renderTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  options: TableOptions = {},
): string {
  const max = options.width;
  const flexible = options.flexible ?? {};
  const natural = head.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  if (max === undefined || tableWidth(natural) <= max) return boxed(head, rows);

  const widths = [...natural];
  const floor = (i: number): number => Math.min(natural[i] ?? 0, Math.max(MIN_FLEXIBLE, width(head[i] ?? '')));
  const shrinkable = Object.keys(flexible).map(Number);
  while (tableWidth(widths) > max) {
    // One column at a time, the widest first, so that short columns keep their text longest.
    const widest = shrinkable
      .filter((i) => (widths[i] ?? 0) > floor(i))
      .sort((a, b) => (widths[b] ?? 0) - (widths[a] ?? 0))[0];
    if (widest === undefined) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  const fit = (row: readonly string[], w: (i: number) => number): string[] =>
    row.map((cell, i) => {
      const at = flexible[i];
      return at === undefined ? cell : shorten(cell, w(i), at);
    });
  if (tableWidth(widths) <= max)
    return boxed(
      head,
      rows.map((r) => fit(r, (i) => widths[i] ?? 0)),
    );

  // Too narrow for a table: one block per row, a label column and the value.
  const label = Math.max(...head.map(width));
  const room = Math.max(MIN_FLEXIBLE, max - label - 2);
  return rows
    .map((row) =>
      fit(row, () => room)
        .map((cell, i) => `${(head[i] ?? '').padEnd(label)}  ${cell}`)
        .join('\n'),
    )
    .join('\n\n');
}

/** Parse a non-negative integer option, naming it in the error. */
export function integer(name: string, value: string, min = 0): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new TypeError(`${name} must be an integer ≥ ${min} (got "${value}")`);
  }
  return n;
}
