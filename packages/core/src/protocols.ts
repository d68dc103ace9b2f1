/**
 * Things chosen by URL, like goworker's `SetDiscovery(protocol, creator)`: a
 * registry of protocol → factory, with built-in protocols, protocols served by
 * separate packages that are imported on first use (nothing is imported or
 * registered at import time), an environment variable and a default URL.
 * Discovery backends and job queue adapters are two registries of this kind.
 *
 * @module
 */

import { InvalidOptionsError, UnknownProtocolError } from './errors.js';
import { redactUrl } from './url-secrets.js';

/**
 * Creates an instance from a URL. It receives the URL text, since some
 * protocols accept what `URL` cannot parse (`etcd://h1:2379,h2:2379`).
 */
export type ProtocolFactory<T, A extends unknown[] = []> = (url: string, ...args: A) => T | Promise<T>;

/** How a {@link ProtocolRegistry} is set up. */
export interface ProtocolRegistryOptions<T, A extends unknown[]> {
  /** What the URLs are for, in messages: `discovery backend`, `job queue adapter`. */
  readonly kind: string;
  /** The option name reported in errors, e.g. `discovery`. */
  readonly option: string;
  /** Environment variable read when no URL is given. */
  readonly env: string;
  /** URL used when neither a URL nor the environment variable is given. */
  readonly fallback: string;
  /** Example URLs for error messages. */
  readonly examples: readonly string[];
  /** Protocols served in this package. */
  readonly builtin: Readonly<Record<string, ProtocolFactory<T, A>>>;
  /** Protocols served by another package: protocol → package name. */
  readonly packages: Readonly<Record<string, string>>;
  /** The function a package of {@link ProtocolRegistryOptions.packages} exports, e.g. `discoveryFromUrl`. */
  readonly exportName: string;
}

/** A URL that passed {@link ProtocolRegistry.parse}. */
export interface ParsedProtocolUrl {
  /** The URL text as given (or read from the environment). */
  readonly url: string;
  /** Lower-case scheme without `:`. */
  readonly protocol: string;
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

/** A protocol registry; see the module documentation. */
export class ProtocolRegistry<T, A extends unknown[] = []> {
  readonly #o: ProtocolRegistryOptions<T, A>;
  readonly #factories = new Map<string, ProtocolFactory<T, A>>();

  constructor(options: ProtocolRegistryOptions<T, A>) {
    this.#o = options;
  }

  /** Name of the environment variable read when no URL is given. */
  get env(): string {
    return this.#o.env;
  }

  /**
   * Register (or replace) the factory of a protocol.
   * @param protocol - scheme without `:` or `//`, lower case.
   */
  register(protocol: string, factory: ProtocolFactory<T, A>): void {
    if (!/^[a-z][a-z0-9+.-]*$/.test(protocol)) {
      throw new InvalidOptionsError('protocol', protocol, 'a URL scheme such as "redis" (lower case, no "://")');
    }
    if (typeof factory !== 'function') throw new InvalidOptionsError('factory', factory, 'a function');
    this.#factories.set(protocol, factory);
  }

  /** Protocols understood right now, sorted. */
  protocols(): string[] {
    return [
      ...new Set([...Object.keys(this.#o.builtin), ...Object.keys(this.#o.packages), ...this.#factories.keys()]),
    ].sort();
  }

  /**
   * Resolve the URL (argument, else the environment variable, else the
   * fallback) and check it synchronously: a `scheme://` URL of a known
   * protocol. Throws `InvalidOptionsError` or `UnknownProtocolError`.
   */
  parse(url?: string): ParsedProtocolUrl {
    // An empty variable counts as unset (a Compose or Kubernetes file that lists it without a value).
    const fromEnv = process.env[this.#o.env] === '' ? undefined : process.env[this.#o.env];
    const raw = url ?? fromEnv ?? this.#o.fallback;
    const match = typeof raw === 'string' ? SCHEME.exec(raw) : null;
    if (match?.[1] === undefined) {
      const from = url === undefined && fromEnv !== undefined ? ` (from $${this.#o.env})` : '';
      throw new InvalidOptionsError(
        this.#o.option,
        typeof raw === 'string' ? redactUrl(raw) : raw,
        `a URL such as ${this.#o.examples.map((e) => `"${e}"`).join(', ')}${from}`,
      );
    }
    const protocol = match[1].toLowerCase();
    if (!this.#factories.has(protocol) && !(protocol in this.#o.builtin) && !(protocol in this.#o.packages)) {
      throw new UnknownProtocolError(this.#o.kind, protocol, this.protocols());
    }
    return { url: raw, protocol };
  }

  /** Create an instance from a URL (see {@link ProtocolRegistry.parse}), loading its package on first use. */
  async create(url: string | undefined, ...args: A): Promise<T> {
    const parsed = this.parse(url);
    const factory = this.#factories.get(parsed.protocol) ?? this.#o.builtin[parsed.protocol];
    if (factory !== undefined) return factory(parsed.url, ...args);
    const pkg = this.#o.packages[parsed.protocol] as string;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pkg)) as Record<string, unknown>;
    } catch (cause) {
      throw new UnknownProtocolError(
        this.#o.kind,
        parsed.protocol,
        this.protocols(),
        `Install ${pkg} (pnpm add ${pkg}).`,
        cause,
      );
    }
    const load = mod[this.#o.exportName];
    if (typeof load !== 'function') {
      throw new UnknownProtocolError(
        this.#o.kind,
        parsed.protocol,
        this.protocols(),
        `${pkg} does not export ${this.#o.exportName}().`,
      );
    }
    return (load as ProtocolFactory<T, A>)(parsed.url, ...args);
  }
}
