import { randomUUID } from 'node:crypto';
import { MemoryDiscovery, type MemoryStore, sleep, Worker } from '@shardwork/core';
import type { Registry } from 'prom-client';

/** Poll `check` every 20 ms until it holds; throws after `timeoutMs` (loose: the machine is shared). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

type Labels = Record<string, string | number>;

function matches(have: Labels, want: Labels): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

/** Sum of a metric's samples whose labels include `labels` (`suffix` picks `_count`/`_sum` of a histogram). */
export async function value(registry: Registry, name: string, labels: Labels = {}, suffix = ''): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  // Histogram samples carry their series name (`…_bucket`, `…_sum`, `…_count`).
  const values = data.values as readonly { labels: Labels; value: number; metricName?: string }[];
  return values
    .filter((v) => (suffix === '' ? (v.metricName ?? name) === name : v.metricName === name + suffix))
    .filter((v) => matches(v.labels as Labels, labels))
    .reduce((sum, v) => sum + v.value, 0);
}

/** A unique service name per test. */
export function service(tag: string): string {
  return `m-${tag}-${randomUUID().slice(0, 8)}`;
}

/** A worker on its own connection to `store`, so the connection can be cut. */
export function worker(store: MemoryStore, name: string, shards = 4): { worker: Worker; conn: MemoryDiscovery } {
  const conn = new MemoryDiscovery({ store });
  const w = new Worker({
    service: name,
    shards,
    discovery: conn,
    leaseTtlMs: 1000,
    revokeTimeoutMs: 2000,
    // Settle 50 ms after the abort: a stop whose handlers settle within 20 ms
    // drops the lease at once, which the next owner sees as a failover, not a handoff.
    handler: async (ctx) => {
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await sleep(50);
    },
  });
  w.on('error', () => undefined);
  return { worker: w, conn };
}
