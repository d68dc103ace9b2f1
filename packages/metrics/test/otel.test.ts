import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MemoryStore } from '@shardwork/core';
import { createJobQueue } from '@shardwork/jobs';
import { ShardworkMetrics } from '@shardwork/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { service, value, waitFor, worker } from './support.js';

/** A reader that collects on demand. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

type Point = { attributes: Record<string, unknown>; value: unknown };

async function points(reader: TestReader, name: string): Promise<Point[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return find(resourceMetrics, name);
}

function find(rm: ResourceMetrics, name: string): Point[] {
  for (const scope of rm.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name === name) return metric.dataPoints as Point[];
    }
  }
  return [];
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('OpenTelemetry sink', () => {
  it('records the same bindings to a meter as to Prometheus', async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    cleanups.push(() => provider.shutdown());
    const metrics = new ShardworkMetrics({ meter: provider.getMeter('shardwork-test') });
    const name = service('otel');
    const w = worker(new MemoryStore(), name, 3);
    cleanups.push(() => w.worker.stop());
    metrics.instrumentWorker(w.worker);
    const jobs = createJobQueue('memory://');
    cleanups.push(() => jobs.stop());
    metrics.instrumentJobs(jobs);
    jobs.register('ok', async () => undefined);

    await w.worker.start();
    await waitFor(() => w.worker.status().shards.length === 3);
    await jobs.start();
    await jobs.perform({ handler: 'ok', args: {} });
    await waitFor(() => jobs.status().counts.completed === 1);

    const acquired = await points(reader, 'shardwork_shard_acquisitions');
    expect(acquired).toEqual([{ ...acquired[0], attributes: { service: name, reason: 'vacant' }, value: 3 }]);
    const owned = await points(reader, 'shardwork_shards_owned');
    expect(owned.map((p) => [p.attributes, p.value])).toEqual([[{ service: name }, 3]]);
    const done = await points(reader, 'shardwork_jobs');
    expect(done.map((p) => [p.attributes, p.value])).toEqual([
      [{ queue: 'default', handler: 'ok', outcome: 'completed' }, 1],
    ]);
    const [duration] = await points(reader, 'shardwork_job_duration_seconds');
    if (duration === undefined) throw new Error('no job duration recorded');
    const histogram = duration.value as { count: number; buckets: { boundaries: number[] } };
    expect(histogram.count).toBe(1);
    // The buckets are the package's (1 ms … 5 min), given as advice.
    expect(histogram.buckets.boundaries.at(-1)).toBe(300);
    // Prometheus got the same.
    expect(await value(metrics.registry, 'shardwork_shard_acquisitions_total', { reason: 'vacant' })).toBe(3);
  });
});
