import { randomUUID } from 'node:crypto';
import { createDiscovery, type Discovery, Worker } from '@shardwork/core';
import { registerDiscovery } from '@shardwork/core/backend';
import {
  type EtcdCluster,
  freePort,
  type RedisTestServer,
  startEtcd,
  startRedisServer,
  until,
} from '@shardwork/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/index.js';
import { buildOnce, fakeTty, run } from './helpers.js';

interface StatusDoc {
  degraded: boolean;
  services: { service: string; health: string; degraded: boolean; unowned: number[]; members: unknown[] }[];
}

const unique = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Start `n` workers of `service` (4 shards unless told, lease 1 s) and wait until they own every shard. */
async function startWorkers(discovery: string, service: string, n: number, shards = 4): Promise<Worker[]> {
  const workers = Array.from({ length: n }, (_, i) => {
    const worker = new Worker({
      service,
      shards,
      discovery,
      leaseTtlMs: 1000,
      host: `host-${i}`,
      handler: () => undefined,
    });
    // A new group on Redis waits one TTL before claiming; known, and not these tests' subject.
    worker.on('claims:held-back', () => undefined);
    return worker;
  });
  await Promise.all(workers.map((w) => w.start()));
  await until(
    () => workers.reduce((sum, w) => sum + w.status().shards.length, 0) === shards,
    20_000,
    `all ${shards} shards owned`,
  );
  return workers;
}

/** Run a service's workers and stop them all: what is left is a stopped service. */
async function stoppedService(discovery: string, service: string): Promise<void> {
  const workers = await startWorkers(discovery, service, 2);
  await Promise.all(workers.map((w) => w.stop()));
}

/** Status, forget and their exit codes against one real backend. */
function stoppedServiceSuite(name: string, backend: () => string): void {
  describe(`a stopped service on ${name}`, () => {
    const workers: Worker[] = [];
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.stop()));
    });

    it('is shown as stopped, not DEGRADED: exit 5 when named, 0 in the overview', async () => {
      const url = backend();
      const [stopped, running] = [unique('stopped'), unique('running')];
      await stoppedService(url, stopped);
      workers.push(...(await startWorkers(url, running, 1)));

      const json = await run(['status', stopped, '--json', '--discovery', url]);
      expect(json.stderr).toBe('');
      expect(json.code).toBe(5);
      const doc = JSON.parse(json.stdout) as StatusDoc;
      expect(doc.degraded).toBe(false);
      expect(doc.services).toEqual([
        expect.objectContaining({
          service: stopped,
          health: 'stopped',
          degraded: false,
          members: [],
          unowned: [0, 1, 2, 3],
        }),
      ]);

      const text = await run(['status', stopped, '--discovery', url]);
      expect(text.code).toBe(5);
      expect(text.stdout).toMatch(
        new RegExp(`^service ${stopped} {2}shards 4 {2}owned 0 {2}members 0 {2}revision \\d+ {2}stopped\\n`),
      );
      expect(text.stdout).toContain(`If it is gone for good: shardwork services forget ${stopped}`);
      expect(text.stdout).not.toMatch(/DEGRADED|unowned|\(unowned\)/);

      // In the overview a stopped service is listed as stopped and is no alarm.
      const all = await run(['status', '--json', '--discovery', url]);
      expect(all.code).toBe(0);
      const health = Object.fromEntries(
        (JSON.parse(all.stdout) as StatusDoc).services.map((s) => [s.service, s.health]),
      );
      expect(health[stopped]).toBe('stopped');
      expect(health[running]).toBe('ok');
      // Named with a running one, the stopped one still says it does not run.
      expect((await run(['status', running, '--discovery', url])).code).toBe(0);
      expect((await run(['status', running, stopped, '--discovery', url])).code).toBe(5);
    });

    it('services forget removes its records (exit 0), then there is nothing to forget (exit 4)', async () => {
      const url = backend();
      const service = unique('forget');
      await stoppedService(url, service);

      const forgot = await run(['services', 'forget', service, '--discovery', url]);
      expect(forgot.stderr).toBe('');
      expect(forgot.code).toBe(0);
      expect(forgot.stdout).toMatch(new RegExp(`^forgot service ${service}: its records are removed from discovery `));

      const gone = await run(['status', service, '--discovery', url]);
      expect(gone.code).toBe(4);
      expect(gone.stderr).toContain(`Service "${service}" not found`);
      const listed = JSON.parse((await run(['status', '--json', '--discovery', url])).stdout) as StatusDoc;
      expect(listed.services.map((s) => s.service)).not.toContain(service);

      const again = await run(['services', 'forget', service, '--discovery', url]);
      expect(again.code).toBe(4);
      expect(again.stderr).toMatch(
        new RegExp(`^shardwork: Nothing to forget: discovery .+ holds no records of service "${service}"\\n$`),
      );

      // A later start creates it afresh, with other settings if need be.
      workers.push(...(await startWorkers(url, service, 1, 8)));
      const back = JSON.parse((await run(['status', service, '--json', '--discovery', url])).stdout) as StatusDoc;
      expect(back.services[0]).toMatchObject({ health: 'ok', unowned: [] });

      const other = unique('json');
      await stoppedService(url, other);
      const json = await run(['--json', 'services', 'forget', other, '--discovery', url]);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual({ service: other, forgotten: true });
    });

    it('refuses while a member lives: exit 6, naming the live members, and removes nothing', async () => {
      const url = backend();
      const service = unique('live');
      workers.push(...(await startWorkers(url, service, 2)));
      const r = await run(['services', 'forget', service, '--discovery', url]);
      expect(r.code).toBe(6);
      expect(r.stdout).toBe('');
      // host:pid (short id) of each, as `status` shows them.
      const named = workers.map((w, i) => `host-${i}:${process.pid} (${(w.status().instance ?? '').slice(0, 8)})`);
      expect(r.stderr).toContain(`shardwork: Not forgotten: service "${service}" is running: 2 live members: `);
      for (const member of named) expect(r.stderr).toContain(member);
      expect(r.stderr).toContain('Stop its replicas');
      const still = await run(['status', service, '--discovery', url]);
      expect(still.code).toBe(0);
    });
  });
}

