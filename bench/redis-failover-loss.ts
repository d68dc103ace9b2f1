/**
 * What asynchronous replication loses when a Redis primary is killed, with and
 * without `syncReplicas=1`, on a Redis Cluster and on Sentinel: a producer
 * enqueues jobs as fast as 8 performs in flight allow, the primary of its
 * queue gets kill -9, and after the failover the acknowledged jobs whose
 * record is gone are counted. Two cases:
 *
 * - healthy replica: it keeps up, the kill meets a link with nothing pending;
 * - lagging replica: paused (SIGSTOP) before the kill until the primary holds
 *   256 KiB of replication stream it cannot send (at most 800 ms), resumed
 *   the moment the primary dies, like a replica that is behind when its
 *   primary's host fails.
 *
 * Prints a markdown table (medians over the runs, and every run's count).
 *
 *   node --conditions=@shardwork/source --import tsx bench/redis-failover-loss.ts [--runs 5]
 */

import { parseArgs } from 'node:util';
import { startRedisCluster, startRedisSentinel } from '@shardwork/testkit';
import { clusterSetup, type HaSetup, type LossRun, measureLoss, sentinelSetup } from '../test/support/redis-ha.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs < 1)
  throw new Error(`--runs must be a positive whole number, got ${values.runs}`);

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
};

const rows: string[] = [];
const topologies: [string, () => Promise<HaSetup>][] = [
  ['Cluster', async () => clusterSetup(await startRedisCluster())],
  // down-after 2000 ms: see test/redis-ha.test.ts (1000 ms invites a second, spurious failover).
  ['Sentinel', async () => sentinelSetup(await startRedisSentinel({ downAfterMs: 2000 }))],
];
for (const [name, start] of topologies) {
  const setup = await start();
  try {
    for (const stall of [false, true]) {
      for (const syncReplicas of [0, 1] as const) {
        const done: LossRun[] = [];
        for (let i = 0; i < runs; i++) {
          const run = await measureLoss(setup, { syncReplicas, stall });
          done.push(run);
          console.error(
            `${name} syncReplicas=${syncReplicas} ${stall ? 'lagging' : 'healthy'} #${i + 1}:`,
            JSON.stringify(run),
          );
        }
        const m = (pick: (r: LossRun) => number): number => median(done.map(pick));
        rows.push(
          `| ${name} | ${stall ? `lagging (${m((r) => r.stalledMs)} ms)` : 'healthy'} | ${syncReplicas} | ${m((r) => r.acked)} | ` +
            `${stall ? m((r) => r.ackedWhileStalled) : '-'} | ${m((r) => r.failed)} | **${m((r) => r.lost)}** | ` +
            `${done.map((r) => r.lost).join(', ')} | ${m((r) => r.failoverMs)} |`,
        );
      }
    }
  } finally {
    await setup.stop();
  }
}
console.log(`Acknowledged jobs lost by a kill -9 of the queue's primary (${runs} runs each, medians):\n`);
console.log(
  '| setup | replica at the kill | syncReplicas | acknowledged | of them while lagging | rejected | lost | lost per run | failover ms |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
