import { createJobQueue } from '@shardwork/jobs';
import { describeJobQueueConformance } from '@shardwork/jobs/testing';

describeJobQueueConformance({
  name: 'memory (SimpleQueue)',
  durable: false,
  refusesUnknownHandlers: true,
  fakeTime: true,
  create: (options) => createJobQueue('memory://', options),
});
