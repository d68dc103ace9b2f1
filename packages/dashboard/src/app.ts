import { type Member, ServiceRunningError } from '@shardwork/core';
import { type JobState, UnknownHandlerError } from '@shardwork/jobs';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { ActionRefused, jobActions } from './actions.js';
import { CSS, JS } from './assets.js';
import { type DashboardData, ForgetRefusedError } from './data.js';
import {
  jobHref,
  jobsFragment,
  LISTED_STATES,
  layout,
  queuesFragment,
  type RenderContext,
  servicesFragment,
} from './html.js';
import { jobPageStatus } from './job-data.js';
import { jobFragment, searchPage } from './job-html.js';
import type { DashboardAuth } from './options.js';
import { Authenticator, randomToken, SECURITY_HEADERS, SESSION_COOKIE, safeEqual } from './security.js';

/** What {@link createDashboardApp} needs. */
export interface DashboardAppOptions {
  readonly data: DashboardData;
  readonly auth: DashboardAuth | undefined;
  readonly readOnly: boolean;
  readonly refreshMs: number;
  /** CSRF token of the process. @defaultValue a random one */
  readonly csrfToken?: string | undefined;
}

const FLASH_COOKIE = 'shardwork_flash';

/** The one-time message after an action: what was done, or why it was not. */
interface Flash {
  readonly kind: 'ok' | 'error';
  readonly text: string;
}

const PAGE_SIZE = 50;

/** Live members named in a refusal; more are counted. */
const NAMED_MEMBERS = 10;

/** `host:pid (id)` per live member id, from the listing where it has the member; the id alone otherwise. */
function describeMembers(ids: readonly string[], members: readonly Member[]): string {
  const byId = new Map(members.map((m) => [m.id, m]));
  const named = ids.slice(0, NAMED_MEMBERS).map((id) => {
    const m = byId.get(id);
    return m === undefined ? id : `${m.host}:${m.pid} (${id}${m.draining === true ? ', draining' : ''})`;
  });
  return named.join(', ') + (ids.length > NAMED_MEMBERS ? `, … (${ids.length} in all)` : '');
}

/** Only a local path is a redirect target, so an action can never send the browser elsewhere. */
function safeBack(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.includes('\\')
    ? value
    : '/';
}

const originOf = (value: string): string | undefined => {
  try {
    return new URL(value).origin;
  } catch {
    return undefined;
  }
};

/**
 * The dashboard as a Hono app (pages, JSON API, actions, auth, CSRF). Serve it
 * with any Hono adapter; {@link startDashboard} serves it with @hono/node-server.
 */
