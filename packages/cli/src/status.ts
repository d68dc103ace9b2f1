/**
 * `shardwork status`: what the discovery backend says about each service,
 * as plain data ({@link ServiceStatus}) and as tables.
 *
 * @module
 */

import {
  inspectSnapshot,
  type ServiceHealth,
  type ServiceInspection,
  type Snapshot,
  serviceHealth,
} from '@shardwork/core';
import { createColors } from 'picocolors';
import type { DiscoveryClient } from './backend.js';
import { NotFoundError } from './errors.js';
import { duration, renderTable, shortId, wrapWords } from './format.js';

/** One live member as `status` shows it. */
export interface MemberStatus {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Wall-clock start, ms since the epoch. */
  readonly startedAt: number;
  /** Now minus `startedAt` by this machine's clock (display only). */
  readonly ageMs: number;
  /** Lease time left as the backend saw it, ms; `undefined` when the backend does not say. */
  readonly leaseLeftMs: number | undefined;
  readonly draining: boolean;
  /** Owns no shard. */
  readonly standby: boolean;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Shards it owns, ascending. */
  readonly shards: readonly number[];
}

/** One shard and its owner. */
export interface ShardStatus {
  readonly shard: number;
  /** Member id of the owner; `undefined` when nobody owns it. */
  readonly owner: string | undefined;
  /** `host:pid` of the owner. */
  readonly ownerName: string | undefined;
  readonly token: number | undefined;
}

/** What `status --json` prints per service. */
export interface ServiceStatus {
  readonly service: string;
  readonly revision: string;
  /** Stored shard count; `undefined` when the group record is missing or unreadable. */
  readonly shardCount: number | undefined;
  readonly members: readonly MemberStatus[];
  readonly shards: readonly ShardStatus[];
  /** Shards nobody owns, ascending. */
  readonly unowned: readonly number[];
  /** Records the backend could not parse. */
  readonly invalid: readonly { readonly key: string; readonly reason: string }[];
  /**
   * `ok` (live members own every shard), `degraded` (it runs, but shards are
   * unowned or its shard count is unreadable), `stopped` (records but no
   * member and no claim: every replica stopped; not an alarm) or `absent`
   * (the backend holds nothing for it). See `ServiceHealth` of `@shardwork/core`.
   */
  readonly health: ServiceHealth;
  /** `health === 'degraded'`: it runs with shards nobody owns (a stopped service is not degraded). */
  readonly degraded: boolean;
}

/**
 * Turn a snapshot into a {@link ServiceStatus}: the health of an
 * `inspectSnapshot()` result as it is, else derived from the snapshot
 * (`serviceHealth`, the same rule).
 */
export function describeSnapshot(service: string, snap: Snapshot | ServiceInspection, now = Date.now()): ServiceStatus {
  const health = 'health' in snap ? snap.health : serviceHealth(snap).health;
  const members = [...snap.members].sort((a, b) => a.joinSeq - b.joinSeq || a.id.localeCompare(b.id));
  const byId = new Map(members.map((m) => [m.id, m]));
  const claims = new Map(snap.claims.map((c) => [c.shard, c]));
  const count = snap.shardCount ?? Math.max(0, ...snap.claims.map((c) => c.shard + 1));
  const shards: ShardStatus[] = [];
  for (let shard = 0; shard < count; shard++) {
    const claim = claims.get(shard);
    const owner = claim === undefined ? undefined : byId.get(claim.owner);
    shards.push({
      shard,
      owner: claim?.owner,
      ownerName: owner === undefined ? claim && shortId(claim.owner) : `${owner.host}:${owner.pid}`,
      token: claim?.token,
    });
  }
  const unowned = shards.filter((s) => s.owner === undefined).map((s) => s.shard);
  return {
    service,
    revision: snap.revision,
    shardCount: snap.shardCount,
    members: members.map((m) => {
      const owned = snap.claims
        .filter((c) => c.owner === m.id)
        .map((c) => c.shard)
        .sort((a, b) => a - b);
      return {
        id: m.id,
        host: m.host,
        pid: m.pid,
        startedAt: m.startedAt,
        ageMs: Math.max(0, now - m.startedAt),
        leaseLeftMs: m.expiresInMs,
        draining: m.draining === true,
        standby: owned.length === 0,
        weight: m.weight,
        labels: m.labels,
        shards: owned,
      };
    }),
    shards,
    unowned,
    invalid: snap.invalid.map((r) => ({ key: r.key, reason: r.reason })),
    health,
    degraded: health === 'degraded',
  };
}

/** The services to show: the named ones, else every service the backend lists. */
export async function serviceNames(client: DiscoveryClient, names: readonly string[]): Promise<string[]> {
  if (names.length > 0) return [...new Set(names)];
  const listed = await client.call(async (d) => {
    if (d.services === undefined) {
      throw new NotFoundError(
        `The ${d.kind} discovery backend cannot list services: name them (shardwork status <service>)`,
      );
    }
    return d.services();
  });
  return [...listed].sort();
}

