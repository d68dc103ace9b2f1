import { describeDiscoveryConformance } from '@shardwork/core/testing';
import { PostgresDiscovery } from '../src/index.js';
import { SYSTEM_URL, systemPostgres, uniqueSchema } from './support.js';

const schema = uniqueSchema('conf');
const { admin } = systemPostgres(schema);

describeDiscoveryConformance({
  name: 'postgres',
  ttlMs: 1000,
  connect: () => new PostgresDiscovery({ url: SYSTEM_URL, schema }),
  async writeGarbage(service) {
    await admin.query(
      `INSERT INTO "${schema}".members (service, id, record, join_seq, ttl_ms, expires_at)
       VALUES ($1, 'garbage', '{not json', 1, 60000, clock_timestamp() + interval '1 minute')`,
      [service],
    );
    await admin.query(`INSERT INTO "${schema}".claims (service, shard, owner, token) VALUES ($1, 7, 'm-nobody', 1)`, [
      service,
    ]);
  },
});
