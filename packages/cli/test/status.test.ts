import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { stripVTControlCharacters } from 'node:util';
import { createDiscovery, Worker } from '@shardwork/core';
import {
  type EtcdCluster,
  freePort,
  type RedisTestServer,
  startEtcd,
  startRedisServer,
  until,
} from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/index.js';
import { buildOnce, fakeTty, run, spawnCli } from './helpers.js';

interface StatusDoc {
  degraded: boolean;
  services: {
    service: string;
    shardCount: number;
    members: { id: string; host: string; pid: number; standby: boolean; shards: number[]; leaseLeftMs?: number }[];
    shards: { shard: number; owner?: string; ownerName?: string; token?: number }[];
    unowned: number[];
  }[];
}

async function startWorkers(
  discovery: string,
  service: string,
  n: number,
  host = (i: number) => `host-${i}`,
): Promise<Worker[]> {
  const workers = Array.from(
    { length: n },
    (_, i) => new Worker({ service, shards: 4, discovery, leaseTtlMs: 1000, host: host(i), handler: () => undefined }),
  );
  await Promise.all(workers.map((w) => w.start()));
  await until(() => workers.reduce((sum, w) => sum + w.status().shards.length, 0) === 4, 20_000, 'all 4 shards owned');
  return workers;
}

