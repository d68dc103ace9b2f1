/**
 * Key layout of the etcd backend.
 *
 * ```
 * <prefix>/<service>/meta              {"shardCount":8,"leaseTtlMs":3000}   no lease, created once
 * <prefix>/<service>/members/<id>      the member record (core's codec)    the member's lease
 * <prefix>/<service>/claims/<shard>    owner member id                     the owner's lease
 * <prefix>/<service>/released          empty; rewritten by every release   no lease
 * ```
 *
 * The `released` marker exists for {@link EtcdDiscovery.version}: a claim
 * created and released again would otherwise leave the service's key count
 * and highest mod revision as they were before.
 *
 * Service names and member ids are percent-encoded in keys, so a `/` in a
 * name cannot make one service's keys fall under another's prefix.
 *
 * @module
 */

/** Keys of one service. */
export interface ServiceKeys {
  /** `<prefix>/<service>/`: every key of the service starts with it. */
  readonly root: string;
  /** The group metadata key. */
  readonly meta: string;
  /** The marker key that every release transaction rewrites. */
  readonly released: string;
  /** The key of member `id`. */
  member(id: string): string;
  /** The claim key of shard `shard`. */
  claim(shard: number): string;
}

/** Build the keys of `service` under `prefix`. */
export function serviceKeys(prefix: string, service: string): ServiceKeys {
  const root = `${prefix}/${encodeURIComponent(service)}/`;
  return {
    root,
    meta: `${root}meta`,
    released: `${root}released`,
    member: (id) => `${root}members/${encodeURIComponent(id)}`,
    claim: (shard) => `${root}claims/${shard}`,
  };
}

/** What a key under a service root names. */
export type ServiceKey =
  | { readonly kind: 'meta' }
  | { readonly kind: 'marker' }
  | { readonly kind: 'member'; readonly id: string }
  | { readonly kind: 'claim'; readonly shard: number }
  | { readonly kind: 'invalid'; readonly reason: string };

const SHARD = /^(0|[1-9]\d{0,8})$/;

/** Classify `key`, a key under `root` (see {@link serviceKeys}). Never throws. */
export function parseServiceKey(root: string, key: string): ServiceKey {
  const rest = key.startsWith(root) ? key.slice(root.length) : key;
  if (rest === 'meta') return { kind: 'meta' };
  if (rest === 'released') return { kind: 'marker' };
  if (rest.startsWith('members/')) {
    try {
      return { kind: 'member', id: decodeURIComponent(rest.slice('members/'.length)) };
    } catch {
      return { kind: 'invalid', reason: 'member key is not percent-encoded' };
    }
  }
  if (rest.startsWith('claims/')) {
    const shardText = rest.slice('claims/'.length);
    if (!SHARD.test(shardText)) {
      return { kind: 'invalid', reason: `claim key has no shard number (${JSON.stringify(shardText)})` };
    }
    return { kind: 'claim', shard: Number(shardText) };
  }
  return { kind: 'invalid', reason: 'unknown key under the service prefix' };
}

/** The `range_end` that makes a range cover every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] ?? 0;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  // Only 0xff bytes: every key after the prefix ("\0" means "to the end").
  return Buffer.from([0]);
}
