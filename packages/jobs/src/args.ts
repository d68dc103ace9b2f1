/**
 * Job args are plain JSON data: what goes in comes out of every adapter
 * unchanged. {@link checkArgs} refuses anything JSON would change or lose (a
 * `Date` that turns into a string, a `BigInt` that throws, `NaN` that turns
 * into `null`, a class instance that loses its prototype, a cycle), naming the
 * path, and args over the size limit.
 *
 * @module
 */

import { InvalidJobArgsError, JobArgsTooLargeError } from './errors.js';

/** A JSON value. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Args of a job: a JSON object (Buffalo's `worker.Args`, gocraft's `Q`). */
export type JobArgs = { readonly [key: string]: unknown };

/** Default of `maxArgsBytes`: 1 MiB of JSON. */
export const DEFAULT_MAX_ARGS_BYTES = 1024 * 1024;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function kindOf(value: object): string {
  const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return ctor === undefined || ctor === '' ? 'an object with a custom prototype' : `a ${ctor}`;
}

function checkValue(value: unknown, path: string, ancestors: object[]): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidJobArgsError(path, `is ${value}, which JSON turns into null`);
      return;
    case 'bigint':
      throw new InvalidJobArgsError(path, 'is a BigInt; pass it as a string');
    case 'function':
      throw new InvalidJobArgsError(path, 'is a function');
    case 'symbol':
      throw new InvalidJobArgsError(path, 'is a symbol');
    case 'undefined':
      throw new InvalidJobArgsError(path, 'is undefined, which JSON turns into null in an array');
    case 'object': {
      if (value === null) return;
      if (ancestors.includes(value)) throw new InvalidJobArgsError(path, 'refers back to an enclosing value (a cycle)');
      ancestors.push(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) throw new InvalidJobArgsError(child(path, i), 'is a hole in a sparse array');
          checkValue(value[i], child(path, i), ancestors);
        }
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          const hint = value instanceof Date ? '; pass date.toISOString() or a number of ms' : '';
          throw new InvalidJobArgsError(path, `is ${kindOf(value)}, not a plain object${hint}`);
        }
        for (const [key, v] of Object.entries(value)) {
          // An undefined property is simply absent after JSON, as it reads in the handler.
          if (v !== undefined) checkValue(v, child(path, key), ancestors);
        }
      }
      ancestors.pop();
      return;
    }
  }
}

/**
 * Check that `args` is a plain JSON object within `maxBytes`, and return its
 * JSON text. Throws {@link InvalidJobArgsError} or {@link JobArgsTooLargeError}
 * naming `path` (e.g. `args.user.createdAt`).
 */
export function checkArgs(args: unknown, maxBytes: number, path = 'args'): string {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new InvalidJobArgsError(
      path,
      `is ${args === null ? 'null' : Array.isArray(args) ? 'an array' : typeof args}, not an object of named args`,
    );
  }
  checkValue(args, path, []);
  const json = JSON.stringify(args);
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) {
    let largest: string | undefined;
    let largestBytes = 0;
    for (const [key, v] of Object.entries(args)) {
      const size = v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v));
      if (size > largestBytes) {
        largestBytes = size;
        largest = `${child(path, key)} (${size} bytes)`;
      }
    }
    throw new JobArgsTooLargeError(path, bytes, maxBytes, largest);
  }
  return json;
}

/**
 * The JSON text of a handler's result or a progress value (any JSON value,
 * `undefined` as `null`), or why it cannot be stored: `{ problem }` names the
 * offending path (e.g. `result.at is a Date, …`).
 */
export function valueJson(
  value: unknown,
  maxBytes: number,
  path: string,
): { readonly json: string } | { readonly problem: string } {
  if (value === undefined) return { json: 'null' };
  try {
    checkValue(value, path, []);
  } catch (error) {
    if (error instanceof InvalidJobArgsError) return { problem: `${error.path} ${problemOf(error)}` };
    throw error;
  }
  const json = JSON.stringify(value);
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) return { problem: `${path} is ${bytes} bytes of JSON, over the limit of ${maxBytes}` };
  return { json };
}

/** The problem part of an args error's message. */
function problemOf(error: InvalidJobArgsError): string {
  const text = error.message.slice(`Invalid job args: ${error.path} `.length);
  return text.replace(/; args must be plain JSON data$/, '');
}

/** JSON with object keys sorted, so equal args give equal text (unique keys). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
