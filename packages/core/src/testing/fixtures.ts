/**
 * Fixtures of the conformance suite, also handy in a backend's own tests:
 * random service names and members, and one-shard claims and releases.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import type { ClaimResult, Discovery, MemberInfo } from '../discovery/contract.js';

/** A random service name, so that every test owns its keyspace. */
export function uniqueService(prefix = 'conf'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** A plausible {@link MemberInfo} with a random id. */
export function memberInfo(overrides: Partial<MemberInfo> = {}): MemberInfo {
  return {
    id: `m-${randomBytes(6).toString('hex')}`,
    host: 'test-host',
    pid: process.pid,
    startedAt: Date.now(),
    weight: 1,
    labels: {},
    ...overrides,
  };
}

/**
 * Claim one shard through {@link Discovery.claimMany} (the contract has no
 * single-shard form) and return its one result.
 *
 * ```ts
 * const claim = await claimOne(discovery, service, member.id, 3);
 * if (claim.ok) await releaseOne(discovery, service, member.id, 3, claim.token);
 * ```
 */
export async function claimOne(
  discovery: Discovery,
  service: string,
  memberId: string,
  shard: number,
): Promise<ClaimResult> {
  const { results } = await discovery.claimMany(service, memberId, [shard]);
  const [result] = results;
  if (results.length !== 1 || result === undefined) {
    throw new Error(`claimMany of one shard answered ${results.length} results`);
  }
  return result;
}

/**
 * Release one claim through {@link Discovery.releaseMany}: `true` when it was
 * `memberId`'s with `token` and is deleted now.
 */
export async function releaseOne(
  discovery: Discovery,
  service: string,
  memberId: string,
  shard: number,
  token: number,
): Promise<boolean> {
  const results = await discovery.releaseMany(service, memberId, [{ shard, token }]);
  if (results.length !== 1) throw new Error(`releaseMany of one claim answered ${results.length} results`);
  return results[0] === true;
}
