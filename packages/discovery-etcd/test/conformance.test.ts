import { describeDiscoveryConformance } from '@shardwork/core/testing';
import { EtcdDiscovery, serviceKeys } from '@shardwork/discovery-etcd';
import { type EtcdCluster, startEtcd } from '@shardwork/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll } from 'vitest';

let etcd: EtcdCluster;
let raw: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: etcd.endpoints });
});

afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

describeDiscoveryConformance({
  name: 'etcd',
  ttlMs: 1000,
  connect: () => new EtcdDiscovery({ endpoints: etcd.endpoints }),
  async writeGarbage(service) {
    const keys = serviceKeys('sw', service);
    await raw.put(keys.member('garbage')).value('{not json');
    await raw.put(`${keys.root}claims/not-a-number`).value('m-x');
  },
});
