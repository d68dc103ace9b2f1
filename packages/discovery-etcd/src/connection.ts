/**
 * The etcd3 client that shardwork creates: gRPC keepalive and reconnect
 * settings, one connection per etcd3 service client, fail-fast fault handling
 * (see `policies.ts`), TLS and authentication from the compiled options.
 *
 * @module
 */

import type { IOptions } from 'etcd3';
import type { CompiledEtcdOptions } from './options.js';
import { faultHandling } from './policies.js';

/** The etcd3 client options for `options` (which must not carry a client of their own). */
export function clientOptions(options: CompiledEtcdOptions): IOptions {
  const result: IOptions = {
    hosts: [...options.endpoints],
    grpcOptions: {
      // Notice a silently dead connection under an open stream (the watch).
      'grpc.keepalive_time_ms': options.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 0,
      // Reconnect quickly after a server restart (gRPC's default backoff grows to 120 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // One connection per etcd3 service client: when etcd3 rebuilds a client
      // after a failed call, it then really gets a new connection instead of
      // the shared, possibly frozen one.
      'grpc.use_local_subchannel_pool': 1,
    },
    faultHandling: faultHandling(options.endpoints.length),
  };
  const tls = options.tls;
  if (tls !== false && (tls.rootCertificate !== undefined || tls.privateKey !== undefined)) {
    // grpc's createSsl takes null for "system roots".
    const credentials: NonNullable<IOptions['credentials']> = {
      rootCertificate: tls.rootCertificate ?? (null as unknown as Buffer),
    };
    if (tls.privateKey !== undefined) credentials.privateKey = tls.privateKey;
    if (tls.certChain !== undefined) credentials.certChain = tls.certChain;
    result.credentials = credentials;
  }
  if (options.auth !== undefined) {
    const dialTimeoutMs = options.dialTimeoutMs;
    result.auth = {
      username: options.auth.username,
      password: options.auth.password,
      callOptions: () => ({ deadline: Date.now() + dialTimeoutMs }),
    };
  }
  return result;
}
