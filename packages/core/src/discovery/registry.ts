/**
 * Backends chosen by URL, like goworker's `SetDiscovery(protocol, creator)`.
 * `memory://` is built in; `redis://`, `rediss://` (and their `+cluster` and
 * `+sentinel` forms), `etcd://`, `etcds://`, `postgres://` and `postgresql://`
 * load their packages on first use (nothing is imported or registered at import time). {@link registerDiscovery} adds or overrides a protocol.
 *
 * @module
 */

import { type ParsedProtocolUrl, type ProtocolFactory, ProtocolRegistry } from '../protocols.js';
import type { Discovery } from './contract.js';
import { MemoryDiscovery, sharedMemoryStore } from './memory.js';

/**
 * Creates a backend connection from a URL. It receives the URL text, since some
 * backends accept what `URL` cannot parse (`etcd://h1:2379,h2:2379`).
 */
export type DiscoveryFactory = ProtocolFactory<Discovery>;

/** Name of the environment variable read when no discovery is configured. */
export const DISCOVERY_ENV = 'SHARDWORK_DISCOVERY';

/** The shape a backend package exports so that its protocols load by URL. */
export interface DiscoveryModule {
  /** Create a connection from a URL of one of the package's protocols. */
  discoveryFromUrl(url: string): Discovery | Promise<Discovery>;
}

/** `memory://` is the process-wide store, `memory://name` a separate named one. */
function memoryFactory(url: string): Discovery {
  return new MemoryDiscovery({ store: sharedMemoryStore(url.slice('memory://'.length).replace(/\/+$/, '')) });
}

const registry = new ProtocolRegistry<Discovery>({
  kind: 'discovery backend',
  option: 'discovery',
  env: DISCOVERY_ENV,
  fallback: 'memory://',
  examples: ['memory://', 'redis://host:6379', 'etcd://host:2379'],
  builtin: { memory: memoryFactory },
  packages: {
    redis: '@shardwork/discovery-redis',
    rediss: '@shardwork/discovery-redis',
    'redis+cluster': '@shardwork/discovery-redis',
    'rediss+cluster': '@shardwork/discovery-redis',
    'redis+sentinel': '@shardwork/discovery-redis',
    'rediss+sentinel': '@shardwork/discovery-redis',
    etcd: '@shardwork/discovery-etcd',
    etcds: '@shardwork/discovery-etcd',
    postgres: '@shardwork/discovery-postgres',
    postgresql: '@shardwork/discovery-postgres',
  },
  exportName: 'discoveryFromUrl' satisfies keyof DiscoveryModule,
});

/**
 * Register (or replace) the factory for a protocol, e.g. `registerDiscovery('consul', url => …)`.
 * @param protocol - scheme without `:` or `//`, lower case.
 */
export function registerDiscovery(protocol: string, factory: DiscoveryFactory): void {
  registry.register(protocol, factory);
}

/** Protocols that {@link createDiscovery} understands right now. */
export function registeredProtocols(): string[] {
  return registry.protocols();
}

/**
 * Check a discovery URL without connecting (the argument, else
 * `SHARDWORK_DISCOVERY`, else `memory://`): throws `InvalidOptionsError` for a
 * malformed URL and `UnknownProtocolError` for an unknown scheme.
 */
export function parseDiscoveryUrl(url?: string): ParsedProtocolUrl {
  return registry.parse(url);
}

/**
 * Create a backend connection from a URL such as `redis://127.0.0.1:6379` or
 * `etcd://10.0.0.1:2379,10.0.0.2:2379`. Without a URL, reads the
 * `SHARDWORK_DISCOVERY` environment variable, then falls back to `memory://`.
 */
export function createDiscovery(url?: string): Promise<Discovery> {
  return registry.create(url);
}
