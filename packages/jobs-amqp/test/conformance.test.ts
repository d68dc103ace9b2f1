import { createJobQueue } from '@shardwork/jobs';
import { describeJobQueueConformance } from '@shardwork/jobs/testing';
import { AmqpJobAdapter } from '@shardwork/jobs-amqp';
import { type RabbitTestServer, startRabbitServer } from '@shardwork/testkit';
import { afterAll, beforeAll } from 'vitest';

// One private broker for the file; every test has its own prefix, so no test sees another's queues.
let broker: RabbitTestServer;

beforeAll(async () => {
  broker = await startRabbitServer();
});

afterAll(async () => {
  await broker?.stop();
});

describeJobQueueConformance({
  name: 'amqp',
  durable: true,
  refusesUnknownHandlers: false,
  unsupported: [
    'unique',
    'priority',
    'pause',
    'admin',
    'ordered',
    'jobId',
    'jobPriority',
    'lookup',
    'results',
    'cancel',
  ],
  // An instance rather than a URL: a URL's package loads at start, and the suite expects refusals at register.
  create: (options, namespace) =>
    createJobQueue(new AmqpJobAdapter({ url: `${broker.url}?prefix=${namespace}` }), options),
});

describeJobQueueConformance({
  name: 'amqp, partitioned',
  durable: true,
  refusesUnknownHandlers: false,
  unsupported: ['unique', 'priority', 'pause', 'admin', 'jobId', 'jobPriority', 'lookup', 'results', 'cancel'],
  create: (options, namespace) =>
    createJobQueue(
      new AmqpJobAdapter({
        url: `${broker.url}?prefix=${namespace}&partitions=4&leaseTtlMs=1000`,
        discovery: `memory://${namespace}`,
        revokeTimeoutMs: 2000,
      }),
      options,
    ),
});
