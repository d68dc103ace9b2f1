/**
 * A bench child process hosting one or many replicas (Workers), each with its
 * own backend connection, as separate deployments would have. Configured by
 * the JSON in SHARDWORK_BENCH_HOST (see lib/protocol.ts); takes commands on
 * stdin and reports on stdout, one JSON object a line.
 *
 * It loads everything, reports `standby`, and starts its workers only on the
 * `start` command, so a measured join or a simultaneous start never includes
 * process start-up and module loading. The handler is a long-running consumer
 * that returns as soon as its shard is revoked: the measurements are of
 * shardwork, not of user code.
 *
 * Run by the bench: node --conditions=@shardwork/source --import tsx bench/replica-host.ts
 */

import { createInterface } from 'node:readline';
import { createDiscovery, type Discovery, MemoryDiscovery, MemoryStore, Worker } from '@shardwork/core';
import { trackConvergence } from './lib/balance.js';
import { type CallCounts, CountingDiscovery } from './lib/counting-discovery.js';
import {
  HOST_CONFIG_ENV,
  type HostCommand,
  type HostConfig,
  type HostMessage,
  type HostStats,
  monotonicMs,
} from './lib/protocol.js';

const cfg = JSON.parse(process.env[HOST_CONFIG_ENV] ?? '{}') as HostConfig;
const say = (message: HostMessage): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`);
};
const counts: CallCounts = {};

function stats(): HostStats {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    t: monotonicMs(),
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuMs: (cpu.user + cpu.system) / 1000,
    calls: { ...counts },
    resolver: resolverTotals(),
  };
}

/** Reconcile passes, listings and applied changes of every replica of this process (stopped ones included). */
function resolverTotals(): Record<string, number> {
  const total: Record<string, number> = { ...retired };
  for (const { worker } of hosted) {
    for (const [k, v] of Object.entries(worker.status().resolver)) total[k] = (total[k] ?? 0) + v;
  }
  return total;
}
const retired: Record<string, number> = {};

// Load the backend package now: createDiscovery() imports it on first use,
// which would otherwise land inside the first measured start.
if (cfg.backend === 'redis') await import('@shardwork/discovery-redis');
if (cfg.backend === 'etcd') await import('@shardwork/discovery-etcd');
if (cfg.backend === 'postgres') await import('@shardwork/discovery-postgres');
const store = cfg.backend === 'memory' ? new MemoryStore() : undefined;

interface Hosted {
  readonly worker: Worker;
  readonly discovery: Discovery;
}
const hosted: Hosted[] = [];
const MAX_ERRORS_REPORTED = 5;

async function startOne(w: number): Promise<void> {
  const t0 = monotonicMs();
  const inner = store !== undefined ? new MemoryDiscovery({ store }) : await createDiscovery(cfg.url);
  const onRenew = cfg.events ? (sent: number) => say({ e: 'renew', w, sent, t: monotonicMs() }) : undefined;
  const discovery = new CountingDiscovery(inner, counts, monotonicMs, onRenew);
  const worker = new Worker({
    service: cfg.service,
    shards: cfg.shards,
    discovery,
    leaseTtlMs: cfg.leaseTtlMs,
    ...(cfg.resyncIntervalMs === undefined ? {} : { resyncIntervalMs: cfg.resyncIntervalMs }),
    revokeTimeoutMs: 5000,
    startTimeoutMs: 120_000,
    handler: {
      do: (ctx) =>
        new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        }),
    },
  });
  hosted.push({ worker, discovery });
  let id = '';
  let errors = 0;
  worker.on('lease:registered', ({ instance }) => {
    id = instance;
    say({ e: 'reg', w, id, t: monotonicMs() });
  });
  worker.on('lease:lost', ({ instance }) => say({ e: 'lost', w, id: instance, t: monotonicMs() }));
  // stop() has released the claims and revoked the lease.
  worker.on('state', ({ to }) => {
    if (to === 'stopped') say({ e: 'down', w, t: monotonicMs() });
  });
  worker.on('error', ({ error }) => {
    if (errors++ < MAX_ERRORS_REPORTED) say({ e: 'err', w, msg: String(error) });
  });
  if (cfg.events) {
    worker.on('shard:acquired', ({ shard, token }) => say({ e: 'acq', w, id, s: shard, k: token, t: monotonicMs() }));
    worker.on('shard:revoked', ({ shard, reason }) => say({ e: 'rev', w, id, s: shard, r: reason, t: monotonicMs() }));
  }
  await worker.start();
  say({ e: 'started', w, id, t0, t: monotonicMs() });
}

async function watchConvergence(timeoutMs: number): Promise<void> {
  if (store === undefined) return;
  const observer = new MemoryDiscovery({ store });
  const c = await trackConvergence(() => observer.snapshot(cfg.service), cfg.shards, cfg.workers, {
    timeoutMs,
    pollMs: 10,
  });
  const b = c.last;
  const detail = b === undefined ? '' : `${b.covered} shards covered, ${b.members} members, ${b.offQuota} off quota`;
  say({ e: 'converged', t: c.balanced, allMembers: c.allMembers, allCovered: c.allCovered, detail });
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await Promise.all(
      hosted.map(async ({ worker, discovery }) => {
        await worker.stop().catch(() => undefined);
        await discovery.close().catch(() => undefined);
      }),
    );
    say({ e: 'stopped', t: monotonicMs() });
    process.exit(0);
  })();
  return stopping;
}

process.once('SIGTERM', () => void stopAll());
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let command: HostCommand;
  try {
    command = JSON.parse(line) as HostCommand;
  } catch {
    return;
  }
  switch (command.cmd) {
    case 'start':
      for (let w = 0; w < cfg.workers; w++) {
        startOne(w).catch((error: unknown) => say({ e: 'fatal', msg: `worker ${w}: ${String(error)}` }));
      }
      if (cfg.convergeTimeoutMs !== undefined) void watchConvergence(cfg.convergeTimeoutMs);
      break;
    case 'stop':
      void stopAll();
      break;
    case 'stats':
      say({ e: 'stats', ...stats() });
      break;
    case 'join':
      startOne(hosted.length).catch((error: unknown) => say({ e: 'fatal', msg: `joiner: ${String(error)}` }));
      break;
    case 'leave': {
      const last = hosted.pop();
      if (last !== undefined) {
        for (const [k, v] of Object.entries(last.worker.status().resolver)) retired[k] = (retired[k] ?? 0) + v;
      }
      void last?.worker.stop().then(() => last.discovery.close());
      break;
    }
  }
});
// The parent went away: do not linger.
lines.once('close', () => void stopAll());
say({ e: 'standby', ...stats() });
