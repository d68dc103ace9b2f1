/**
 * Soak the Redis job queue by hand with a seeded random run of faults:
 *
 *   pnpm soak:jobs --seed 7 --duration 300 [--replicas 3] [--ttl 1000]
 *
 * Prints each fault and the checker's report; exits 1 on a violation.
 */

import { parseArgs } from 'node:util';
import { runJobChaos } from './support/job-chaos.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    duration: { type: 'string', default: '120' },
    replicas: { type: 'string', default: '3' },
    ttl: { type: 'string', default: '1000' },
  },
});
const seed = Number(values.seed);
const durationMs = Number(values.duration) * 1000;
console.log(`soak: seed ${seed}, ${values.duration} s, ${values.replicas} replicas, TTL ${values.ttl} ms`);
const result = await runJobChaos({
  seed,
  durationMs,
  replicas: Number(values.replicas),
  ttlMs: Number(values.ttl),
  log: (line) => console.log(line),
});
console.log(
  `accepted ${result.accepted}, completed ${result.completed}, ran twice ${result.duplicates}, cron ticks ${result.ticks}`,
);
for (const v of result.violations) console.log(`VIOLATION ${v}`);
process.exit(result.violations.length === 0 ? 0 : 1);
