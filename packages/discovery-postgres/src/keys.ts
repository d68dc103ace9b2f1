/**
 * Names of a service's records as messages and `InvalidRecord.key` show them
 * (`<schema>.members/<service>/<id>`: table, then the row's key), and the
 * LISTEN/NOTIFY channel of a service.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { InvalidOptionsError } from '@shardwork/core';

/** Longest service name accepted (a row key, not an identifier, so this is generous). */
export const MAX_SERVICE_LENGTH = 1000;

/** The names of one service's records. */
export interface ServiceRecords {
  /** The group record (`services` row). */
  readonly group: string;
  /** A member row. */
  member(id: string): string;
  /** A claim row. */
  claim(shard: number): string;
  /** The NOTIFY channel: `sw_` and 40 hex digits of a hash of schema and service (channel names are identifiers of at most 63 bytes). */
  readonly channel: string;
}

/** Check a service name: a non-empty string without NUL. */
export function checkService(service: unknown): string {
  if (typeof service !== 'string' || service === '' || service.length > MAX_SERVICE_LENGTH || service.includes('\0')) {
    throw new InvalidOptionsError(
      'service',
      service,
      `a non-empty string of at most ${MAX_SERVICE_LENGTH} characters without NUL`,
    );
  }
  return service;
}

/** The record names of `service` in `schema`. */
export function serviceRecords(schema: string, service: string): ServiceRecords {
  checkService(service);
  const hash = createHash('sha256').update(`${schema}\0${service}`).digest('hex').slice(0, 40);
  return {
    group: `${schema}.services/${service}`,
    member: (id) => `${schema}.members/${service}/${id}`,
    claim: (shard) => `${schema}.claims/${service}/${shard}`,
    channel: `sw_${hash}`,
  };
}
