/**
 * Every metric this package exports, in one table: name (Prometheus form,
 * without the prefix), help, labels, unit and histogram buckets. Labels are
 * low-cardinality on purpose: never a shard index, job id or member id.
 *
 * @module
 */

import type { HistogramDef, MetricDef } from './recorder.js';

/** Lease renewals are loopback-to-regional round trips: 1 ms to a few seconds. */
const RENEWAL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** A failover waits for a lease TTL (default 10 s); a handoff is usually sub-second. Up to ~60 s and beyond. */
const MOVE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120];
/** Draining a revoked shard is bounded by revokeTimeoutMs (default 10 s). */
const DRAIN_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Job attempts: 1 ms to 5 min. */
const JOB_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Time a due job waits for a consumer: 1 ms to an hour of backlog. */
const JOB_WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

function metric(name: string, help: string, labels: readonly string[], unit = '1'): MetricDef {
  return { name, help, labels, unit };
}

function histogram(name: string, help: string, labels: readonly string[], buckets: readonly number[]): HistogramDef {
  return { name, help, labels, unit: 's', buckets };
}

/** The metric definitions, by role. */
export const DEFS = {
  shardsOwned: metric('shards_owned', 'Shards this process owns now.', ['service'], '{shard}'),
  members: metric('members', 'Live members of the service in the last view.', ['service'], '{member}'),
  acquisitions: metric(
    'shard_acquisitions_total',
    'Shards claimed, by how the shard came to be free (handoff, failover, vacant, adopted).',
    ['service', 'reason'],
  ),
  revocations: metric(
    'shard_revocations_total',
    'Shards this process stopped owning (rebalance, lease-lost, claim-lost, stop).',
    ['service', 'reason'],
  ),
  renewals: metric('lease_renewals_total', 'Lease renewals that succeeded.', ['service']),
  renewalSeconds: histogram('lease_renewal_seconds', 'Round trip of a lease renewal.', ['service'], RENEWAL_BUCKETS),
  leaseLosses: metric('lease_losses_total', 'Leases lost (self-fenced or reported by the backend).', ['service']),
  failoverSeconds: histogram(
    'failover_seconds',
    'How long a shard taken over from a crashed or fenced owner had been unowned.',
    ['service'],
    MOVE_BUCKETS,
  ),
  handoffSeconds: histogram(
    'handoff_seconds',
    'How long a shard handed over by a live owner had been unowned.',
    ['service'],
    MOVE_BUCKETS,
  ),
  drainSeconds: histogram(
    'shard_drain_seconds',
    'From a shard revocation until its handler settled and the claim was given back or dropped.',
    ['service', 'reason'],
    DRAIN_BUCKETS,
  ),
  backendErrors: metric(
    'backend_errors_total',
    'Infrastructure errors (backend unreachable, timeouts, failed stats reads), by error code.',
    ['service', 'code'],
  ),
  handlerErrors: metric('handler_errors_total', 'Shard handler stages that threw.', ['service', 'stage']),
  jobs: metric(
    'jobs_total',
    'Job attempt outcomes: completed, failed (every failed attempt, the last one too), dead (jobs moved to the dead set).',
    ['queue', 'handler', 'outcome'],
  ),
  enqueued: metric('jobs_enqueued_total', 'Jobs enqueued by this process (duplicates of unique jobs excluded).', [
    'queue',
    'handler',
  ]),
  jobDuration: histogram(
    'job_duration_seconds',
    'How long a job attempt ran, by outcome (completed, failed).',
    ['queue', 'handler', 'outcome'],
    JOB_DURATION_BUCKETS,
  ),
  jobWait: histogram(
    'job_wait_seconds',
    'How long a job waited between being due and starting.',
    ['queue', 'handler'],
    JOB_WAIT_BUCKETS,
  ),
  jobsRunning: metric('jobs_running', 'Job attempts running in this process now.', [], '{job}'),
  queueJobs: metric(
    'queue_jobs',
    'Jobs in the backend per queue and state (scheduled, ready, running, retrying, dead), read at most every depthIntervalMs.',
    ['queue', 'state'],
    '{job}',
  ),
} as const;
