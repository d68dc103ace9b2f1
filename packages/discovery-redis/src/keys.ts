/**
 * The key layout: every key of a service shares the hash tag `{service}`, so
 * that each Lua script touches one slot and runs on Redis Cluster.
 *
 * @module
 */

import { InvalidOptionsError } from '@shardwork/core';

/** Names of the Redis keys (and the channel) of one service. */
export interface RedisServiceKeys {
  /** ZSET member id → lease expiry in ms of server `TIME`. */
  readonly members: string;
  /** HASH member id → JSON of the member info, TTL and join order. */
  readonly info: string;
  /** HASH shard → `"<owner>|<token>"`. */
  readonly claims: string;
  /** Fencing token counter. */
  readonly token: string;
  /** Join order counter. */
  readonly seq: string;
  /** Revision counter. */
  readonly rev: string;
  /** HASH with the `shardCount`. */
  readonly meta: string;
  /** Pub/sub channel that announces every change with the new revision. */
  readonly events: string;
  /** The seven keys in the order every script expects them as `KEYS`. */
  readonly all: readonly string[];
}

/** Key names of `service` under `prefix`. */
export function serviceKeys(prefix: string, service: string): RedisServiceKeys {
  if (typeof service !== 'string' || service === '') {
    throw new InvalidOptionsError('service', service, 'a non-empty string');
  }
  const base = `${prefix}{${service}}:`;
  const k = {
    members: `${base}members`,
    info: `${base}info`,
    claims: `${base}claims`,
    token: `${base}token`,
    seq: `${base}seq`,
    rev: `${base}rev`,
    meta: `${base}meta`,
  };
  return {
    ...k,
    events: `${base}events`,
    all: [k.members, k.info, k.claims, k.token, k.seq, k.rev, k.meta],
  };
}
