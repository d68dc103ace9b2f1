/**
 * The message body of a job: its record, failed attempts so far, the last
 * error, and for a dead job why it died. JSON, with the args spliced in as the
 * queue checked them (never serialised twice).
 *
 * @module
 */

import { HANDLER_NAME, type JobArgs, type JobErrorInfo, type JobRecord, QUEUE_NAME } from '@shardwork/jobs/adapter';

/** Version of the body layout. */
const VERSION = 1;

/** A job as it travels. */
export interface JobMessage {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly key: string | undefined;
  readonly args: JobArgs;
  /** The args as JSON, when the producer has it (a consumer serialises `args` only to publish the job again). */
  readonly argsJson?: string;
  readonly enqueuedAt: number;
  readonly runAt: number;
  /** Failed attempts so far. */
  readonly fails: number;
  readonly lastError: JobErrorInfo | undefined;
  /** The producer's OpenTelemetry span context (W3C `traceparent`). */
  readonly traceparent?: string | undefined;
}

/** The body of a fresh job. */
export function encodeRecord(record: JobRecord): Buffer {
  return encode(record);
}

/** A job to encode: a message, or a fresh record (no failed attempts, no error). */
export type Encodable = Omit<JobMessage, 'fails' | 'lastError'> & {
  readonly fails?: number;
  readonly lastError?: JobErrorInfo | undefined;
};

/** The body of a job, with `extra` fields (a dead job's reason) at the end. */
export function encode(job: Encodable, extra?: Record<string, unknown>): Buffer {
  const text =
    `{"v":${VERSION},"id":${JSON.stringify(job.id)},"handler":${JSON.stringify(job.handler)},` +
    `"queue":${JSON.stringify(job.queue)},` +
    (job.key === undefined ? '' : `"key":${JSON.stringify(job.key)},`) +
    `"enqueuedAt":${job.enqueuedAt},"runAt":${job.runAt},"fails":${job.fails ?? 0},` +
    (job.lastError === undefined ? '' : `"lastError":${JSON.stringify(job.lastError)},`) +
    (job.traceparent === undefined ? '' : `"traceparent":${JSON.stringify(job.traceparent)},`) +
    (extra === undefined
      ? ''
      : Object.entries(extra)
          .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`)
          .join('')) +
    `"args":${job.argsJson ?? JSON.stringify(job.args)}}`;
  return Buffer.from(text, 'utf8');
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Read a body (the client hands JSON bodies over parsed, anything else as a
 * Buffer or string). Returns the problem as a string for anything that is not
 * a job of ours, so that the consumer can move it to the dead queue and go on.
 */
export function decode(body: unknown): ReceivedJob | string {
  let value: unknown = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    try {
      value = JSON.parse(body.toString());
    } catch {
      return 'the body is not JSON';
    }
  }
  if (!isObject(value)) return 'the body is not a JSON object';
  if (value.v !== VERSION) return `unknown body version ${JSON.stringify(value.v)}`;
  const { id, handler, queue, key, args, enqueuedAt, runAt, fails, lastError, traceparent } = value;
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) return 'id is not a string';
  if (typeof handler !== 'string' || !HANDLER_NAME.test(handler)) return 'handler is not a handler name';
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) return 'queue is not a queue name';
  if (key !== undefined && (typeof key !== 'string' || key.length === 0)) return 'key is not a string';
  if (!isObject(args)) return 'args is not an object';
  if (!isTime(enqueuedAt) || !isTime(runAt)) return 'enqueuedAt or runAt is not a time';
  if (typeof fails !== 'number' || !Number.isSafeInteger(fails) || fails < 0) return 'fails is not a count';
  if (lastError !== undefined && (!isObject(lastError) || typeof lastError.message !== 'string')) {
    return 'lastError is not an error';
  }
  return new ReceivedJob(
    id,
    handler,
    queue,
    key as string | undefined,
    args as JobArgs,
    enqueuedAt,
    runAt,
    fails,
    lastError as JobErrorInfo | undefined,
    typeof traceparent === 'string' ? traceparent : undefined,
  );
}

/**
 * A job as a consumer read it: a {@link JobMessage} and the facade's
 * `RunnableJob` in one object of one shape (a consumer makes one per message).
 * `argsJson` is computed on demand: this adapter encodes from `args`.
 */
export class ReceivedJob implements JobMessage {
  readonly uniqueKey = undefined;
  /** Set by the consumer from the handler's registration. */
  ordered = false;

  constructor(
    readonly id: string,
    readonly handler: string,
    readonly queue: string,
    readonly key: string | undefined,
    readonly args: JobArgs,
    readonly enqueuedAt: number,
    readonly runAt: number,
    readonly fails: number,
    readonly lastError: JobErrorInfo | undefined,
    readonly traceparent: string | undefined = undefined,
  ) {}

  get argsJson(): string {
    return JSON.stringify(this.args);
  }

  /** The same job after one more failed attempt, due at `runAt`. */
  failed(error: JobErrorInfo, runAt: number): ReceivedJob {
    const next = new ReceivedJob(
      this.id,
      this.handler,
      this.queue,
      this.key,
      this.args,
      this.enqueuedAt,
      runAt,
      this.fails + 1,
      error,
      this.traceparent,
    );
    next.ordered = this.ordered;
    return next;
  }
}

/** A short, printable excerpt of a body that could not be read. */
export function excerpt(body: unknown): string {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : JSON.stringify(body);
  return (text ?? String(body)).slice(0, 2000);
}
