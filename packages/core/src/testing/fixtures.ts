/**
 * Fixtures of the conformance suite, also handy in a backend's own tests.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import type { MemberInfo } from '../discovery/contract.js';

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
