/**
 * A replica child process for multi-process tests. Configured by the JSON in
 * SHARDWORK_REPLICA (see cluster.ts); appends ownership records to a file and
 * reports registrations on stdout as JSON lines.
 *
 * Run: node --conditions=@shardwork/source --import tsx test/support/replica-main.ts
 */

import { sleep, Worker } from '@shardwork/core';
import { appendOwnershipRecord, monotonicMs } from '@shardwork/core/testing';
import type { ReplicaSpec } from './cluster.js';

const spec = JSON.parse(process.env.SHARDWORK_REPLICA ?? '{}') as ReplicaSpec;
const say = (message: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`);
};

const worker = new Worker({
  service: spec.service,
  shards: spec.shards,
  discovery: spec.discovery,
  leaseTtlMs: spec.leaseTtlMs,
  revokeTimeoutMs: spec.revokeTimeoutMs ?? 5000,
  resyncIntervalMs: spec.resyncIntervalMs ?? 2000,
  handleSignals: true,
  startTimeoutMs: 60_000,
  handler: {
    async do(ctx) {
      const base = { shard: ctx.shard, token: ctx.token, owner: ctx.instance };
      if (ctx.owned) appendOwnershipRecord(spec.recordFile, { kind: 'acquire', ...base, t: monotonicMs() });
      try {
        while (!ctx.signal.aborted) {
          // The side effect is recorded right after the synchronous check, with no await between.
          if (ctx.owned) appendOwnershipRecord(spec.recordFile, { kind: 'effect', ...base, t: monotonicMs() });
          await sleep(spec.effectIntervalMs ?? 10, ctx.signal).catch(() => undefined);
        }
      } finally {
        appendOwnershipRecord(spec.recordFile, { kind: 'release', ...base, t: monotonicMs() });
      }
    },
  },
});
worker.on('lease:registered', ({ instance }) => say({ type: 'lease', instance }));
worker.on('lease:lost', ({ instance, error }) => say({ type: 'lease-lost', instance, reason: error.message }));
worker.on('error', ({ error }) => say({ type: 'error', message: String(error) }));
worker.on('state', ({ to }) => {
  if (to === 'stopped') {
    say({ type: 'stopped' });
    process.exit(0);
  }
});
await worker.start();
say({ type: 'ready', instance: worker.status().instance });