/** Snapshot every service; a named service the backend knows nothing about is {@link NotFoundError}. */
export async function collectStatus(
  client: DiscoveryClient,
  names: readonly string[],
  options: { strict: boolean },
): Promise<ServiceStatus[]> {
  const services = await serviceNames(client, names);
  const result: ServiceStatus[] = [];
  for (const service of services) {
    const snap = await client.call((d) => inspectSnapshot(d, service));
    if (options.strict && snap.health === 'absent') {
      throw new NotFoundError(`Service "${service}" not found in ${client.target}`);
    }
    result.push(describeSnapshot(service, snap));
  }
  return result;
}

/** What a service's health reads as at the end of its header line. */
function healthWord(s: ServiceStatus, c: Colours): string {
  switch (s.health) {
    case 'ok':
      return c.green('ok');
    case 'degraded':
      return c.red(
        s.shardCount === undefined && s.unowned.length === 0
          ? 'DEGRADED: shard count unreadable'
          : `DEGRADED: ${s.unowned.length} unowned`,
      );
    case 'stopped':
      return c.dim('stopped');
    case 'absent':
      return c.dim('absent');
  }
}

/** The colours `renderService` uses (picocolors, or plain text). */
type Colours = Record<'bold' | 'red' | 'green' | 'yellow' | 'dim', (text: string) => string>;

/**
 * Always colours: whether to colour is the CLI's decision (a TTY, no
 * `NO_COLOR`, no `--no-color`), not picocolors' own guess from `CI` or fd 1.
 */
const COLOURS: Colours = createColors(true);

const PLAIN: Colours = {
  bold: (x) => x,
  red: (x) => x,
  green: (x) => x,
  yellow: (x) => x,
  dim: (x) => x,
};

/**
 * Render one service as text (header line, members table, shard table).
 * A stopped service is one dim paragraph instead of tables of nothing: its
 * shards are unowned because nobody runs it, which is no alarm.
 * @param width - terminal width: lines and tables are fitted to it without
 *   cutting a number (see `renderTable`); `undefined` in a pipe.
 */
export function renderService(s: ServiceStatus, color = false, width?: number): string {
  const c = color ? COLOURS : PLAIN;
  const owned = (s.shardCount ?? s.shards.length) - s.unowned.length;
  const lines: string[] = [];
  // Broken between its fields on a narrow terminal, so the revision stays whole.
  lines.push(
    ...wrapWords(
      [
        c.bold(`service ${s.service}`),
        `shards ${s.shardCount ?? '?'}`,
        `owned ${owned}`,
        `members ${s.members.length}`,
        `revision ${s.revision}`,
        healthWord(s, c),
      ],
      width,
      '  ',
    ),
  );
  if (s.health === 'stopped' || s.health === 'absent') {
    const words =
      s.health === 'stopped'
        ? [
            ...`stopped: no live member and no claim, every replica stopped; the backend keeps its records${s.shardCount === undefined ? '' : ` (${s.shardCount} shards)`}. If it is gone for good:`.split(
              ' ',
            ),
            // One word: the command is never broken across lines.
            `shardwork services forget ${s.service}`,
          ]
        : 'absent: the backend holds no record of it'.split(' ');
    const indent = '  ';
    const wrapped = wrapWords(words, width === undefined ? undefined : width - indent.length);
    lines.push(...wrapped.map((l) => c.dim(indent + l)));
    for (const r of s.invalid) lines.push(c.yellow(`invalid record ${r.key}: ${r.reason}`));
    return lines.join('\n');
  }
  if (s.members.length > 0) {
    const rows = s.members.map((m) => [
      shortId(m.id),
      m.host,
      String(m.pid),
      duration(m.ageMs),
      duration(m.leaseLeftMs),
      m.shards.join(',') || '-',
      m.draining ? 'draining' : m.standby ? 'standby' : 'active',
    ]);
    lines.push(
      renderTable(['member', 'host', 'pid', 'age', 'lease left', 'shards', 'state'], rows, {
        width,
        flexible: { 1: 'middle', 5: 'middle' },
      }),
    );
  } else {
    lines.push(c.yellow('  no live members'));
  }
  if (s.shards.length > 0) {
    const rows = s.shards.map((sh) => [
      String(sh.shard),
      sh.ownerName ?? '(unowned)',
      sh.owner === undefined ? '-' : shortId(sh.owner),
      sh.token === undefined ? '-' : String(sh.token),
    ]);
    // The owner (`host:pid`) gives way; shard, member and token are printed whole.
    lines.push(renderTable(['shard', 'owner', 'member', 'token'], rows, { width, flexible: { 1: 'middle' } }));
  }
  if (s.unowned.length > 0) {
    const label = 'unowned shards: ';
    const list = wrapWords(s.unowned.map(String), width === undefined ? undefined : width - label.length, ', ');
    lines.push(c.red(list.map((l, i) => (i === 0 ? label : ' '.repeat(label.length)) + l).join('\n')));
  }
  for (const r of s.invalid) lines.push(c.yellow(`invalid record ${r.key}: ${r.reason}`));
  return lines.join('\n');
}
