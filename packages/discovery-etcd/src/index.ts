/**
 * The etcd discovery backend of shardwork: leases, linearizable claims by
 * transaction (in batches), fencing tokens from etcd revisions, and watches
 * that deliver the changes themselves.
 *
 * ```ts
 * import { Worker } from '@shardwork/core';
 * import { EtcdDiscovery } from '@shardwork/discovery-etcd';
 *
 * const discovery = new EtcdDiscovery({
 *   endpoints: ['10.0.0.1:2379', '10.0.0.2:2379', '10.0.0.3:2379'],
 *   prefix: 'prod/sw',
 * });
 * const worker = new Worker({ service: 'billing-sync', shards: 8, discovery, handler });
 * // or by URL, loaded on first use: discovery: 'etcd://10.0.0.1:2379,10.0.0.2:2379?prefix=prod/sw'
 * ```
 *
 * @module
 */

export type { EtcdKeyScope } from './errors.js';
export { EtcdAuthError, EtcdPermissionError, EtcdTlsError } from './errors.js';
export { discoveryFromUrl, EtcdDiscovery } from './etcd-discovery.js';
export type { ServiceKey, ServiceKeys } from './keys.js';
export { parseServiceKey, serviceKeys } from './keys.js';
export { leaseTtlSeconds } from './leases.js';
export type {
  CompiledEtcdOptions,
  CompiledEtcdTls,
  EtcdAuthOptions,
  EtcdDiscoveryOptions,
  EtcdTlsOptions,
} from './options.js';
export { compileEtcdOptions } from './options.js';
export { parseEtcdUrl, redactUrl } from './url.js';
