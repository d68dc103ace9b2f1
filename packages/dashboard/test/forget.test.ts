import { createDiscovery, type Discovery, Worker } from '@shardwork/core';
import { type EtcdCluster, type RedisTestServer, startEtcd, startRedisServer, until } from '@shardwork/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dashboard, type DashboardOptions, startDashboard } from '../src/index.js';
import { randomName } from './support.js';

const csrfOf = (html: string): string => /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] ?? '';

interface ServicesApi {
  services: { name: string; health: string }[];
  canForget: boolean;
  html: string;
}

/** POST a form as the page would, and return the status and the flash message shown on the page it redirects to. */
async function post(
  dashboard: Dashboard,
  path: string,
  fields: Record<string, string>,
): Promise<{ status: number; flash: string | undefined }> {
  const csrf = csrfOf(await (await fetch(`${dashboard.url}/`)).text());
  const res = await fetch(`${dashboard.url}${path}`, {
    method: 'POST',
    body: new URLSearchParams({ _csrf: csrf, back: '/', ...fields }),
    headers: { origin: dashboard.url },
    redirect: 'manual',
  });
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  if (res.status !== 303 || cookie === '') return { status: res.status, flash: undefined };
  const page = await (await fetch(`${dashboard.url}/`, { headers: { cookie } })).text();
  return { status: res.status, flash: /<div class="flash[^"]*" role="\w+">([^<]*)<\/div>/.exec(page)?.[0] };
}

/** The `<section>` of one service in a page or fragment ('' when there is none). */
const sectionOf = (html: string, service: string): string =>
  new RegExp(`<section[^>]*data-service="${service}"[\\s\\S]*?</section>`).exec(html)?.[0] ?? '';

const api = async (dashboard: Dashboard): Promise<ServicesApi> =>
  (await (await fetch(`${dashboard.url}/api/services`)).json()) as ServicesApi;

/** A worker of `service` (4 shards, lease 1 s) on `discovery`, started. */
async function startWorker(discovery: string, service: string, host: string): Promise<Worker> {
  const worker = new Worker({ service, shards: 4, discovery, leaseTtlMs: 1000, host, handler: () => undefined });
  // A new group on Redis waits one TTL before claiming; known, and not this test's subject.
  worker.on('claims:held-back', () => undefined);
  await worker.start();
  return worker;
}

/** The forget action against one real backend. */
function forgetSuite(name: string, url: () => string): void {
  describe(`forget on ${name}`, () => {
    const opened: Dashboard[] = [];
    const open = async (options: Partial<DashboardOptions> = {}): Promise<Dashboard> => {
      const d = await startDashboard({ discovery: url(), port: 0, ...options });
      opened.push(d);
      return d;
    };
    afterAll(async () => {
      for (const d of opened) await d.close();
    });

    it('shows a stopped service as stopped, forgets it, and then has nothing to forget', async () => {
      const service = randomName('stopped');
      const worker = await startWorker(url(), service, 'web-0');
      const d = await open();
      await until(
        async () => (await api(d)).services.find((s) => s.name === service)?.health === 'ok',
        20_000,
        'running and every shard owned',
      );
      const live = sectionOf((await api(d)).html, service);
      expect(live).toContain('data-health="ok"');
      expect(live).not.toContain('/actions/forget');
      await worker.stop();
      await until(
        async () => (await api(d)).services.find((s) => s.name === service)?.health === 'stopped',
        10_000,
        'stopped',
      );
      const stopped = sectionOf(await (await fetch(`${d.url}/`)).text(), service);
      expect(stopped).toMatch(
        new RegExp(`^<section class="card idle" data-service="${service}" data-health="stopped">`),
      );
      expect(stopped).toContain(`<input type="hidden" name="service" value="${service}">`);

      const forgot = await post(d, '/actions/forget', { service });
      expect(forgot).toEqual({
        status: 303,
        flash: `<div class="flash" role="status">Forgot service ${service}: its records are removed</div>`,
      });
      const tool = await createDiscovery(url());
      try {
        expect(await tool.services?.()).not.toContain(service);
        expect((await tool.snapshot(service)).shardCount).toBeUndefined();
      } finally {
        await tool.close();
      }
      expect((await api(d)).services.map((s) => s.name)).not.toContain(service);

      const again = await post(d, '/actions/forget', { service });
      expect(again.flash).toBe(
        `<div class="flash error" role="alert">Nothing to forget: the discovery backend holds no records of service &quot;${service}&quot; (forgotten already?)</div>`,
      );
    });

    it('refuses to forget a running service, naming its live member', async () => {
      const service = randomName('running');
      const worker = await startWorker(url(), service, 'web-7');
      try {
        const d = await open({ services: [service] });
        const { flash } = await post(d, '/actions/forget', { service });
        const id = worker.status().instance ?? '';
        expect(flash).toBe(
          `<div class="flash error" role="alert">Not forgotten: service &quot;${service}&quot; is running: 1 live member: web-7:${process.pid} (${id}). Stop its replicas first.</div>`,
        );
        expect((await api(d)).services).toEqual([expect.objectContaining({ name: service })]);
        expect(worker.status().state).toBe('running');
      } finally {
        await worker.stop();
      }
    });
  });
}

