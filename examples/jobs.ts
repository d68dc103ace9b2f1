/**
 * shardwork jobs demo on the in-process `memory://` adapter: registers
 * handlers, performs jobs now, in 300 ms and at a time, shows a retry, a dead
 * job, a unique refusal and per-key order, then stops and exits.
 *
 *   pnpm demo:jobs
 */

import { NonRetryableError, sleep } from '@shardwork/core';
import { createJobQueue } from '@shardwork/jobs';

type Jobs = {
  send_email: { to: string };
  reminder: { user: number };
  report: { tenant: string };
  webhook: { url: string };
  charge_card: { order: number };
  sync_user: { user: number };
  ledger: { account: string; entry: number };
};

const t0 = Date.now();
const at = (): string => `+${String(Date.now() - t0).padStart(4)} ms`;
const say = (line: string): void => console.log(`${at()}  ${line}`);

const jobs = createJobQueue<Jobs>(process.env.SHARDWORK_JOBS ?? 'memory://', { concurrency: 4 });

jobs.use(async (ctx, next) => {
  const began = Date.now();
  await next();
  if (ctx.handler !== 'ledger') say(`   ${ctx.handler} #${ctx.attempt} took ${Date.now() - began} ms`);
});

jobs.register('send_email', async (args) => say(`send_email to ${args.to}`));
jobs.register('reminder', async (args, ctx) =>
  say(`reminder for user ${args.user}, due ${ctx.scheduledAt.getTime() - ctx.enqueuedAt.getTime()} ms after enqueue`),
);
jobs.register('report', async (args) => say(`report for ${args.tenant} (performAt)`));
jobs.register(
  'webhook',
  async (args, ctx) => {
    if (ctx.attempt === 1) throw new Error(`${args.url} answered 503`);
    say(`webhook ${args.url} delivered on attempt ${ctx.attempt}`);
  },
  { maxFails: 3, backoff: () => 200 },
);
jobs.register(
  'charge_card',
  async (args, ctx) => {
    if (ctx.attempt === 2) throw new NonRetryableError(`order ${args.order}: card declined`);
    throw new Error(`order ${args.order}: gateway timeout`);
  },
  { maxFails: 5, backoff: { initialIntervalMs: 100 } },
);
jobs.register(
  'sync_user',
  async (args, ctx) => {
    await sleep(100, ctx.signal);
    say(`sync_user ${args.user} done`);
  },
  { unique: true },
);
const ledger = new Map<string, number[]>();
jobs.register(
  'ledger',
  async (args, ctx) => {
    await sleep(20 + Math.random() * 30, ctx.signal);
    if (args.entry === 2 && ctx.attempt === 1) throw new Error('ledger locked, retry');
    ledger.set(args.account, [...(ledger.get(args.account) ?? []), args.entry]);
  },
  { ordered: true, backoff: () => 150 },
);

jobs.on('job:failed', ({ job, attempt, error, nextRunAt }) =>
  say(
    `!  ${job.handler} attempt ${attempt} failed: ${(error as Error).message}; ${nextRunAt === undefined ? 'no retry' : `retry in ${nextRunAt.getTime() - Date.now()} ms`}`,
  ),
);
jobs.on('job:dead', ({ job, reason }) => say(`x  ${job.handler} ${job.id} is dead (${reason})`));

await jobs.start();
console.log('shardwork jobs demo: memory:// adapter, concurrency 4\n');

await jobs.perform({ handler: 'send_email', args: { to: 'ada@example.com' } });
await jobs.performIn({ handler: 'reminder', args: { user: 42 } }, 300);
await jobs.performAt({ handler: 'report', args: { tenant: 'tenant-7' } }, new Date(Date.now() + 600));
await jobs.perform({ handler: 'webhook', args: { url: 'https://hooks.example.com/x' } });
await jobs.perform({ handler: 'charge_card', args: { order: 1001 } });

const first = await jobs.perform({ handler: 'sync_user', args: { user: 7 } });
const again = await jobs.perform({ handler: 'sync_user', args: { user: 7 } });
say(
  `unique: sync_user {user: 7} twice → ${again.duplicate ? `refused as a duplicate of ${first.id}` : 'accepted twice?!'}`,
);

const entries = [];
for (let entry = 1; entry <= 4; entry++) {
  for (const account of ['acct-A', 'acct-B'])
    entries.push({ handler: 'ledger' as const, key: account, args: { account, entry } });
}
await jobs.performMany(entries);
say('ordered: 8 ledger entries for acct-A and acct-B enqueued in one performMany (entry 2 fails once)');

// Wait until everything has settled: nothing ready, running, scheduled or retrying.
for (;;) {
  const { total } = await jobs.stats();
  if (total.ready + total.running + total.scheduled + total.retrying === 0 && jobs.status().running === 0) break;
  await sleep(20);
}

console.log('');
for (const [account, order] of ledger) say(`ledger ${account} applied in order ${order.join(', ')}`);
const dead = await jobs.list('dead');
for (const job of dead.jobs)
  say(`dead set: ${job.handler} ${JSON.stringify(job.args)} after ${job.fails} fails: ${job.lastError?.message}`);
const ok = [...ledger.values()].every((order) => order.join() === '1,2,3,4') && again.duplicate && dead.total === 1;
const counts = jobs.status().counts;
await jobs.stop({ timeoutMs: 1000 });
console.log(
  `\ndone: ${counts.enqueued} enqueued, ${counts.duplicates} duplicate refused, ${counts.completed} completed, ${counts.failed} failed attempts, ${counts.dead} dead`,
);
if (!ok) {
  console.error('demo expectations not met');
  process.exit(1);
}
