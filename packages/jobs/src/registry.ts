/**
 * Job queue adapters chosen by URL, on core's {@link ProtocolRegistry}:
 * `memory://` (the in-process {@link SimpleQueue}) is built in; `redis://`,
 * `rediss://` (and their `+cluster` and `+sentinel` forms), `amqp://` and
 * `amqps://` load their packages on first use.
 * `SHARDWORK_JOBS` gives the URL when none is passed.
 *
 * @module
 */

import type { ParsedProtocolUrl } from '@shardwork/core';
import { type ProtocolFactory, ProtocolRegistry } from '@shardwork/core/backend';
import type { JobAdapter } from './adapter.js';
import type { CompiledQueueOptions } from './options.js';
import { SimpleQueue } from './simple/simple-queue.js';

/** Creates an adapter from a URL and the queue's compiled options. */
export type JobAdapterFactory = ProtocolFactory<JobAdapter, [CompiledQueueOptions]>;

/** The shape an adapter package exports so that its protocols load by URL. */
export interface JobAdapterModule {
  /** Create an adapter from a URL of one of the package's protocols. */
  jobAdapterFromUrl: JobAdapterFactory;
}

/** Name of the environment variable read when no URL is given. */
export const JOBS_ENV = 'SHARDWORK_JOBS';

const registry = new ProtocolRegistry<JobAdapter, [CompiledQueueOptions]>({
  kind: 'job queue adapter',
  option: 'url',
  env: JOBS_ENV,
  fallback: 'memory://',
  examples: ['memory://', 'redis://host:6379', 'amqp://host:5672', 'postgres://host:5432/db'],
  builtin: { memory: (_url, options) => new SimpleQueue(options) },
  packages: {
    redis: '@shardwork/jobs-redis',
    rediss: '@shardwork/jobs-redis',
    'redis+cluster': '@shardwork/jobs-redis',
    'rediss+cluster': '@shardwork/jobs-redis',
    'redis+sentinel': '@shardwork/jobs-redis',
    'rediss+sentinel': '@shardwork/jobs-redis',
    amqp: '@shardwork/jobs-amqp',
    amqps: '@shardwork/jobs-amqp',
    postgres: '@shardwork/jobs-postgres',
    postgresql: '@shardwork/jobs-postgres',
  },
  exportName: 'jobAdapterFromUrl' satisfies keyof JobAdapterModule,
});

/** Register (or replace) the adapter factory of a protocol, e.g. `registerJobQueue('sqs', (url, o) => …)`. */
export function registerJobQueue(protocol: string, factory: JobAdapterFactory): void {
  registry.register(protocol, factory);
}

/** Protocols that `createJobQueue` understands right now. */
export function registeredJobQueueProtocols(): string[] {
  return registry.protocols();
}

/** Check a job queue URL without connecting (the argument, else `SHARDWORK_JOBS`, else `memory://`). */
export function parseJobQueueUrl(url?: string): ParsedProtocolUrl {
  return registry.parse(url);
}

/** Create the adapter of a URL, loading its package on first use. */
export function createJobAdapter(url: string, options: CompiledQueueOptions): Promise<JobAdapter> {
  return registry.create(url, options);
}
