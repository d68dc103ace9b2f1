import { randomUUID } from 'node:crypto';
import { Worker } from '@shardwork/core';
import { type RedisTestServer, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, run, type Spawned, spawnCli } from './helpers.js';

describe('shardwork watch (redis)', () => {
  let redis: RedisTestServer;
  let workers: Worker[] = [];
  let cli: Spawned | undefined;

  async function cluster(service: string): Promise<Worker[]> {
    workers = [0, 1].map(
      (i) =>
        new Worker({
          service,
          shards: 4,
          discovery: redis.url,
          leaseTtlMs: 1000,
          host: `w${i}`,
          handler: () => undefined,
        }),
    );
    await Promise.all(workers.map((w) => w.start()));
    await until(() => workers.every((w) => w.status().shards.length === 2), 20_000, 'shards spread over both workers');
    return workers;
  }

  beforeAll(async () => {
    await buildOnce();
    redis = await startRedisServer();
  });
  afterEach(async () => {
    await cli?.stop();
    await Promise.all(workers.map((w) => w.stop()));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('prints a frame, then a movement line when a worker stops; exits 0 on SIGINT', async () => {
    const service = `watch-${randomUUID().slice(0, 8)}`;
    const [w0] = await cluster(service);
    cli = spawnCli(['watch', service, '--interval', '200', '--discovery', redis.url]);
    await cli.waitFor(new RegExp(`service ${service}.*owned 4`), 15_000);
    await cli.waitFor(/w0:\d+/, 5_000);
    const mark = cli.lines.length;
    await w0?.stop();
    // Every shard of w0 moves to w1 (possibly through "(none)" between two polls).
    const line = await cli.waitFor(/shard \d: .* -> w1:\d+ \(token \d+\)/, 15_000, mark);
    expect(line).toContain(service);
    await cli.waitFor(/member left: w0:\d+/, 15_000, mark);
    expect(await cli.stop()).toBe(0);
  });

  it('prints ndjson: a snapshot line, then shard:moved and member:left', async () => {
    const service = `watchj-${randomUUID().slice(0, 8)}`;
    const [, w1] = await cluster(service);
    cli = spawnCli(['--json', 'watch', service, '--interval', '200', '--discovery', redis.url]);
    const first = JSON.parse(await cli.waitFor(/"type":"snapshot"/, 15_000)) as {
      status: { service: string; health: string; shards: { owner?: string }[] };
    };
    expect(first.status.service).toBe(service);
    expect(first.status.health).toBe('ok');
    expect(first.status.shards.filter((s) => s.owner !== undefined)).toHaveLength(4);
    const mark = cli.lines.length;
    const gone = w1?.status().instance;
    await w1?.stop();
    const moved = JSON.parse(await cli.waitFor(/"type":"shard:moved".*"toName":"w0:/, 15_000, mark)) as {
      service: string;
      shard: number;
      to: string;
      token: number;
    };
    expect(moved.service).toBe(service);
    expect(moved.token).toBeGreaterThan(0);
    const left = JSON.parse(await cli.waitFor(/"type":"member:left"/, 15_000, mark)) as { id: string };
    expect(left.id).toBe(gone);
    // Every line is a JSON document.
    for (const l of cli.lines.filter((x) => x !== '')) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('shows a service whose replicas all stopped as stopped, with the change of health', async () => {
    const service = `watchs-${randomUUID().slice(0, 8)}`;
    await cluster(service);
    cli = spawnCli(['watch', service, '--interval', '200', '--discovery', redis.url]);
    await cli.waitFor(new RegExp(`service ${service}.*owned 4.* ok$`), 15_000);
    const mark = cli.lines.length;
    await Promise.all(workers.map((w) => w.stop()));
    await cli.waitFor(new RegExp(`${service}: ok -> stopped$`), 15_000, mark);
    const frame = await cli.waitFor(new RegExp(`^service ${service} .* stopped$`), 15_000, mark);
    expect(frame).toContain('owned 0  members 0');
    const after = cli.lines.slice(mark).join('\n');
    expect(after).not.toMatch(/DEGRADED|unowned shards/);
    expect(after).toContain(`shardwork services forget ${service}`);

    // Forgotten while watched by name: the backend holds nothing for it any more.
    const forget = await run(['services', 'forget', service, '--discovery', redis.url]);
    expect(forget.code).toBe(0);
    await cli.waitFor(new RegExp(`${service}: stopped -> absent$`), 15_000, mark);
    await cli.waitFor(/^ {2}absent: the backend holds no record of it$/, 15_000, mark);
    expect(await cli.stop()).toBe(0);
  });
});
