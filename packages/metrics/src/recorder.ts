/**
 * The narrow sink the bindings write to: counters, histograms and gauges that
 * are read when scraped. One implementation writes to a prom-client
 * `Registry`, one to an OpenTelemetry `Meter`, and {@link fanout} joins them,
 * so that every event-to-metric binding is written once.
 *
 * @module
 */

import type { Meter } from '@opentelemetry/api';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Label values of one observation. */
export type Labels = Readonly<Record<string, string>>;

/** One value of a gauge with its labels. */
export interface Observation {
  readonly labels: Labels;
  readonly value: number;
}

/** What a metric is, independent of the sink. */
export interface MetricDef {
  /** Name without the prefix, in Prometheus form (`shard_acquisitions_total`). */
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];
  /** Unit for OpenTelemetry (`s`, `{shard}`); Prometheus carries it in the name. */
  readonly unit: string;
}

/** A histogram's definition: buckets in its base unit (seconds). */
export interface HistogramDef extends MetricDef {
  readonly buckets: readonly number[];
}

/** Adds to a counter. */
export type CounterFn = (labels: Labels, value?: number) => void;
/** Records one histogram value. */
export type HistogramFn = (labels: Labels, value: number) => void;
/** Reads a gauge's current values; may be slow (it is awaited at scrape time). */
export type GaugeReader = () => Promise<readonly Observation[]>;

/** A metrics sink. */
export interface Recorder {
  counter(def: MetricDef): CounterFn;
  histogram(def: HistogramDef): HistogramFn;
  gauge(def: MetricDef, read: GaugeReader): void;
}

/** A recorder writing into a prom-client registry under `prefix`. */
export function promRecorder(registry: Registry, prefix: string): Recorder {
  return {
    counter(def) {
      const metric = new Counter({
        name: prefix + def.name,
        help: def.help,
        labelNames: [...def.labels],
        registers: [registry],
      });
      return (labels, value = 1) => metric.inc(labels, value);
    },
    histogram(def) {
      const metric = new Histogram({
        name: prefix + def.name,
        help: def.help,
        labelNames: [...def.labels],
        buckets: [...def.buckets],
        registers: [registry],
      });
      return (labels, value) => metric.observe(labels, value);
    },
    gauge(def, read) {
      new Gauge({
        name: prefix + def.name,
        help: def.help,
        labelNames: [...def.labels],
        registers: [registry],
        // Reset first so that label sets that vanished (a detached worker) are not scraped forever.
        async collect() {
          const observations = await read();
          this.reset();
          for (const o of observations) this.set(o.labels, o.value);
        },
      });
    },
  };
}

/**
 * OpenTelemetry instrument name of a definition: the Prometheus name without
 * `_total` (an OTel Prometheus exporter adds it back to monotonic sums).
 */
export function otelName(prefix: string, def: MetricDef): string {
  return prefix + def.name.replace(/_total$/, '');
}

/** A recorder writing to an OpenTelemetry meter. */
export function otelRecorder(meter: Meter, prefix: string): Recorder {
  return {
    counter(def) {
      const counter = meter.createCounter(otelName(prefix, def), { description: def.help, unit: def.unit });
      return (labels, value = 1) => counter.add(value, labels);
    },
    histogram(def) {
      const histogram = meter.createHistogram(otelName(prefix, def), {
        description: def.help,
        unit: def.unit,
        advice: { explicitBucketBoundaries: [...def.buckets] },
      });
      return (labels, value) => histogram.record(value, labels);
    },
    gauge(def, read) {
      const gauge = meter.createObservableGauge(otelName(prefix, def), { description: def.help, unit: def.unit });
      gauge.addCallback(async (result) => {
        for (const o of await read()) result.observe(o.value, o.labels);
      });
    },
  };
}

/** A recorder that writes to every given recorder. */
export function fanout(recorders: readonly Recorder[]): Recorder {
  return {
    counter(def) {
      const fns = recorders.map((r) => r.counter(def));
      return (labels, value) => {
        for (const fn of fns) fn(labels, value);
      };
    },
    histogram(def) {
      const fns = recorders.map((r) => r.histogram(def));
      return (labels, value) => {
        for (const fn of fns) fn(labels, value);
      };
    },
    gauge(def, read) {
      for (const r of recorders) r.gauge(def, read);
    },
  };
}
