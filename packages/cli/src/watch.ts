/**
 * `shardwork watch`: poll the discovery backend and report what changed.
 * Polling (rather than `Discovery.watch`) keeps one code path for every
 * backend and makes the refresh rate the user's choice.
 *
 * @module
 */

import { errorMessage, type ServiceHealth, sleep } from '@shardwork/core';
import type { DiscoveryClient } from './backend.js';
import { fitLine } from './format.js';
import { collectStatus, renderService, type ServiceStatus } from './status.js';

/** One change between two polls, as `watch --json` prints it (one per line). */
export type WatchEvent =
  | { readonly type: 'snapshot'; readonly at: string; readonly status: ServiceStatus }
  | {
      readonly type: 'shard:moved';
      readonly at: string;
      readonly service: string;
      readonly shard: number;
      readonly from: string | undefined;
      readonly fromName: string | undefined;
      readonly to: string | undefined;
      readonly toName: string | undefined;
      readonly token: number | undefined;
    }
  | {
      readonly type: 'member:joined';
      readonly at: string;
      readonly service: string;
      readonly id: string;
      readonly host: string;
      readonly pid: number;
    }
  | {
      readonly type: 'member:left';
      readonly at: string;
      readonly service: string;
      readonly id: string;
      readonly name: string;
    }
  | {
      /** The service's health changed, e.g. `ok` -> `stopped` when its last replica stopped. */
      readonly type: 'service:health';
      readonly at: string;
      readonly service: string;
      readonly from: ServiceHealth;
      readonly to: ServiceHealth;
    }
  | { readonly type: 'service:removed'; readonly at: string; readonly service: string };

/** The changes from `before` to `after` of one service; names of departed members come from `before`. */
export function diff(before: ServiceStatus, after: ServiceStatus, at: string): WatchEvent[] {
  const events: WatchEvent[] = [];
  const service = after.service;
  const oldMembers = new Map(before.members.map((m) => [m.id, m]));
  const newMembers = new Map(after.members.map((m) => [m.id, m]));
  for (const m of after.members) {
    if (!oldMembers.has(m.id)) events.push({ type: 'member:joined', at, service, id: m.id, host: m.host, pid: m.pid });
  }
  for (const m of before.members) {
    if (!newMembers.has(m.id)) events.push({ type: 'member:left', at, service, id: m.id, name: `${m.host}:${m.pid}` });
  }
  const oldShards = new Map(before.shards.map((s) => [s.shard, s]));
  for (const s of after.shards) {
    const o = oldShards.get(s.shard);
    if (o?.owner === s.owner && o?.token === s.token) continue;
    events.push({
      type: 'shard:moved',
      at,
      service,
      shard: s.shard,
      from: o?.owner,
      fromName: o?.ownerName,
      to: s.owner,
      toName: s.ownerName,
      token: s.token,
    });
  }
  if (before.health !== after.health) {
    events.push({ type: 'service:health', at, service, from: before.health, to: after.health });
  }
  return events;
}

/** A human line for a change event (`shard 3: a -> b (token 17)`). */
export function describeEvent(e: WatchEvent): string {
  const time = e.at.slice(11, 19);
  switch (e.type) {
    case 'snapshot':
      return `${time} ${e.status.service}: snapshot`;
    case 'shard:moved':
      return `${time} ${e.service} shard ${e.shard}: ${e.fromName ?? '(none)'} -> ${e.toName ?? '(none)'}${e.token === undefined ? '' : ` (token ${e.token})`}`;
    case 'member:joined':
      return `${time} ${e.service} member joined: ${e.host}:${e.pid} (${e.id})`;
    case 'member:left':
      return `${time} ${e.service} member left: ${e.name} (${e.id})`;
    case 'service:health':
      return `${time} ${e.service}: ${e.from} -> ${e.to}`;
    case 'service:removed':
      return `${time} ${e.service}: service gone`;
  }
}

/** Options of {@link runWatch}. */
export interface WatchOptions {
  readonly names: readonly string[];
  readonly intervalMs: number;
  readonly json: boolean;
  /** Redraw in place (clear the screen) instead of appending frames. */
  readonly tty: boolean;
  readonly color: boolean;
  /** Terminal width to fit the screen to (`tty` only): no token is cut by the terminal's own wrapping. */
  readonly width?: number | undefined;
  readonly write: (text: string) => void;
  readonly warn: (text: string) => void;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

/** Poll until `signal` aborts. Backend errors are reported and retried, never fatal. */
export async function runWatch(client: DiscoveryClient, o: WatchOptions): Promise<void> {
  let previous = new Map<string, ServiceStatus>();
  const recent: string[] = [];
  let lastShape = '';
  let failing = false;
  while (!o.signal.aborted) {
    try {
      const statuses = await collectStatus(client, o.names, { strict: false });
      if (failing) o.warn(`${client.target} reachable again`);
      failing = false;
      const at = new Date().toISOString();
      const events: WatchEvent[] = [];
      const current = new Map(statuses.map((s) => [s.service, s]));
      for (const s of statuses) {
        const before = previous.get(s.service);
        if (before === undefined) events.push({ type: 'snapshot', at, status: s });
        else events.push(...diff(before, s, at));
      }
      for (const service of previous.keys()) {
        if (!current.has(service)) events.push({ type: 'service:removed', at, service });
      }
      previous = current;
      if (o.json) {
        for (const e of events) o.write(`${JSON.stringify(e)}\n`);
      } else {
        const lines = events.filter((e) => e.type !== 'snapshot').map(describeEvent);
        recent.push(...lines);
        recent.splice(0, Math.max(0, recent.length - 10));
        const width = o.tty ? o.width : undefined;
        const frame =
          statuses.length === 0 ? 'no services' : statuses.map((s) => renderService(s, o.color, width)).join('\n\n');
        if (o.tty) {
          // Clear screen + home: a full redraw each tick, recent changes below.
          const changes = recent.map((l) => fitLine(l, width)).join('\n');
          o.write(`\x1b[2J\x1b[H${new Date().toISOString()}  (Ctrl-C to quit)\n${frame}\n\n${changes}\n`);
        } else {
          // In a pipe there is no screen to redraw: print a frame only when it
          // changed, and each change as one line.
          for (const line of lines) o.write(`${line}\n`);
          if (shape(statuses) !== lastShape) o.write(`--- ${at}\n${frame}\n`);
        }
        lastShape = shape(statuses);
      }
    } catch (error) {
      if (!failing) o.warn(`${errorMessage(error)} (retrying every ${o.intervalMs} ms)`);
      failing = true;
    }
    await sleepUnlessAborted(o.intervalMs, o.signal);
  }
}

/** What a frame shows minus the clocks (age, lease left), which change every tick. */
function shape(statuses: readonly ServiceStatus[]): string {
  return JSON.stringify(
    statuses.map((s) => [
      s.service,
      s.health,
      s.shardCount,
      s.members.map((m) => [m.id, m.draining, m.shards]),
      s.shards,
    ]),
  );
}

/** Wait `ms`, or less when `signal` aborts (a stop ends the wait, not the watch with an error). */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => undefined);
}
