/**
 * Where shardwork's own messages go. Every message the library prints (an
 * error nobody listens for, a held-back claim, a failed stage without
 * `onError`, a retry, a refusal) goes through one {@link Logger}: by default
 * {@link consoleLogger} at level `warn`, or the application's logger, and then
 * nothing goes to the console.
 *
 * The shape is pino's: structured fields first, then the message
 * (`logger.warn({ service, shard, token, error }, 'message')`). A pino logger
 * and the console fit as they are; a winston logger takes the message first,
 * so wrap it: `{ warn: (fields, message) => w.warn(message, fields), … }`.
 * Fields use these names where they apply: `service`, `shard`, `token`,
 * `member`, `queue`, `partition`, `handler`, `jobId`, `attempt`, `error`;
 * `scope` is what the console's prefix names (`queue default`, `jobs`).
 *
 * @module
 */

import { InvalidOptionsError, reason } from './errors.js';

/** Structured fields of one log line (`service`, `shard`, `queue`, `jobId`, `error`, …). */
export type LogFields = Readonly<Record<string, unknown>>;

/** A logger: pino's shape (fields first), which the console fits too. */
export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

/** Levels, from the most to the least verbose; `silent` prints nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** Options of {@link consoleLogger}. */
export interface ConsoleLoggerOptions {
  /**
   * The least severe level printed.
   * @defaultValue `'warn'`
   */
  readonly level?: LogLevel;
}

/**
 * The default logger: one line per message on the console, at `level` and
 * above, prefixed with what it is about (`[shardwork billing-sync]`,
 * `[shardwork jobs default]`). Other fields are not printed: the message says
 * what a reader needs; a structured logger gets them all.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const level = options.level ?? 'warn';
  if (!(level in RANK)) throw new InvalidOptionsError('level', level, `one of ${Object.keys(RANK).join(', ')}`);
  const min = RANK[level];
  const line =
    (at: Exclude<LogLevel, 'silent'>, print: (text: string) => void) =>
    (fields: LogFields, message: string): void => {
      if (RANK[at] < min) return;
      print(`${prefix(fields)} ${message}`);
    };
  return {
    debug: line('debug', (text) => console.debug(text)),
    info: line('info', (text) => console.info(text)),
    warn: line('warn', (text) => console.warn(text)),
    error: line('error', (text) => console.error(text)),
  };
}

/** `[shardwork <scope>]`: the `scope` field, else the job queue, else the service. */
function prefix(fields: LogFields): string {
  if (typeof fields.scope === 'string') return `[shardwork ${fields.scope}]`;
  if (typeof fields.queue === 'string') return `[shardwork jobs ${fields.queue}]`;
  if (typeof fields.service === 'string') return `[shardwork ${fields.service}]`;
  return '[shardwork]';
}

/** A logger that prints nothing (tests, or a process that reports through events only). */
export const silentLogger: Logger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});

/**
 * Check a `logger` option: an object with the four methods, or `undefined`
 * for the default ({@link consoleLogger} at `warn`). A logger that throws is
 * never allowed to break the caller: each call is guarded.
 */
export function compileLogger(value: unknown, option = 'logger'): Logger {
  if (value === undefined) return consoleLogger();
  const methods = ['debug', 'info', 'warn', 'error'] as const;
  if (typeof value !== 'object' || value === null || methods.some((m) => typeof (value as Logger)[m] !== 'function')) {
    throw new InvalidOptionsError(option, value, 'a logger with debug, info, warn and error methods (pino, console)');
  }
  const logger = value as Logger;
  const guarded =
    (m: (typeof methods)[number]) =>
    (fields: LogFields, message: string): void => {
      try {
        logger[m](fields, message);
      } catch (error) {
        // The application's logger failed: the console is the last place left to say so.
        console.error(`[shardwork] the logger's ${m}() threw: ${reason(error)}; the message was: ${message}`);
      }
    };
  return { debug: guarded('debug'), info: guarded('info'), warn: guarded('warn'), error: guarded('error') };
}
