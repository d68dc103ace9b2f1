/**
 * Reading job records back: what a consumer fetched is checked before it runs,
 * so a garbage record (written by hand, by another program, or truncated) goes
 * to the dead set with a reason instead of crashing or stalling the consumer.
 *
 * @module
 */

import type { JobArgs, JobRecord } from '@shardwork/jobs/adapter';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The record of `raw`, or what is wrong with it. */
export function recordJson(raw: string, id: string, handler: string, queue: string): JobRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return `not JSON: ${raw.slice(0, 80)}`;
  }
  if (!isObject(value)) return 'not a JSON object';
  const { args, key, enqueuedAt, runAt, uniqueKey, ordered, traceparent, priority } = value;
  if (value.id !== id) return `its id ${JSON.stringify(value.id)} is not ${id}`;
  if (value.handler !== handler) return `its handler ${JSON.stringify(value.handler)} is not ${handler}`;
  if (value.queue !== queue) return `its queue ${JSON.stringify(value.queue)} is not ${queue}`;
  if (!isObject(args)) return 'its args are not an object';
  if (key !== null && key !== undefined && typeof key !== 'string') return 'its key is not a string';
  if (typeof enqueuedAt !== 'number' || typeof runAt !== 'number') return 'its times are not numbers';
  return {
    id,
    handler,
    queue,
    key: typeof key === 'string' ? key : undefined,
    args: args as JobArgs,
    argsJson: '',
    enqueuedAt,
    runAt,
    uniqueKey: typeof uniqueKey === 'string' ? uniqueKey : undefined,
    ordered: ordered === true,
    ...(typeof traceparent === 'string' ? { traceparent } : {}),
    ...(typeof priority === 'number' ? { priority } : {}),
  };
}

/** Handler, key and args of a stored record, as far as they can be read (for events about it). */
export function recordArgs(raw: string | undefined): { handler?: string; key?: string; args?: JobArgs } | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    const value = JSON.parse(raw) as Record<string, unknown>;
    return {
      ...(typeof value.handler === 'string' ? { handler: value.handler } : {}),
      ...(typeof value.key === 'string' ? { key: value.key } : {}),
      ...(isObject(value.args) ? { args: value.args as JobArgs } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The 8 per-job fields of `enqueue.lua` and `cron.lua`. */
export function enqueueFields(record: JobRecord, partition: number): (string | number)[] {
  return [
    record.id,
    record.handler,
    partition,
    record.runAt,
    record.uniqueKey ?? '',
    `${record.ordered ? 'o' : ''}${record.idGiven === true ? 'g' : ''}${record.priority === undefined ? '' : `r${record.priority}`}`,
    record.key ?? '',
    serializeRecord(record),
  ];
}

/**
 * The stored JSON of a record: args spliced in as checked (not serialised
 * again), fields at their defaults (no key, not unique, not ordered) left out.
 */
export function serializeRecord(record: JobRecord): string {
  return (
    `{"id":${JSON.stringify(record.id)},"handler":${JSON.stringify(record.handler)},` +
    `"queue":${JSON.stringify(record.queue)},` +
    (record.key === undefined ? '' : `"key":${JSON.stringify(record.key)},`) +
    (record.uniqueKey === undefined ? '' : `"uniqueKey":${JSON.stringify(record.uniqueKey)},`) +
    (record.ordered ? '"ordered":true,' : '') +
    (record.traceparent === undefined ? '' : `"traceparent":${JSON.stringify(record.traceparent)},`) +
    (record.priority === undefined ? '' : `"priority":${record.priority},`) +
    `"enqueuedAt":${record.enqueuedAt},"runAt":${record.runAt},"args":${record.argsJson}}`
  );
}