let redis: RedisTestServer;
let etcd: EtcdCluster;
/** A key prefix per test run: `status` without names sees only this file's services. */
const prefix = unique('cli');

beforeAll(async () => {
  await buildOnce();
  [redis, etcd] = await Promise.all([startRedisServer(), startEtcd()]);
});
afterAll(async () => {
  await Promise.all([redis?.stop(), etcd?.stop()]);
});

stoppedServiceSuite('Redis', () => `${redis.url}?prefix=${prefix}:`);
stoppedServiceSuite('etcd', () => etcd.url);

describe('services forget: input and backend errors', () => {
  it('exit 1 on bad input', async () => {
    const none = await run(['services', 'forget', '--discovery', redis.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("missing required argument 'service'");
    const bogus = await run(['services', 'forget', 'x', '--discovery', 'bogus://x']);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain('bogus');
    const memory = await run(['services', 'forget', 'x', '--discovery', 'memory://']);
    expect(memory.code).toBe(1);
    expect(memory.stderr).toContain('--discovery memory:// is an in-process store');
    const empty = await run(['services', 'forget', ' ', '--discovery', redis.url]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('give the name of a service');
  });

  it('exit 2 when the backend is unreachable or refuses (ACL)', async () => {
    const port = await freePort();
    const down = await run([
      'services',
      'forget',
      'x',
      '--discovery',
      `redis://127.0.0.1:${port}`,
      '--timeout',
      '2000',
    ]);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain(`redis://127.0.0.1:${port}`);

    const service = unique('acl');
    await stoppedService(`${redis.url}?prefix=${prefix}:`, service);
    // A user whose keys are another prefix's: Redis refuses the script on this one's keys.
    expect(await redis.command('ACL', 'SETUSER', 'narrow', 'reset', 'on', '>pw', '~other:*', '&other:*', '+@all')).toBe(
      '+OK\r\n',
    );
    const refused = await run([
      'services',
      'forget',
      service,
      '--discovery',
      `redis://narrow:pw@127.0.0.1:${redis.port}?prefix=${prefix}:`,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('NOPERM');
    expect(refused.stderr).toContain('narrow:***@');
    expect(refused.stderr).not.toContain(':pw@');
    // Nothing was removed.
    const still = await run(['status', service, '--json', '--discovery', `${redis.url}?prefix=${prefix}:`]);
    expect(still.code).toBe(5);
  });

  it('exit 1 with a clear message for a backend without forgetService (in-process main)', async () => {
    // A third-party backend written before forgetService existed: Redis's calls without that one.
    const opened: Discovery[] = [];
    registerDiscovery('bare', async (url) => {
      const real = await createDiscovery(url.replace(/^bare:/, 'redis:'));
      opened.push(real);
      return new Proxy(real, {
        get(target, property) {
          if (property === 'forgetService') return undefined;
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    });
    const service = unique('bare');
    await stoppedService(`${redis.url}?prefix=${prefix}:`, service);
    const stdout = fakeTty();
    const stderr = fakeTty();
    try {
      const code = await main(
        [
          'node',
          'shardwork',
          'services',
          'forget',
          service,
          '--discovery',
          `bare://127.0.0.1:${redis.port}?prefix=${prefix}:`,
        ],
        { stdout, stderr, env: {} },
      );
      expect(code).toBe(1);
      expect(stdout.text()).toBe('');
      expect(stderr.text()).toBe(
        `shardwork: The redis discovery backend (discovery bare://127.0.0.1:${redis.port}?prefix=${prefix}:) cannot forget a service: it does not implement forgetService. ` +
          `Remove the records of "${service}" with the backend's own tools.\n`,
      );
    } finally {
      await Promise.all(opened.map((d) => d.close()));
    }
  });

  it('documents the command and its exit codes in --help', async () => {
    const r = await run(['services', 'forget', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Remove the records of a stopped service');
    expect(r.stdout).toContain('5  status <service>: a named service is stopped');
    expect(r.stdout).toContain('6  services forget: refused, the service still has live members');
    expect((await run(['--help'])).stdout).toMatch(/services\s+Operate on services/);
  });
});
