import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobQueue } from '../src/index.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('OpenTelemetry (with @opentelemetry/api present)', () => {
  it("runs each attempt in a consumer span linked to the producer's span; a handler's spans nest in it", async () => {
    exporter.reset();
    const q = createJobQueue('memory://');
    const tracer = trace.getTracer('test');
    let attempts = 0;
    q.register(
      'report',
      async () => {
        attempts++;
        await tracer.startActiveSpan('query', async (span) => span.end());
        if (attempts === 1) throw new Error('first try fails');
        return 'ok';
      },
      { backoff: () => 10 },
    );
    await q.start();
    let producer: { traceId: string; spanId: string } | undefined;
    const id = await tracer.startActiveSpan('POST /reports', async (span) => {
      producer = span.spanContext();
      const { id } = await q.perform({ handler: 'report', args: { month: 11 } });
      span.end();
      return id;
    });
    expect(await q.waitFor(id, { timeoutMs: 5000 })).toBe('ok');
    await q.stop();
    const spans = exporter.getFinishedSpans();
    const runs = spans.filter((s) => s.name === 'report process');
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run.kind).toBe(SpanKind.CONSUMER);
      expect(run.links.map((l) => l.context.spanId)).toEqual([producer?.spanId]);
      expect(run.links[0]?.context.traceId).toBe(producer?.traceId);
      expect(run.attributes).toMatchObject({ 'messaging.message.id': id, 'messaging.destination.name': 'default' });
    }
    expect(runs.map((r) => r.attributes['shardwork.job.attempt'])).toEqual([1, 2]);
    expect(runs[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(runs[0]?.status.message).toBe('first try fails');
    expect(runs[1]?.status.code).not.toBe(SpanStatusCode.ERROR);
    const queries = spans.filter((s) => s.name === 'query');
    expect(queries.map((s) => s.parentSpanContext?.spanId).sort()).toEqual(
      runs.map((r) => r.spanContext().spanId).sort(),
    );
  });

  it('stores no traceparent and links nothing when the producer has no active span', async () => {
    exporter.reset();
    const q = createJobQueue('memory://');
    q.register('plain', () => 1);
    await q.start();
    const { id } = await q.perform({ handler: 'plain' });
    expect(await q.waitFor(id, { timeoutMs: 5000 })).toBe(1);
    await q.stop();
    const [run] = exporter.getFinishedSpans().filter((s) => s.name === 'plain process');
    expect(run?.links).toEqual([]);
  });
});
