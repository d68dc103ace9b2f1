import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { until } from '@shardwork/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { privatePostgres } from './private-postgres.js';

describe('PostgreSQL alone: the partition owners coordinate in the same database by default', () => {
  const db = privatePostgres();
  const queues: JobQueue[] = [];
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.stop({ timeoutMs: 0 });
  });

  it('two consumers without a discovery option share the partitions, each job runs once', async () => {
    const url = `${db.server.url}?schema=solo&partitions=4&leaseTtlMs=1000`;
    const ran: string[] = [];
    for (let i = 0; i < 2; i++) {
      const q = createJobQueue(url, { adapter: { revokeTimeoutMs: 500 } });
      q.on('error', () => undefined);
      q.register('work', (_args, ctx) => void ran.push(ctx.id));
      queues.push(q);
      await q.start();
    }
    const producer = queues[0] as JobQueue;
    const ids = await producer.performMany(Array.from({ length: 40 }, (_, n) => ({ handler: 'work', args: { n } })));
    await until(() => ran.length >= 40, 15_000, 'every job ran');
    expect(new Set(ran)).toEqual(new Set(ids.map((r) => r.id)));
    expect(ran).toHaveLength(40);
    // Both own partitions, as the discovery tables of schema solo_discovery say.
    await until(
      async () => new Set((await producer.partitions()).map((p) => p.owner).filter(Boolean)).size === 2,
      15_000,
      'both consumers own partitions',
    );
    const tables = await db.server.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'solo_discovery'`,
    );
    expect(tables.length).toBeGreaterThan(0);
  });
});
