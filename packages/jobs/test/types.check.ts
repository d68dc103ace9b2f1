/**
 * Compile-time checks of typed jobs, run by `pnpm typecheck` (not by vitest):
 * every `@ts-expect-error` below must stay an error, or the type check fails.
 */

import { createJobQueue, type JobContext } from '@shardwork/jobs';

type Jobs = {
  send_email: { to: string; cc?: string };
  report: { tenant?: string };
};

export async function typedJobs(): Promise<void> {
  const jobs = createJobQueue<Jobs>('memory://');
  jobs.register('send_email', async (args, ctx: JobContext<{ to: string; cc?: string }>) => {
    const to: string = args.to;
    void to;
    void ctx.signal;
  });
  jobs.register('report', () => undefined, { unique: (args) => args.tenant ?? 'all', ordered: true });

  await jobs.perform({ handler: 'send_email', args: { to: 'a@example.com' } });
  await jobs.perform({ handler: 'report' }); // every arg optional: args may be left out
  await jobs.performIn({ handler: 'report', args: { tenant: 't1' }, key: 't1' }, 1000);
  await jobs.performMany([
    { handler: 'send_email', args: { to: 'b@example.com' } },
    { handler: 'report', at: new Date() },
  ]);

  // @ts-expect-error an unknown handler name
  jobs.register('nope', () => undefined);
  // @ts-expect-error a handler whose args do not match the map
  jobs.register('report', (args: { tenant: number }) => args.tenant);
  // @ts-expect-error the unique key function sees the typed args
  jobs.register('send_email', () => undefined, { unique: (args) => args.nope });
  // @ts-expect-error required args missing
  await jobs.perform({ handler: 'send_email' });
  // @ts-expect-error args of the wrong type
  await jobs.perform({ handler: 'send_email', args: { to: 42 } });
  // @ts-expect-error an unknown handler name
  await jobs.perform({ handler: 'other', args: {} });

  // Without a job map any name and any args object is accepted.
  const loose = createJobQueue();
  loose.register('anything', (args) => args.whatever);
  await loose.perform({ handler: 'anything', args: { whatever: [1, 2] } });
}
