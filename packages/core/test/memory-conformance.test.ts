import { MemoryDiscovery, MemoryStore } from '@shardwork/core';
import { describeDiscoveryConformance } from '@shardwork/core/testing';

const store = new MemoryStore();

describeDiscoveryConformance({
  name: 'memory',
  ttlMs: 200,
  connect: () => new MemoryDiscovery({ store }),
});

describeDiscoveryConformance({
  name: 'memory with latency',
  ttlMs: 200,
  connect: () => new MemoryDiscovery({ store, latencyMs: 2 }),
});