export function createDashboardApp(options: DashboardAppOptions): Hono {
  const { data, readOnly, refreshMs } = options;
  const csrf = options.csrfToken ?? randomToken();
  const authenticator = new Authenticator(options.auth);
  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
  });

  app.use('*', async (c, next) => {
    if (authenticator.kind === 'none') return next();
    const url = new URL(c.req.url);
    const offered = url.searchParams.get('token');
    if (authenticator.kind === 'token' && offered !== null) {
      if (!authenticator.tokenMatches(offered)) return c.text('Unauthorized: wrong token', 401);
      // Trade the token in the URL (which ends up in history and logs) for a cookie, once.
      setCookie(c, SESSION_COOKIE, authenticator.session, { httpOnly: true, sameSite: 'Strict', path: '/' });
      url.searchParams.delete('token');
      return c.redirect(`${url.pathname}${url.search}`, 303);
    }
    const verdict = authenticator.check(c.req.header('authorization'), getCookie(c, SESSION_COOKIE));
    if (verdict === 'ok') return next();
    if (authenticator.kind === 'basic') {
      c.header('WWW-Authenticate', 'Basic realm="shardwork dashboard", charset="UTF-8"');
      return c.text('Unauthorized', 401);
    }
    c.header('WWW-Authenticate', 'Bearer realm="shardwork dashboard"');
    return c.text(
      'Unauthorized: send Authorization: Bearer <token>, or open the dashboard once with ?token=<token>',
      401,
    );
  });

  app.get('/assets/dashboard.css', (c) => c.body(CSS, 200, { 'Content-Type': 'text/css; charset=utf-8' }));
  app.get('/assets/dashboard.js', (c) => c.body(JS, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }));

  const renderContext = (c: Context): RenderContext => {
    const url = new URL(c.req.url);
    url.searchParams.delete('token');
    return { csrf, readOnly, back: `${url.pathname}${url.search}` };
  };
  // The page script asks the API with the page's own query; `back` must still name the page.
  const apiContext = (c: Context, page: string): RenderContext => {
    const url = new URL(c.req.url);
    return { csrf, readOnly, back: `${page}${url.search}` };
  };
  const takeFlash = (c: Context): Flash | undefined => {
    const flash = getCookie(c, FLASH_COOKIE);
    if (flash === undefined) return undefined;
    deleteCookie(c, FLASH_COOKIE, { path: '/' });
    // The first character says whether the action worked (see `act`).
    return flash.startsWith('!') ? { kind: 'error', text: flash.slice(1) } : { kind: 'ok', text: flash };
  };
  const page = (
    c: Context,
    title: string,
    active: string,
    api: string,
    content: string,
    status: 200 | 400 | 404 = 200,
    query?: string,
  ): Response => c.html(layout({ title, active, api, content, refreshMs, csrf, flash: takeFlash(c), query }), status);

  const jobState = (value: string | undefined): JobState | undefined =>
    LISTED_STATES.includes(value as JobState) ? (value as JobState) : undefined;
  const offsetOf = (c: Context): number => {
    const offset = Number(c.req.query('offset') ?? 0);
    return Number.isInteger(offset) && offset >= 0 ? offset : 0;
  };

  app.get('/', async (c) =>
    page(c, 'Services', '/', '/api/services', servicesFragment(await data.services(), renderContext(c))),
  );
  app.get('/api/services', async (c) => {
    const view = await data.services();
    return c.json({ ...view, html: servicesFragment(view, apiContext(c, '/')) });
  });
  app.get('/queues', async (c) =>
    page(c, 'Queues', '/queues', '/api/queues', queuesFragment(await data.queues(), renderContext(c))),
  );
  app.get('/api/queues', async (c) => {
    const view = await data.queues();
    return c.json({ ...view, html: queuesFragment(view, apiContext(c, '/queues')) });
  });
  // One job: 200, 404 for an id the store does not know (400 for text that is no job id).
  const jobPage = async (c: Context, id: string): Promise<Response> => {
    const view = await data.job(id);
    const content = jobFragment(view, renderContext(c));
    // The script asks `api` + the page's query: a page at /jobs?id=… has its id in the query already.
    const api = jobHref(id).startsWith('/jobs?') ? '/api/job' : `/api/job/${encodeURIComponent(id)}`;
    return page(c, `Job ${id}`, '', api, content, jobPageStatus(view), id);
  };
  // Search by id; the job page itself is /jobs/<id>, except for ids a path cannot carry (see jobHref).
  app.get('/jobs', async (c) => {
    const id = (c.req.query('id') ?? '').trim();
    if (id === '') return page(c, 'Find a job', '', '', searchPage());
    const href = jobHref(id);
    return href.startsWith('/jobs?') ? jobPage(c, id) : c.redirect(href, 303);
  });
  const jobApi = async (c: Context, id: string): Promise<Response> => {
    const view = await data.job(id);
    // Always 200: the page script takes any other status for the dashboard being unreachable.
    return c.json({ ...view, html: jobFragment(view, { csrf, readOnly, back: jobHref(id) }) });
  };
  app.get('/api/job', (c) => jobApi(c, (c.req.query('id') ?? '').trim()));
  app.get('/api/job/:id', (c) => jobApi(c, c.req.param('id')));
  app.get('/jobs/:state', async (c) => {
    const name = c.req.param('state');
    const state = jobState(name);
    if (state === undefined) return jobPage(c, name);
    const view = await data.jobs(state, offsetOf(c), PAGE_SIZE);
    return page(c, `${state} jobs`, `/jobs/${state}`, `/api/jobs/${state}`, jobsFragment(view, renderContext(c)));
  });
  app.get('/api/jobs/:state', async (c) => {
    const state = jobState(c.req.param('state'));
    if (state === undefined) return c.json({ error: `unknown job state; one of ${LISTED_STATES.join(', ')}` }, 404);
    const view = await data.jobs(state, offsetOf(c), PAGE_SIZE);
    return c.json({ ...view, html: jobsFragment(view, apiContext(c, `/jobs/${state}`)) });
  });

  // Every POST: read-only refuses, then same origin, then the CSRF token (form field or header).
  app.post('*', async (c, next) => {
    if (readOnly) return c.text('Forbidden: the dashboard is read-only', 403);
    const own = new URL(c.req.url).origin;
    const origin = c.req.header('origin');
    const referer = c.req.header('referer');
    const from = origin ?? (referer === undefined ? undefined : (originOf(referer) ?? 'invalid'));
    if (from !== undefined && from !== own) return c.text('Forbidden: cross-origin request', 403);
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const offered = c.req.header('x-csrf-token') ?? form._csrf;
    if (typeof offered !== 'string' || !safeEqual(offered, csrf))
      return c.text('Forbidden: missing or wrong CSRF token', 403);
    c.set('form' as never, form as never);
    return next();
  });

  const act = (path: string, run: (form: Record<string, unknown>) => Promise<string>): void => {
    app.post(path, async (c) => {
      const form = (c.get('form' as never) ?? {}) as Record<string, unknown>;
      let message: string;
      try {
        message = await run(form);
      } catch (error) {
        // "!" marks a failure, so the page shows it as one (red), not as a done action.
        message =
          error instanceof ActionRefused
            ? `!${error.message}`
            : `!Failed: ${error instanceof Error ? error.message : String(error)}`;
      }
      setCookie(c, FLASH_COOKIE, message, { httpOnly: true, sameSite: 'Strict', path: '/', maxAge: 60 });
      return c.redirect(safeBack(form.back), 303);
    });
  };
  const idOf = (form: Record<string, unknown>): string | undefined => {
    if (form.all === '1') return undefined;
    if (typeof form.id !== 'string' || form.id === '') throw new Error('no job id given (send id, or all=1)');
    return form.id;
  };
  const handlerOf = (form: Record<string, unknown>): string => {
    if (typeof form.handler !== 'string' || form.handler === '') throw new Error('no handler given');
    return form.handler;
  };
  act('/actions/retry', async (form) => {
    const id = idOf(form);
    const n = await data.act((jobs) => jobs.retryDead(id));
    return id === undefined
      ? `Retried ${n} dead job(s)`
      : n > 0
        ? `Retried job ${id}`
        : `Job ${id} is not dead (any more)`;
  });
  act('/actions/delete', async (form) => {
    const id = idOf(form);
    const n = await data.act((jobs) => jobs.deleteDead(id));
    return id === undefined
      ? `Deleted ${n} dead job(s)`
      : n > 0
        ? `Deleted job ${id}`
        : `Job ${id} is not dead (any more)`;
  });
  act('/actions/pause', async (form) => {
    const handler = handlerOf(form);
    try {
      await data.act((jobs) => jobs.pause(handler));
    } catch (error) {
      // The job layer refuses to pause a handler that no live consumer registers and no
      // stored job ever used: most likely a name that is not what the operator meant.
      if (error instanceof UnknownHandlerError) {
        throw new ActionRefused(
          `Not paused: no live consumer registers the handler "${handler}" and the job store has never seen a job of it, so nothing would be paused. Check the name against the handlers listed here.`,
        );
      }
      throw error;
    }
    return `Paused ${handler}`;
  });
  act('/actions/unpause', async (form) => {
    const handler = handlerOf(form);
    await data.act((jobs) => jobs.unpause(handler));
    return `Unpaused ${handler}`;
  });
  act('/actions/forget', async (form) => {
    if (typeof form.service !== 'string' || form.service === '') throw new Error('no service given');
    const service = form.service;
    let forgotten: boolean;
    try {
      forgotten = await data.forget(service);
    } catch (error) {
      if (error instanceof ForgetRefusedError) throw new ActionRefused(error.message);
      // A replica started since the page was drawn: the backend refused, nothing was removed.
      if (error instanceof ServiceRunningError) {
        const view = await data.services();
        const members = view.services.find((s) => s.name === service)?.snapshot.members ?? [];
        const n = error.members.length;
        throw new ActionRefused(
          `Not forgotten: service "${service}" is running: ${n} live member${n === 1 ? '' : 's'}: ${describeMembers(error.members, members)}. Stop its replicas first.`,
        );
      }
      throw error;
    }
    if (!forgotten) {
      throw new ActionRefused(
        `Nothing to forget: the discovery backend holds no records of service "${service}" (forgotten already?)`,
      );
    }
    return `Forgot service ${service}: its records are removed`;
  });
  for (const [path, run] of Object.entries(jobActions(data))) act(path, run);
  app.post('*', (c) => c.text('Not found', 404));

  return app;
}
