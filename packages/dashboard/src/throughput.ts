import type { AdminJobQueue, QueueThroughput } from '@shardwork/jobs';
import { isUnsupported } from './job-data.js';

/** How many minutes the queues page charts (the job layer keeps up to 120). */
export const CHART_MINUTES = 60;

/**
 * Completed and failed attempts per queue and minute, as the job store counts
 * them for every consumer (`JobQueue.throughput()`), or, for a job backend
 * that keeps no such counts (amqp://: `UnsupportedFeatureError`), its message.
 */
export type StoreThroughput =
  | { readonly kind: 'counted'; readonly series: readonly QueueThroughput[] }
  | { readonly kind: 'unsupported'; readonly message: string };

/**
 * Read the last {@link CHART_MINUTES} minutes of every queue through `read`
 * (the dashboard's deadline-bound reader). A refusal is an answer, not an
 * outage, so it resolves; any other failure rejects like every backend read.
 */
export async function readThroughput(
  jobs: AdminJobQueue,
  read: <T>(key: string, start: () => Promise<T>) => Promise<T>,
): Promise<StoreThroughput> {
  // A hand-made AdminJobQueue from before throughput() existed: no counts, and no outage either.
  if (typeof jobs.throughput !== 'function') {
    return { kind: 'unsupported', message: 'this job queue has no throughput()' };
  }
  try {
    const series = await read('throughput', () => jobs.throughput({ minutes: CHART_MINUTES }));
    return { kind: 'counted', series };
  } catch (error) {
    if (isUnsupported(error)) return { kind: 'unsupported', message: error.message };
    throw error;
  }
}

/**
 * Attempts completed in the last full minute: the one before the newest
 * point, since the newest minute is still being counted. `undefined` without
 * a series (or with fewer than two points).
 */
export function lastFullMinute(series: QueueThroughput | undefined): number | undefined {
  const points = series?.points;
  if (points === undefined || points.length < 2) return undefined;
  return points[points.length - 2]?.completed;
}
