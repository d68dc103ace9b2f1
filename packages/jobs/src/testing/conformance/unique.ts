/**
 * Job queue conformance: unique jobs.
 *
 * @module
 */

import { describe, expect } from 'vitest';
import { type ConformanceKit, gate } from './kit.js';

/** The cases of "unique jobs". */
export function describeUnique(kit: ConformanceKit): void {
  const { until, queue, feature } = kit;
  describe('unique jobs', () => {
    feature(
      'unique',
      'holds a unique key while the job is queued and while it runs, and releases it on completion',
      async () => {
        const q = await queue();
        const hold = gate();
        let runs = 0;
        q.register(
          'sync_user',
          async () => {
            runs++;
            await hold.promise;
          },
          { unique: true },
        );
        const first = await q.perform({ handler: 'sync_user', args: { user: 7 } });
        // Queued (not started yet):
        expect(await q.perform({ handler: 'sync_user', args: { user: 7 } })).toEqual({
          id: first.id,
          duplicate: true,
        });
        const other = await q.perform({ handler: 'sync_user', args: { user: 8 } });
        expect(other.duplicate).toBe(false);
        await q.start();
        await until(() => runs === 2, 1000, 'both started');
        // Running:
        expect(await q.perform({ handler: 'sync_user', args: { user: 7 } })).toEqual({
          id: first.id,
          duplicate: true,
        });
        const completed = new Set<string>();
        q.on('job:completed', ({ job }) => completed.add(job.id));
        hold.open();
        await until(() => completed.has(first.id), 1000, 'the first completed');
        const again = await q.perform({ handler: 'sync_user', args: { user: 7 } });
        expect(again.duplicate).toBe(false);
        expect(again.id).not.toBe(first.id);
        expect(q.status().counts.duplicates).toBe(2);
      },
      { unique: true },
    );

    feature(
      'unique',
      'keys unique jobs by a key function, and releases the key when the job dies',
      async () => {
        const q = await queue();
        const dead: string[] = [];
        q.on('job:dead', ({ job }) => dead.push(job.id));
        q.register(
          'charge',
          () => {
            throw new Error('card declined');
          },
          { unique: (args) => String(args.order), maxFails: 1 },
        );
        const a = await q.perform({ handler: 'charge', args: { order: 1, amount: 5 } });
        expect((await q.perform({ handler: 'charge', args: { order: 1, amount: 6 } })).duplicate).toBe(true);
        const batch = await q.performMany([
          { handler: 'charge', args: { order: 2 } },
          { handler: 'charge', args: { order: 2 } },
        ]);
        expect(batch.map((r) => r.duplicate)).toEqual([false, true]);
        expect(batch[1]?.id).toBe(batch[0]?.id);
        await q.start();
        await until(() => dead.includes(a.id), 1000, 'the job died');
        expect((await q.perform({ handler: 'charge', args: { order: 1 } })).duplicate).toBe(false);
      },
      { unique: true },
    );
  });
}
