/**
 * shardwork demo on the embedded memory backend: 4 replicas share 12 shards
 * with a 1 s cron tick. Then one replica stops gracefully, one crashes (its
 * connection is cut, so its heartbeats stop), and one joins; after each event
 * the demo prints the measured time until every shard is owned again.
 *
 *   pnpm demo            # exits by itself
 *   pnpm demo --keep     # keeps running and printing until Ctrl-C
 */

import { MemoryDiscovery, MemoryStore, Worker } from '@shardwork/core';

const SHARDS = 12;
const TTL_MS = 2000;
const keep = process.argv.includes('--keep');
const store = new MemoryStore();
const ticks = new Map<number, number>();

interface Replica {
  readonly name: string;
  readonly worker: Worker;
  readonly conn: MemoryDiscovery;
  crashed: boolean;
}
const replicas: Replica[] = [];

function addReplica(name: string): Replica {
  const conn = new MemoryDiscovery({ store, latencyMs: 1 });
  const worker = new Worker({
    service: 'demo',
    shards: SHARDS,
    discovery: conn,
    leaseTtlMs: TTL_MS,
    schedule: '* * * * * *',
    params: '0=beijing,1=shanghai,2=paris,3=lagos',
    handler: {
      do(ctx) {
        ctx.assertOwned();
        ticks.set(ctx.shard, (ticks.get(ctx.shard) ?? 0) + 1);
      },
    },
  });
  // The crashed replica keeps failing to reach the backend; that is the point.
  worker.on('error', () => undefined);
  const replica = { name, worker, conn, crashed: false };
  replicas.push(replica);
  return replica;
}

const live = (): Replica[] => replicas.filter((r) => !r.crashed && r.worker.state === 'running');

function ownerTable(): Map<number, { name: string; token: number }> {
  const owners = new Map<number, { name: string; token: number }>();
  for (const r of live())
    for (const s of r.worker.status().shards) owners.set(s.shard, { name: r.name, token: s.token });
  return owners;
}

async function timeUntilAllOwned(extra: () => boolean = () => true): Promise<number> {
  const began = performance.now();
  while (ownerTable().size < SHARDS || !extra()) {
    if (performance.now() - began > 20_000) throw new Error('shards not all owned within 20 s');
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - began;
}

function printTable(title: string): void {
  const owners = ownerTable();
  console.log(`\n${title}`);
  console.log('shard  owner      token  ticks');
  for (let shard = 0; shard < SHARDS; shard++) {
    const o = owners.get(shard);
    console.log(
      `${String(shard).padStart(5)}  ${(o?.name ?? '-').padEnd(9)}  ${String(o?.token ?? '-').padStart(5)}  ${String(ticks.get(shard) ?? 0).padStart(5)}`,
    );
  }
  const slices = live().map((r) => `${r.name}: ${r.worker.status().shards.length}`);
  console.log(`slices  ${slices.join('  ')}`);
}

const ms = (x: number): string => `${x.toFixed(0)} ms`;

console.log(`shardwork demo: ${SHARDS} shards, memory backend, lease TTL ${TTL_MS} ms, cron "* * * * * *"`);
const began = performance.now();
await Promise.all([1, 2, 3, 4].map((i) => addReplica(`replica-${i}`).worker.start()));
await timeUntilAllOwned(() => live().every((r) => r.worker.status().shards.length === SHARDS / 4));
console.log(`4 replicas started at once; balanced, every shard owned after ${ms(performance.now() - began)}`);
await new Promise((r) => setTimeout(r, 2200));
printTable('Initial assignment (balanced, 3 shards each):');

const [, r2, r3] = replicas as [Replica, Replica, Replica, Replica];
await r2.worker.stop();
console.log(
  `\n[stop]  ${r2.name} stopped gracefully; every shard owned again after ${ms(await timeUntilAllOwned())} (from the stop call)`,
);
printTable('After the graceful stop:');

r3.crashed = true;
r3.conn.setAvailable(false);
const ownedAgain = await timeUntilAllOwned();
console.log(
  `\n[crash] ${r3.name} lost its connection (heartbeats stop); it fenced itself and every shard was owned again after ${ms(ownedAgain)} (lease TTL ${TTL_MS} ms)`,
);
printTable('After the crash:');

const r5 = addReplica('replica-5');
await r5.worker.start();
const joinTook = await timeUntilAllOwned(() => r5.worker.status().shards.length >= Math.floor(SHARDS / live().length));
console.log(
  `\n[join]  ${r5.name} joined and holds its fair share (${r5.worker.status().shards.length} shards) after ${ms(joinTook)}`,
);
await new Promise((r) => setTimeout(r, 1200));
printTable('After the join:');

if (keep) {
  console.log('\n--keep: printing every 5 s; Ctrl-C to stop');
  const timer = setInterval(() => printTable(new Date().toISOString()), 5000);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  clearInterval(timer);
}
await Promise.all(replicas.map((r) => r.worker.stop()));
console.log(`\ndone in ${((performance.now() - began) / 1000).toFixed(1)} s; every replica stopped`);
