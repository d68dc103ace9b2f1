/**
 * Backends chosen by URL, like goworker's `SetDiscovery(protocol, creator)`.
 * `memory://` is built in; `redis://`, `rediss://`, `etcd://` and `etcds://`
 * load their packages on first use (nothing is imported or registered at
 * import time). {@link registerDiscovery} adds or overrides a protocol.
 *
 * @module
 */

import { InvalidOptionsError, UnknownProtocolError } from '../errors.js';
import type { Discovery } from './contract.js';
import { MemoryDiscovery, sharedMemoryStore } from './memory.js';

/**
 * Creates a backend connection from a URL. It receives the URL text, since some
 * backends accept what `URL` cannot parse (`etcd://h1:2379,h2:2379`).
 */
export type DiscoveryFactory = (url: string) => Discovery | Promise<Discovery>;

/** Name of the environment variable read when no discovery is configured. */
export const DISCOVERY_ENV = 'SHARDWORK_DISCOVERY';

const factories = new Map<string, DiscoveryFactory>();

/** Protocols served by a separate package, loaded on first use. */
const lazyPackages: Readonly<Record<string, string>> = {
  redis: '@shardwork/discovery-redis',
  rediss: '@shardwork/discovery-redis',
  etcd: '@shardwork/discovery-etcd',
  etcds: '@shardwork/discovery-etcd',
};

/** The shape a backend package exports so that its protocols load by URL. */
export interface DiscoveryModule {
  /** Create a connection from a URL of one of the package's protocols. */
  discoveryFromUrl(url: string): Discovery | Promise<Discovery>;
}

/** `memory://` is the process-wide store, `memory://name` a separate named one. */
function memoryFactory(url: string): Discovery {
  return new MemoryDiscovery({ store: sharedMemoryStore(url.slice('memory://'.length).replace(/\/+$/, '')) });
}

/**
 * Register (or replace) the factory for a protocol, e.g. `registerDiscovery('consul', url => …)`.
 * @param protocol - scheme without `:` or `//`, lower case.
 */
export function registerDiscovery(protocol: string, factory: DiscoveryFactory): void {
  if (!/^[a-z][a-z0-9+.-]*$/.test(protocol)) {
    throw new InvalidOptionsError('protocol', protocol, 'a URL scheme such as "redis" (lower case, no "://")');
  }
  factories.set(protocol, factory);
}

/** Protocols that {@link createDiscovery} understands right now. */
export function registeredProtocols(): string[] {
  return [...new Set(['memory', ...Object.keys(lazyPackages), ...factories.keys()])].sort();
}

/**
 * Create a backend connection from a URL such as `redis://127.0.0.1:6379` or
 * `etcd://10.0.0.1:2379,10.0.0.2:2379`. Without a URL, reads the
 * `SHARDWORK_DISCOVERY` environment variable, then falls back to `memory://`.
 */
export async function createDiscovery(url?: string): Promise<Discovery> {
  const raw = url ?? process.env[DISCOVERY_ENV] ?? 'memory://';
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  if (match?.[1] === undefined) {
    throw new InvalidOptionsError(
      'discovery',
      raw,
      'a URL such as "memory://", "redis://host:6379" or "etcd://host:2379"',
    );
  }
  const protocol = match[1].toLowerCase();
  const factory = factories.get(protocol) ?? (protocol === 'memory' ? memoryFactory : undefined);
  if (factory !== undefined) return factory(raw);
  const pkg = lazyPackages[protocol];
  if (pkg === undefined) throw new UnknownProtocolError(protocol, registeredProtocols());
  let mod: Partial<DiscoveryModule>;
  try {
    mod = (await import(pkg)) as Partial<DiscoveryModule>;
  } catch (cause) {
    const error = new UnknownProtocolError(protocol, registeredProtocols(), `Install ${pkg} (pnpm add ${pkg}).`);
    (error as { cause?: unknown }).cause = cause;
    throw error;
  }
  if (typeof mod.discoveryFromUrl !== 'function') {
    throw new UnknownProtocolError(protocol, registeredProtocols(), `${pkg} does not export discoveryFromUrl().`);
  }
  return mod.discoveryFromUrl(raw);
}
