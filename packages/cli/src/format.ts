/**
 * Small formatting helpers shared by the commands.
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

/** A table with the house style: bold-free head (colour is added by the caller), compact. */
export function table(head: string[]): Table.Table {
  // No colours inside the table: cli-table3 measures width on the raw string,
  // and pipes (tests, `| less`) should get plain text.
  return new Table({ head, style: { head: [], border: [], compact: true } });
}

/** Parse a non-negative integer option, naming it in the error. */
export function integer(name: string, value: string, min = 0): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new TypeError(`${name} must be an integer ≥ ${min} (got "${value}")`);
  }
  return n;
}
