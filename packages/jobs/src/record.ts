/**
 * A job's record: a job as `perform*` takes it, checked field by field (an
 * unknown field, a bad id, handler, queue or key, args that are not plain
 * JSON or too large, a unique key function that throws) and turned into the
 * {@link JobRecord} an adapter stores. Every error names the path of what is
 * wrong (`jobs[2].args.when`).
 *
 * @module
 */

import { errorMessage } from '@shardwork/core';
import { nanoid } from 'nanoid';
import { checkArgs, type JobArgs } from './args.js';
import { InvalidJobError } from './errors.js';
import type { JobRecord } from './job.js';
import { type CompiledRegistration, HANDLER_NAME, MAX_KEY_LENGTH, QUEUE_NAME } from './options.js';

/** What building a record reads from its queue. */
export interface RecordContext {
  /** Registrations (for a job's queue, unique key and ordering). */
  readonly handlers: ReadonlyMap<string, CompiledRegistration>;
  readonly maxArgsBytes: number;
}

/** A job's options (`perform(job, options)`, or the fields of a bulk job), unchecked. */
export interface RawJobOptions {
  readonly id?: unknown;
  readonly priority?: unknown;
}

/**
 * Check a job and build its record. Throws `InvalidJobError` (or an args
 * error) naming `path`: `job`, `jobs[3]`, `<periodic>.job`; errors in
 * `options` name `optionsPath` (`options.id`, `jobs[3].priority`).
 */
export function buildRecord(
  ctx: RecordContext,
  job: unknown,
  runAt: number,
  path: string,
  now: number,
  options: RawJobOptions = {},
  optionsPath = path,
): JobRecord {
  const { id, priority } = options;
  if (id !== undefined && (typeof id !== 'string' || !JOB_ID.test(id))) {
    throw new InvalidJobError(
      `${optionsPath}.id`,
      `must be 1–200 printable ASCII characters without spaces (got ${JSON.stringify(id) ?? String(id)})`,
    );
  }
  if (
    priority !== undefined &&
    (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 1 || priority > 100_000)
  ) {
    throw new InvalidJobError(
      `${optionsPath}.priority`,
      `must be an integer from 1 to 100000 (got ${JSON.stringify(priority) ?? String(priority)}); leave it out for the handler's`,
    );
  }
  if (typeof job !== 'object' || job === null)
    throw new InvalidJobError(path, 'must be an object { handler, args?, queue?, key? }');
  const bulk = path.startsWith('jobs[');
  for (const field of Object.keys(job)) {
    if (JOB_FIELDS.has(field) || (bulk && BULK_FIELDS.has(field))) continue;
    throw new InvalidJobError(
      `${path}.${field}`,
      `is not a job field (a job has ${bulk ? 'handler, args, queue, key, at, id and priority' : 'handler, args, queue and key'})${
        field === 'id' || field === 'priority' ? `; give it as an option: perform(job, { ${field} })` : ''
      }`,
    );
  }
  const { handler, queue, key, args } = job as { handler?: unknown; queue?: unknown; key?: unknown; args?: unknown };
  checkHandlerName(handler, `${path}.handler`);
  const reg = ctx.handlers.get(handler);
  const queueName = queue ?? reg?.queue ?? 'default';
  if (typeof queueName !== 'string' || !QUEUE_NAME.test(queueName)) {
    throw new InvalidJobError(
      `${path}.queue`,
      `must be 1–100 letters, digits, "_", "." or "-" (got ${JSON.stringify(queueName)})`,
    );
  }
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH)) {
    throw new InvalidJobError(`${path}.key`, `must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  }
  const argsJson = checkArgs(args ?? {}, ctx.maxArgsBytes, `${path === 'job' ? '' : `${path}.`}args`);
  const copy = JSON.parse(argsJson) as JobArgs;
  let uniqueKey: string | undefined;
  if (reg?.uniqueKey !== undefined) {
    let value: unknown;
    try {
      value = reg.uniqueKey(copy);
    } catch (error) {
      throw new InvalidJobError(
        `${path}.args`,
        `made the unique key function of "${handler}" throw: ${errorMessage(error)}`,
      );
    }
    if (typeof value !== 'string' || value.length === 0) {
      throw new InvalidJobError(`${path}.args`, `gave a unique key that is not a non-empty string (${String(value)})`);
    }
    uniqueKey = `${handler}:${value}`;
  }
  return {
    id: id ?? nanoid(),
    ...(id === undefined ? {} : { idGiven: true }),
    handler,
    queue: queueName,
    key: key as string | undefined,
    args: copy,
    argsJson,
    enqueuedAt: now,
    runAt: Math.max(runAt, now),
    uniqueKey,
    ordered: reg?.ordered ?? false,
    ...(priority === undefined ? {} : { priority: priority as number }),
  };
}

/** Refuse anything but a handler name, naming `path`. */
export function checkHandlerName(name: unknown, path: string): asserts name is string {
  if (typeof name !== 'string' || !HANDLER_NAME.test(name)) {
    throw new InvalidJobError(
      path,
      `must be a handler name of 1–100 letters, digits, "_", ".", ":" or "-" (got ${JSON.stringify(name) ?? String(name)})`,
    );
  }
}

/** Refuse anything but a queue name, naming `path`. */
export function checkQueueName(name: unknown, path: string): asserts name is string {
  if (typeof name !== 'string' || !QUEUE_NAME.test(name)) {
    throw new InvalidJobError(
      path,
      `must be a queue name of 1–100 letters, digits, "_", "." or "-" (got ${JSON.stringify(name) ?? String(name)})`,
    );
  }
}

/** The fields of a {@link Job}; anything else is refused, never ignored. */
const JOB_FIELDS = new Set(['handler', 'args', 'queue', 'key']);
/** What a job of `performMany` has besides {@link JOB_FIELDS}. */
const BULK_FIELDS = new Set(['at', 'id', 'priority']);

/** A caller-chosen job id: printable ASCII without spaces, so it is safe in keys, URLs and logs. */
const JOB_ID = /^[\x21-\x7e]{1,200}$/;

/** A due time from a `Date` or ms since the epoch, naming `path` when it is neither. */
export function dueTime(at: unknown, path: string): number {
  const ms = at instanceof Date ? at.getTime() : at;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new InvalidJobError(path, `must be a valid Date or a number of ms since the epoch (got ${String(at)})`);
  }
  return ms;
}
