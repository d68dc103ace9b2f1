/**
 * Options of {@link ShardworkMetrics}, {@link ShardworkMetrics.instrumentJobs}
 * and {@link serveMetrics}, and the functions that validate them and fill the
 * defaults. Invalid input throws core's `InvalidOptionsError` naming the option.
 *
 * @module
 */

import type { Meter } from '@opentelemetry/api';
import { InvalidOptionsError, type Worker } from '@shardwork/core';
import type { AdminJobQueue } from '@shardwork/jobs';
import { Registry } from 'prom-client';
import type { ShardworkMetrics } from './metrics.js';

/** Options of {@link ShardworkMetrics}. */
export interface MetricsOptions {
  /**
   * The prom-client registry the metrics are registered in. Pass your own to
   * scrape them with your other metrics, or merge `metrics.registry` into it
   * with `Registry.merge`.
   * @defaultValue a new `Registry`
   */
  readonly registry?: Registry;
  /**
   * An OpenTelemetry meter: when given, every metric is also recorded there
   * (in addition to the Prometheus registry).
   * @defaultValue none (Prometheus only)
   */
  readonly meter?: Meter;
  /**
   * Prefix of every metric name (Prometheus name characters, may be empty).
   * @defaultValue `"shardwork_"`
   */
  readonly prefix?: string;
}

/** {@link MetricsOptions} after {@link compileMetricsOptions}. */
export interface CompiledMetricsOptions {
  readonly registry: Registry;
  readonly meter: Meter | undefined;
  readonly prefix: string;
}

/** Options of {@link ShardworkMetrics.instrumentJobs}. */
export interface InstrumentJobsOptions {
  /**
   * Least time between two reads of `queue.stats()` for the `queue_jobs`
   * gauge; scrapes in between get the cached values.
   * @defaultValue 5000
   */
  readonly depthIntervalMs?: number;
  /**
   * Longest a scrape waits for a `stats()` read before it answers with the
   * last values (the read carries on and its result serves the next scrape).
   * @defaultValue 1000
   */
  readonly depthTimeoutMs?: number;
  /**
   * The `service` label of this queue's `backend_errors_total` (job queues
   * have no service name of their own).
   * @defaultValue `"jobs"`
   */
  readonly name?: string;
}

/** {@link InstrumentJobsOptions} after {@link compileInstrumentJobsOptions}. */
export interface CompiledInstrumentJobsOptions {
  readonly depthIntervalMs: number;
  readonly depthTimeoutMs: number;
  readonly name: string;
}

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /**
   * TCP port; `0` picks a free one (read it from the result).
   * @defaultValue 9464
   */
  readonly port?: number;
  /**
   * Interface to listen on. Use `0.0.0.0` (or `::`) in a container so the
   * kubelet and Prometheus can reach it.
   * @defaultValue `"127.0.0.1"`
   */
  readonly host?: string;
  /**
   * The metrics served on `/metrics`. When absent, a new
   * {@link ShardworkMetrics} instruments `workers` and `jobs` and is detached
   * on `close()`; when given, it is served as is (instrument it yourself).
   * @defaultValue a new `ShardworkMetrics`
   */
  readonly metrics?: ShardworkMetrics;
  /** Workers `/readyz` checks. @defaultValue `[]` */
  readonly workers?: readonly Worker[];
  /** Job queues `/readyz` checks. @defaultValue `[]` */
  readonly jobs?: readonly AdminJobQueue[];
}

/** {@link ServeMetricsOptions} after {@link compileServeOptions} (without the default metrics). */
export interface CompiledServeOptions {
  readonly port: number;
  readonly host: string;
  readonly metrics: ShardworkMetrics | undefined;
  readonly workers: readonly Worker[];
  readonly jobs: readonly AdminJobQueue[];
}

const PREFIX = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;
const NAME = /^[a-zA-Z0-9_.:-]{1,100}$/;

function object(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionsError(name, value, 'an options object');
  }
  return value as Record<string, unknown>;
}

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(name, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

/** Validate {@link MetricsOptions} and fill the defaults. */
export function compileMetricsOptions(options: MetricsOptions | undefined): CompiledMetricsOptions {
  const o = object('options', options);
  const registry = o.registry ?? new Registry();
  if (!(registry instanceof Registry)) {
    throw new InvalidOptionsError('registry', registry, 'a prom-client Registry');
  }
  const meter = o.meter;
  if (meter !== undefined && (typeof meter !== 'object' || meter === null || !('createCounter' in meter))) {
    throw new InvalidOptionsError('meter', meter, 'an OpenTelemetry Meter');
  }
  const prefix = o.prefix ?? 'shardwork_';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new InvalidOptionsError('prefix', prefix, 'a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*) or ""');
  }
  return { registry, meter: meter as Meter | undefined, prefix };
}

/** Validate {@link InstrumentJobsOptions} and fill the defaults. */
export function compileInstrumentJobsOptions(
  options: InstrumentJobsOptions | undefined,
): CompiledInstrumentJobsOptions {
  const o = object('options', options);
  const name = o.name ?? 'jobs';
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidOptionsError('name', name, 'letters, digits, "_", ".", ":", "-" (1-100 characters)');
  }
  return {
    depthIntervalMs: integer('depthIntervalMs', o.depthIntervalMs, 5000, 0, 86_400_000),
    depthTimeoutMs: integer('depthTimeoutMs', o.depthTimeoutMs, 1000, 0, 60_000),
    name,
  };
}

function list<T>(name: string, value: unknown, check: (item: unknown) => boolean, what: string): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidOptionsError(name, value, `an array of ${what}`);
  value.forEach((item, i) => {
    if (!check(item)) throw new InvalidOptionsError(`${name}[${i}]`, item, what);
  });
  return value as T[];
}

function hasStatus(item: unknown): boolean {
  return typeof item === 'object' && item !== null && typeof (item as { status?: unknown }).status === 'function';
}

/** Validate {@link ServeMetricsOptions} and fill the defaults (the default metrics are created by the caller). */
export function compileServeOptions(options: ServeMetricsOptions | undefined): CompiledServeOptions {
  const o = object('options', options);
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.trim() === '') {
    throw new InvalidOptionsError('host', host, 'a host name or IP address');
  }
  const metrics = o.metrics;
  if (metrics !== undefined && (typeof metrics !== 'object' || metrics === null || !('registry' in metrics))) {
    throw new InvalidOptionsError('metrics', metrics, 'a ShardworkMetrics instance');
  }
  return {
    port: integer('port', o.port, 9464, 0, 65_535),
    host,
    metrics: metrics as ShardworkMetrics | undefined,
    workers: list<Worker>('workers', o.workers, hasStatus, 'a shardwork Worker'),
    jobs: list<AdminJobQueue>('jobs', o.jobs, hasStatus, 'a shardwork AdminJobQueue'),
  };
}
