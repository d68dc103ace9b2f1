/**
 * A newcomer's first service on Redis (issue 21): the one-TTL wait before the
 * first claims is announced with its reason and end, and a service whose
 * replicas all stopped reads as stopped and can be forgotten.
 */

import { type ClaimsHeldBack, inspectSnapshot, ServiceRunningError, Worker } from '@shardwork/core';
import { uniqueService } from '@shardwork/core/testing';
import { eventually, type RedisTestServer, startRedisServer } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisDiscovery } from '../src/index.js';

const TTL = 1000;

describe('a new service on Redis, with real workers', () => {
  let server: RedisTestServer;
  const connections: RedisDiscovery[] = [];
  const connect = (): RedisDiscovery => {
    const d = new RedisDiscovery({ url: server.url });
    connections.push(d);
    return d;
  };

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await Promise.all(connections.splice(0).map((c) => c.close()));
    await server?.stop();
  });

  it('says why it claims nothing for one TTL and until when, then runs; stopped, it can be forgotten', async () => {
    const service = uniqueService('newcomer');
    const worker = new Worker({ service, shards: 2, leaseTtlMs: TTL, discovery: connect(), handler: () => undefined });
    const held: ClaimsHeldBack[] = [];
    worker.on('claims:held-back', (e) => held.push(e));
    const began = Date.now();
    await worker.start();
    expect(held).toHaveLength(1);
    const [event] = held as [ClaimsHeldBack];
    expect(event).toMatchObject({ reason: 'young-group' });
    expect(event.waitMs).toBeGreaterThan(TTL / 2);
    expect(event.waitMs).toBeLessThanOrEqual(TTL);
    expect(event.untilMs - began).toBeLessThanOrEqual(TTL + 100);
    expect(event.message).toContain('the redis backend cannot tell a new service from one whose data it lost');
    expect(worker.status().shards).toEqual([]);
    await eventually(() => expect(worker.status().shards).toHaveLength(2), 5000);
    expect(Date.now()).toBeGreaterThanOrEqual(event.untilMs - 50);

    const tool = connect();
    expect((await inspectSnapshot(tool, service)).health).toBe('ok');
    await expect(tool.forgetService(service)).rejects.toBeInstanceOf(ServiceRunningError);
    await worker.stop();
    expect(await inspectSnapshot(tool, service)).toMatchObject({ health: 'stopped', unowned: [0, 1] });
    expect(await tool.services()).toContain(service);
    expect(await tool.forgetService(service)).toBe(true);
    expect((await inspectSnapshot(tool, service)).health).toBe('absent');
    expect(await tool.services()).not.toContain(service);
  });
});
