/**
 * Chaos soaks by hand:
 *
 *   pnpm chaos [--seed N] [--duration S] [--backend memory|redis|etcd|all]
 *              [--redis-keep-data] [--keep] [--trace]
 *
 * Defaults: a random seed (printed first), 60 s, every backend. Prints the
 * schedule as it runs, each event's recovery time, a table per event kind and
 * the verdict; exits 1 on any violation. The same seed replays the same
 * schedule (on memory, with virtual time, the very same run).
 *
 * - `--redis-keep-data`: Redis restarts reload a snapshot instead of coming
 *   back empty (the default, which the worker does not survive yet: see
 *   test/chaos/README.md).
 * - `--keep`: keep the process backends' record files and print where.
 * - `--trace`: print every lease and shard event of the memory workers.
 */

import { parseArgs } from 'node:util';
import { CHAOS_BACKENDS, runBackendChaos } from './backends.js';
import { formatRecoveries } from './check.js';
import type { ChaosBackend } from './runner.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string', default: '60' },
    backend: { type: 'string', default: 'all' },
    keep: { type: 'boolean', default: false },
    'redis-keep-data': { type: 'boolean', default: false },
    trace: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(
    'pnpm chaos [--seed N] [--duration S] [--backend memory|redis|etcd|all] [--redis-keep-data] [--keep] [--trace]',
  );
  process.exit(0);
}

const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const durationS = Number(values.duration);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
if (!Number.isFinite(durationS) || durationS < 5)
  throw new Error(`--duration must be at least 5 (s), got ${values.duration}`);
const backends: readonly ChaosBackend[] =
  values.backend === 'all'
    ? CHAOS_BACKENDS
    : CHAOS_BACKENDS.includes(values.backend as ChaosBackend)
      ? [values.backend as ChaosBackend]
      : (() => {
          throw new Error(`--backend must be one of ${CHAOS_BACKENDS.join(', ')}, all; got ${values.backend}`);
        })();

console.log(`seed ${seed}`);
let failed = false;
for (const backend of backends) {
  const began = performance.now();
  const result = await runBackendChaos(backend, {
    seed,
    durationMs: durationS * 1000,
    log: (line) => console.log(`[${backend}] ${line}`),
    keepRecords: values.keep,
    redisRestart: values['redis-keep-data'] ? 'keep' : 'lose',
    ...(values.trace && { trace: (line: string) => console.log(`[${backend}]     ${line}`) }),
  });
  const { verdict } = result;
  console.log(`\n[${backend}] recovery times (start: from ready; others: from the event)`);
  console.log(formatRecoveries(verdict.recoveries));
  console.log(
    `[${backend}] ${verdict.intervals.length} ownership intervals, ${verdict.effectCount} effects checked` +
      `, ${verdict.lifetimeOverlaps.length} handler-lifetime overlaps (informational)` +
      `, ${((performance.now() - began) / 1000).toFixed(1)} s wall time`,
  );
  if (result.recordDir !== undefined) console.log(`[${backend}] records kept in ${result.recordDir}`);
  if (verdict.ok) {
    console.log(
      `[${backend}] PASS: no overlap, tokens increasing and never shared by shards, every shard owned again within its bound`,
    );
  } else {
    failed = true;
    console.log(`[${backend}] FAIL: ${verdict.violations.length} violation(s)`);
    for (const v of verdict.violations) console.log(`\n${v}`);
    if (result.replicaLogs !== undefined) console.log(`\n[${backend}] replica logs:\n${result.replicaLogs}`);
  }
  console.log('');
}
console.log(`seed ${seed}: ${failed ? 'FAIL' : 'PASS'}`);
process.exit(failed ? 1 : 0);
