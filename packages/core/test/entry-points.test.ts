/**
 * One entry point per audience: `@shardwork/core` for applications,
 * `@shardwork/core/backend` for backend and adapter authors. What moved is
 * still reachable from the main entry point (deprecated), as the same values.
 */

import * as main from '@shardwork/core';
import * as backend from '@shardwork/core/backend';
import { describe, expect, it } from 'vitest';

// (Copied into plain records to look names up by string.)
const mainApi: Readonly<Record<string, unknown>> = { ...main };
const backendApi: Readonly<Record<string, unknown>> = { ...backend };

describe('entry points', () => {
  it('gives backend and adapter authors their building blocks', () => {
    for (const name of [
      'registerDiscovery',
      'ProtocolRegistry',
      'encodeMemberRecord',
      'parseMemberRecord',
      'readTlsFiles',
      'explainTlsError',
      'plan',
      'settlesWithin',
      'StateMachine',
      'retrying',
      'backoffDelays',
      'DiscoveryUnavailableError',
      'LeaseExpiredError',
      'isRetryableError',
    ]) {
      expect(typeof backendApi[name], name).toBe('function');
    }
  });

  it('keeps what moved reachable from the main entry point, as the same values', () => {
    const moved = [
      'registerDiscovery',
      'ProtocolRegistry',
      'encodeMemberRecord',
      'parseMemberRecord',
      'readTlsFiles',
      'explainTlsError',
      'plan',
      'settlesWithin',
    ];
    for (const name of moved) expect(mainApi[name], name).toBe(backendApi[name]);
    // The new building blocks are not part of the application API.
    expect(mainApi.retrying).toBeUndefined();
    expect(mainApi.StateMachine).toBeUndefined();
    // The application side of the registry stays.
    expect(typeof main.createDiscovery).toBe('function');
    expect(typeof main.parseDiscoveryUrl).toBe('function');
  });
});
