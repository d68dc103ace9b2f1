/**
 * What instrumenting costs: one in-process (`memory://`) queue drains no-op
 * jobs with and without `ShardworkMetrics.instrumentJobs`, in alternating
 * runs; the per-run ratio (instrumented / bare time) is reported, median of
 * the pairs. memory:// has no I/O, so this is the worst case: the metrics'
 * share of a job's cost is largest when the job and the store cost nothing.
 *
 *   node --conditions=@shardwork/source --import tsx bench/metrics.ts [--runs 7] [--jobs 50000]
 */

import { parseArgs } from 'node:util';
import { createJobQueue } from '@shardwork/jobs';
import { ShardworkMetrics } from '@shardwork/metrics';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '7' }, jobs: { type: 'string', default: '50000' } },
});
const runs = Number(values.runs);
const jobs = Number(values.jobs);

async function drain(instrumented: boolean): Promise<number> {
  const q = createJobQueue<{ noop: Record<string, never> }>('memory://', { concurrency: 50 });
  const metrics = instrumented ? new ShardworkMetrics() : undefined;
  metrics?.instrumentJobs(q);
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  q.register('noop', () => {
    done += 1;
    if (done === jobs) finish();
  });
  await q.start();
  const batch = Array.from({ length: jobs }, () => ({ handler: 'noop' as const, args: {} }));
  const began = performance.now();
  for (let i = 0; i < batch.length; i += 1000) await q.performMany(batch.slice(i, i + 1000));
  await finished;
  const took = performance.now() - began;
  await q.stop();
  if (metrics !== undefined) {
    const text = await metrics.metrics();
    const counted = /shardwork_jobs_total\{[^}]*outcome="completed"[^}]*\} (\d+)/.exec(text)?.[1];
    if (Number(counted) !== jobs) throw new Error(`the instrumented run counted ${counted} of ${jobs} jobs`);
  }
  return took;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

await drain(false); // warm-up
await drain(true);
const bare: number[] = [];
const instrumented: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < runs; i++) {
  // Alternate the order so drift of the machine's speed favours neither.
  let t0: number;
  let t1: number;
  if (i % 2 === 0) {
    t0 = await drain(false);
    t1 = await drain(true);
  } else {
    t1 = await drain(true);
    t0 = await drain(false);
  }
  bare.push(t0);
  instrumented.push(t1);
  ratios.push(t1 / t0);
  process.stderr.write(`run ${i + 1}: bare ${t0.toFixed(0)} ms, instrumented ${t1.toFixed(0)} ms\n`);
}
const perJobUs = (ms: number): string => ((ms * 1000) / jobs).toFixed(2);
console.log(`| ${jobs} no-op jobs on memory:// | bare | instrumented | ratio (median of per-run) |`);
console.log('| --- | --- | --- | --- |');
console.log(
  `| median time per job | ${perJobUs(median(bare))} µs | ${perJobUs(median(instrumented))} µs | ${median(ratios).toFixed(2)}× |`,
);
