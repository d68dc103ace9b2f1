import type { JobRecord } from '@shardwork/jobs/adapter';
import { describe, expect, it } from 'vitest';
import { recordJson, serializeRecord } from '../src/records.js';

const record: JobRecord = {
  id: 'j1',
  handler: 'report',
  queue: 'default',
  key: 'tenant-7',
  args: { month: 11, big: 1.5e300 },
  argsJson: '{"month":11,"big":12345678901234567}', // as the producer wrote it: spliced in, never parsed again
  enqueuedAt: 1_796_660_724_426,
  runAt: 1_796_660_724_426,
  uniqueKey: undefined,
  ordered: true,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

describe('stored job records', () => {
  it('keep what the producer gave, the traceparent too, with the args as checked', () => {
    const raw = serializeRecord(record);
    expect(raw).toContain('"args":{"month":11,"big":12345678901234567}');
    const back = recordJson(raw, 'j1', 'report', 'default');
    expect(back).toMatchObject({
      key: 'tenant-7',
      ordered: true,
      enqueuedAt: record.enqueuedAt,
      traceparent: record.traceparent,
    });
    const { traceparent: _, ...plain } = record;
    expect(serializeRecord(plain)).not.toContain('traceparent');
    expect(recordJson(serializeRecord(plain), 'j1', 'report', 'default')).not.toHaveProperty('traceparent');
  });
});
