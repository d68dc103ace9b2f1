/**
 * OpenTelemetry, when the application has `@opentelemetry/api` (an optional
 * peer): `perform` stores the producer's active span context with the job as a
 * W3C `traceparent`, and each attempt runs in a span of its own (kind
 * `CONSUMER`, named `<handler> process`) linked to it, so that a handler's own
 * spans nest under the attempt and a trace viewer leads from the producer to
 * every attempt. Without the package nothing is loaded and nothing costs: one
 * check per perform and per attempt.
 *
 * @module
 */

import type * as Otel from '@opentelemetry/api';
import type { AttemptOutcome } from './adapter.js';
import type { JobRecord } from './job.js';

/** The API once loaded; `null` when the package is absent. */
let api: typeof Otel | null | undefined;
let loading: Promise<void> | undefined;

/** Load `@opentelemetry/api` once, if the application has it. */
export function loadTracing(): Promise<void> {
  loading ??= import('@opentelemetry/api').then(
    (module) => {
      api = module;
    },
    () => {
      api = null;
    },
  );
  return loading;
}

/** The active span context as a W3C `traceparent`, or `undefined` (no API, no active span). */
export function activeTraceparent(): string | undefined {
  if (api === undefined || api === null) return undefined;
  const span = api.trace.getSpanContext(api.context.active());
  if (span === undefined || !api.isSpanContextValid(span)) return undefined;
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 1) === 1 ? '01' : '00'}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A span context from a stored `traceparent` (`undefined` for none or a malformed one). */
function linkedContext(traceparent: string | undefined): Otel.SpanContext | undefined {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  if (match === null) return undefined;
  return {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16),
    isRemote: true,
  };
}

/**
 * Run one attempt in a span linked to the job's `traceparent`; the span ends
 * with the outcome (an error status for a failure). Without the API, `run()`.
 */
export async function traced(
  job: JobRecord,
  attempt: number,
  run: () => Promise<AttemptOutcome>,
): Promise<AttemptOutcome> {
  if (api === undefined || api === null) return run();
  const otel = api;
  const link = linkedContext(job.traceparent);
  const span = otel.trace.getTracer('@shardwork/jobs').startSpan(`${job.handler} process`, {
    kind: otel.SpanKind.CONSUMER,
    links: link === undefined ? [] : [{ context: link }],
    attributes: {
      'messaging.system': 'shardwork',
      'messaging.operation.type': 'process',
      'messaging.destination.name': job.queue,
      'messaging.message.id': job.id,
      'shardwork.job.handler': job.handler,
      'shardwork.job.attempt': attempt,
      ...(job.key === undefined ? {} : { 'shardwork.job.key': job.key }),
    },
  });
  try {
    const outcome = await otel.context.with(otel.trace.setSpan(otel.context.active(), span), run);
    span.setAttribute('shardwork.job.outcome', outcome.type);
    if (outcome.type === 'retry' || outcome.type === 'dead') {
      const error = outcome.error;
      if (error instanceof Error) span.recordException(error);
      span.setStatus({
        code: otel.SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    return outcome;
  } finally {
    span.end();
  }
}