let redis: RedisTestServer;
let etcd: EtcdCluster;
beforeAll(async () => {
  [redis, etcd] = await Promise.all([startRedisServer(), startEtcd()]);
});
afterAll(async () => {
  await Promise.all([redis?.stop(), etcd?.stop()]);
});

forgetSuite('Redis', () => redis.url);
forgetSuite('etcd', () => etcd.url);

describe('forget rules', () => {
  const opened: Dashboard[] = [];
  afterAll(async () => {
    for (const d of opened) await d.close();
  });

  /** A service whose only worker has stopped: its group record stays. */
  async function stoppedService(): Promise<string> {
    const service = randomName('stopped');
    const worker = await startWorker(redis.url, service, 'web-1');
    await worker.stop();
    return service;
  }

  const exists = async (service: string): Promise<boolean> => {
    const tool = await createDiscovery(redis.url);
    try {
      return (await tool.snapshot(service)).shardCount !== undefined;
    } finally {
      await tool.close();
    }
  };

  it('read-only: no Forget button, and the POST is refused with 403', async () => {
    const service = await stoppedService();
    const d = await startDashboard({ discovery: redis.url, port: 0, services: [service], readOnly: true });
    opened.push(d);
    const page = await (await fetch(`${d.url}/`)).text();
    expect(page).toContain(`data-service="${service}" data-health="stopped"`);
    // Only the header's search by id (a GET) is a form.
    expect(page).not.toContain('<form method="post"');
    expect(page).not.toContain('>Forget</button>');
    expect((await post(d, '/actions/forget', { service })).status).toBe(403);
    expect(await exists(service)).toBe(true);
  });

  it('needs the CSRF token and the own origin, and the auth', async () => {
    const service = await stoppedService();
    const d = await startDashboard({ discovery: redis.url, port: 0, services: [service], auth: { token: 'tk' } });
    opened.push(d);
    const bearer = { authorization: 'Bearer tk' };
    const csrf = csrfOf(await (await fetch(`${d.url}/`, { headers: bearer })).text());
    const send = (body: Record<string, string>, headers: Record<string, string>): Promise<Response> =>
      fetch(`${d.url}/actions/forget`, {
        method: 'POST',
        body: new URLSearchParams(body),
        headers,
        redirect: 'manual',
      });
    expect((await send({ service, _csrf: csrf }, {})).status).toBe(401);
    expect((await send({ service }, bearer)).status).toBe(403);
    expect((await send({ service, _csrf: csrf }, { ...bearer, origin: 'http://evil.example' })).status).toBe(403);
    expect(await exists(service)).toBe(true);
    const ok = await send({ service, _csrf: csrf, back: '/' }, bearer);
    expect(ok.status).toBe(303);
    expect(await exists(service)).toBe(false);
  });

  it('refuses a service the dashboard does not show', async () => {
    const [shown, other] = [await stoppedService(), await stoppedService()];
    const d = await startDashboard({ discovery: redis.url, port: 0, services: [shown] });
    opened.push(d);
    expect((await post(d, '/actions/forget', { service: other })).flash).toBe(
      `<div class="flash error" role="alert">Not forgotten: this dashboard does not show a service &quot;${other}&quot;</div>`,
    );
    expect(await exists(other)).toBe(true);
  });

  it('with a backend that cannot forget: no Forget button, a note, and a clear refusal', async () => {
    const service = await stoppedService();
    const real = await createDiscovery(redis.url);
    // A third-party backend written before forgetService existed: the same calls, without that one.
    const bare = new Proxy(real, {
      get(target, property) {
        if (property === 'forgetService') return undefined;
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Discovery;
    const d = await startDashboard({ discovery: bare, port: 0, services: [service] });
    opened.push(d);
    try {
      const view = await api(d);
      expect(view.canForget).toBe(false);
      expect(view.html).toContain('data-forget="unsupported"');
      expect(view.html).not.toContain('/actions/forget');
      expect((await post(d, '/actions/forget', { service })).flash).toBe(
        `<div class="flash error" role="alert">Not forgotten: the redis discovery backend cannot forget a service (it does not implement forgetService); remove the records of &quot;${service}&quot; with the backend&#39;s own tools.</div>`,
      );
      expect(await exists(service)).toBe(true);
    } finally {
      await real.close();
    }
  });
});