describe('shardwork status (redis)', () => {
  let redis: RedisTestServer;
  const workers: Worker[] = [];

  beforeAll(async () => {
    await buildOnce();
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis?.stop();
  });

  it('lists members and all 4 shards with tokens as JSON, and as tables', async () => {
    const service = `svc-${randomUUID().slice(0, 8)}`;
    workers.push(...(await startWorkers(redis.url, service, 2)));

    const r = await run(['status', service, '--json', '--discovery', redis.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as StatusDoc;
    expect(doc.degraded).toBe(false);
    const s = doc.services[0];
    expect(s?.service).toBe(service);
    expect(s?.shardCount).toBe(4);
    expect(s?.members.map((m) => m.host).sort()).toEqual(['host-0', 'host-1']);
    expect(s?.members.every((m) => m.pid === process.pid)).toBe(true);
    // Redis says how long each lease has left (TTL 1000 ms, renewed every ~333 ms).
    for (const m of s?.members ?? []) {
      expect(m.leaseLeftMs).toBeGreaterThan(0);
      expect(m.leaseLeftMs).toBeLessThanOrEqual(1000);
    }
    expect(s?.shards.map((x) => x.shard)).toEqual([0, 1, 2, 3]);
    for (const shard of s?.shards ?? []) {
      expect(s?.members.map((m) => m.id)).toContain(shard.owner);
      expect(shard.token).toBeGreaterThan(0);
    }
    expect(s?.unowned).toEqual([]);

    // The env var works as well as the option, and with no names every service is listed.
    const table = await run(['status'], { env: { SHARDWORK_DISCOVERY: redis.url } });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`service ${service}`);
    expect(table.stdout).toContain('host-0');
    expect(table.stdout).toContain(`host-1:${process.pid}`);
    expect(table.stdout).not.toContain('(unowned)');
  });

  it('fits status to a narrow terminal: no line wider, no token cut (in-process main)', async () => {
    const service = `narrow-${randomUUID().slice(0, 8)}`;
    // Kubernetes-style pod names: the owner column is the one that gives way.
    workers.push(...(await startWorkers(redis.url, service, 2, (i) => `billing-sync-7d9f8b6c5d-x2x7${i}`)));
    const doc = JSON.parse((await run(['status', service, '--json', '--discovery', redis.url])).stdout) as StatusDoc;
    const tokens = (doc.services[0]?.shards ?? []).map((s) => String(s.token));
    expect(tokens).toHaveLength(4);
    // Redis tokens are 16 digits, as long as etcd's createRevision × 1000 + shard can get.
    for (const token of tokens) expect(token).toMatch(/^\d{16}$/);
    for (const columns of [40, 60, 80]) {
      const stdout = fakeTty(columns);
      const code = await main(['node', 'shardwork', 'status', service, '--discovery', redis.url], {
        stdout,
        stderr: fakeTty(),
        env: {},
      });
      expect(code).toBe(0);
      const lines = stdout.text().split('\n');
      // Coloured (a TTY): the escapes take no columns.
      expect(stdout.text()).toContain('\u001b[1mservice');
      for (const line of lines)
        expect(stripVTControlCharacters(line).length, `"${line}" at ${columns} columns`).toBeLessThanOrEqual(columns);
      for (const token of tokens)
        expect(
          lines.some((l) => l.includes(token)),
          `${token} at ${columns}`,
        ).toBe(true);
      // The revision is printed whole as well (on a line of its own if need be).
      expect(stdout.text()).toMatch(/revision \d+(\s|$)/);
    }
  });

  it('exits 3 when a service has shards nobody owns', async () => {
    const service = `idle-${randomUUID().slice(0, 8)}`;
    const d = await createDiscovery(redis.url);
    try {
      await d.ensureGroup(service, { shardCount: 4, leaseTtlMs: 10_000 });
      await d.register(
        service,
        { id: `m-${randomUUID()}`, host: 'lonely', pid: 4242, startedAt: Date.now(), weight: 1, labels: {} },
        10_000,
      );
      const r = await run(['--json', 'status', service, '--discovery', redis.url]);
      expect(r.code).toBe(3);
      const doc = JSON.parse(r.stdout) as StatusDoc;
      expect(doc.degraded).toBe(true);
      expect(doc.services[0]?.unowned).toEqual([0, 1, 2, 3]);
      expect(doc.services[0]?.members[0]?.standby).toBe(true);

      const t = await run(['status', service, '--discovery', redis.url]);
      expect(t.code).toBe(3);
      expect(t.stdout).toContain('unowned shards: 0, 1, 2, 3');
      expect(t.stdout).toContain('standby');
    } finally {
      await d.close();
    }
  });

  it('exits 4 for a named service the backend does not know', async () => {
    const r = await run(['status', `nope-${randomUUID().slice(0, 8)}`, '--discovery', redis.url]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/Service "nope-.*" not found/);
  });

  it('exits 2 naming the target when nobody listens on the port', async () => {
    const port = await freePort();
    const r = await run(['status', '--discovery', `redis://127.0.0.1:${port}`, '--timeout', '3000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`redis://127.0.0.1:${port}`);
    expect(r.ms).toBeLessThan(20_000);
  });

  it('exits 2 within the timeout when the backend accepts but never answers', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const r = await run(['status', 'x', '--discovery', `redis://127.0.0.1:${port}`, '--timeout', '1500']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`redis://127.0.0.1:${port}`);
      expect(r.ms).toBeLessThan(20_000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('exits 1 with a message on bad input', async () => {
    const bogus = await run(['status', '--discovery', 'bogus://x']);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain('bogus');
    const none = await run(['status']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('SHARDWORK_DISCOVERY');
    const unknown = await run(['status', '--frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('--frobnicate');
    const auth = await run(['dashboard', '--token', 't', '--user', 'u', '--password', 'p', '--discovery', redis.url]);
    expect(auth.code).toBe(1);
    expect(auth.stderr).toContain('--token');
    const timeout = await run(['status', '--timeout', 'soon', '--discovery', redis.url]);
    expect(timeout.code).toBe(1);
    expect(timeout.stderr).toContain('--timeout');
  });

  it('serves the dashboard until SIGINT, showing the services', async () => {
    const service = `dash-${randomUUID().slice(0, 8)}`;
    workers.push(...(await startWorkers(redis.url, service, 1)));
    const cli = spawnCli(['dashboard', '--port', '0', '--json', '--token', 's3cret', '--discovery', redis.url]);
    try {
      const { url } = JSON.parse(await cli.waitFor(/^\{/, 20_000)) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
      expect((await fetch(url)).status).toBe(401);
      const page = await fetch(url, { headers: { authorization: 'Bearer s3cret' } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(service);
    } finally {
      expect(await cli.stop()).toBe(0);
    }
  });

  it('refuses an in-process memory:// discovery with exit 1 (status, watch, dashboard)', async () => {
    for (const args of [['status'], ['watch'], ['dashboard', '--port', '0']]) {
      const r = await run([...args, '--discovery', 'memory://']);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain('--discovery memory:// is an in-process store: it lives inside the one process');
      expect(r.stderr).toContain('--discovery redis://127.0.0.1:6379');
    }
    const env = await run(['status'], { env: { SHARDWORK_DISCOVERY: 'memory://' } });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('SHARDWORK_DISCOVERY=memory:// is an in-process store');
    const jobs = await run(['dashboard', '--port', '0', '--discovery', redis.url, '--jobs', 'memory://']);
    expect(jobs.code).toBe(1);
    expect(jobs.stderr).toContain('--jobs memory:// is an in-process store');
  });

  it('warns on stderr when the dashboard listens beyond loopback without authentication', async () => {
    const open = spawnCli(['dashboard', '--host', '0.0.0.0', '--port', '0', '--json', '--discovery', redis.url]);
    try {
      const { port } = JSON.parse(await open.waitFor(/^\{/, 20_000)) as { port: number };
      const stderr = await open.waitForStderr(/WITHOUT AUTHENTICATION/, 5_000);
      expect(stderr).toContain(
        `shardwork: WARNING: the dashboard listens on 0.0.0.0:${port}, which is reachable from the network`,
      );
      expect(stderr).toContain('retry, delete, cancel, promote and pause jobs');
      expect(stderr).toContain('--token <secret>');
      expect(stderr).toContain('--user <name> --password <secret>');
    } finally {
      expect(await open.stop()).toBe(0);
    }
    // With a token, or on loopback, there is nothing to warn about.
    for (const args of [['--host', '0.0.0.0', '--token', 's3cret'], []]) {
      const quiet = spawnCli(['dashboard', ...args, '--port', '0', '--json', '--discovery', redis.url]);
      await quiet.waitFor(/^\{/, 20_000);
      expect(await quiet.stop()).toBe(0);
      expect(quiet.stderr()).toBe('');
    }
  });

  it('documents the exit codes in --help', async () => {
    for (const args of [['--help'], ['status', '--help'], ['watch', '--help'], ['dashboard', '--help']]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Exit codes:');
      expect(r.stdout).toContain('3  status: a service is degraded');
    }
    const jobs = await run(['jobs', 'enqueue', '--help']);
    expect(jobs.code).toBe(0);
    expect(jobs.stdout).toContain('argsJson');
  });
});

describe('shardwork status (etcd)', () => {
  let etcd: EtcdCluster;
  let workers: Worker[] = [];

  beforeAll(async () => {
    await buildOnce();
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await etcd?.stop();
  });

  it('lists members and owned shards of an etcd service', async () => {
    const service = `etcd-${randomUUID().slice(0, 8)}`;
    workers = await startWorkers(etcd.url, service, 2);
    const r = await run(['status', '--json', '--discovery', etcd.url]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as StatusDoc;
    const s = doc.services.find((x) => x.service === service);
    expect(s?.members).toHaveLength(2);
    expect(s?.shards.filter((x) => x.token !== undefined)).toHaveLength(4);
    // etcd's listing does not carry lease times: the CLI asks for them (whole seconds, TTL 1 s).
    for (const m of s?.members ?? []) {
      expect(m.leaseLeftMs).toBeGreaterThanOrEqual(0);
      expect(m.leaseLeftMs).toBeLessThanOrEqual(1000);
    }
  });
});
