import type { Member } from '@shardwork/core';
import type { CountedState, JobInfo, JobState } from '@shardwork/jobs';
import { throughputSection } from './chart.js';
import { esc } from './escape.js';
import type { BackendProblem, JobsView, Movement, QueueRow, QueuesView, ServicesView, ServiceView } from './views.js';

/** What every fragment needs to render forms and links. */
export interface RenderContext {
  readonly csrf: string;
  readonly readOnly: boolean;
  /** Path (with query) of the page, where an action redirects back to. */
  readonly back: string;
}

export { esc } from './escape.js';

const STATES: readonly CountedState[] = ['scheduled', 'ready', 'running', 'retrying', 'dead'];
/** The job states that have a list page. */
export const LISTED_STATES: readonly JobState[] = [
  'running',
  'scheduled',
  'retrying',
  'dead',
  'completed',
  'cancelled',
];

/** States whose jobs have finished: their lists show when, and are only as long as the queue keeps them. */
const FINISHED: readonly JobState[] = ['completed', 'cancelled'];

/**
 * The job page of `id`: `/jobs/<id>` (URL-encoded), or `/jobs?id=<id>` for an
 * id that a path cannot carry: one that names a list page (`dead`), or `.`
 * and `..`, which browsers resolve away. Escape it for an attribute.
 */
export function jobHref(id: string): string {
  const plain = !LISTED_STATES.includes(id as JobState) && id !== '.' && id !== '..';
  return plain ? `/jobs/${encodeURIComponent(id)}` : `/jobs?id=${encodeURIComponent(id)}`;
}

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

/** `1.2 s`, `3 m 4 s`, `2 h 5 m`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.floor(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A stable colour per owner, so the same member keeps its colour across refreshes. */
export function ownerColour(owner: string): string {
  let hash = 2166136261;
  for (let i = 0; i < owner.length; i++) hash = Math.imul(hash ^ owner.charCodeAt(i), 16777619);
  return `hsl(${(hash >>> 0) % 360} 65% 72%)`;
}

const shortId = (id: string | undefined): string => (id === undefined ? '–' : id.length > 8 ? id.slice(0, 8) : id);

/** `2026-12-07T16:40:12.345Z`, or `–`. */
export const isoTime = (ms: number | undefined): string => (ms === undefined ? '–' : new Date(ms).toISOString());

function banner(problem: BackendProblem | undefined, now: number): string {
  if (problem === undefined) return '';
  const from =
    problem.dataFrom === undefined
      ? 'no data read yet'
      : `showing data from ${clock(problem.dataFrom)} UTC, ${duration(Math.max(0, now - problem.dataFrom))} old (greyed out: not live)`;
  return `<div class="banner" role="alert" data-banner="down">${esc(problem.backend)} unreachable: ${esc(problem.reason)}; ${esc(from)}</div>`;
}

/**
 * The banner, then `content`: greyed out (`data-stale`) while a backend is
 * down, because it is the last data read and no longer live. Only the
 * banner, not the grey, when nothing was ever read.
 */
export function withProblem(problem: BackendProblem | undefined, now: number, content: string): string {
  if (problem?.dataFrom === undefined) return `${banner(problem, now)}${content}`;
  const age = Math.max(0, now - problem.dataFrom);
  return `${banner(problem, now)}<div class="stale" data-stale="true" data-age-ms="${Math.round(age)}" title="not live: data from ${clock(problem.dataFrom)} UTC, ${esc(duration(age))} old">${content}</div>`;
}

/** A number that must never be broken across lines (tokens and revisions are up to 16 digits). */
const num = (value: unknown): string => `<span class="nowrap">${esc(value)}</span>`;

/**
 * Escaped text that may wrap anywhere except inside a number: each run of
 * digits is one unbreakable span, and `wrapAfter` characters (`,` in JSON)
 * are the preferred places to break.
 */
export function unbrokenNumbers(text: string, wrapAfter = ''): string {
  return text
    .split(/(\d{2,})/)
    .map((part, i) => {
      if (i % 2 === 1) return num(part);
      let escaped = esc(part);
      for (const c of wrapAfter) escaped = escaped.replaceAll(c, `${c}<wbr>`);
      return escaped;
    })
    .join('');
}

function hidden(ctx: RenderContext, fields: Record<string, string>): string {
  const all = { _csrf: ctx.csrf, back: ctx.back, ...fields };
  return Object.entries(all)
    .map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`)
    .join('');
}

/** A one-button POST form with the CSRF token and `back`; nothing when read-only. */
export function button(
  ctx: RenderContext,
  action: string,
  label: string,
  fields: Record<string, string>,
  cls = '',
): string {
  if (ctx.readOnly) return '';
  return `<form method="post" action="${esc(action)}" class="inline">${hidden(ctx, fields)}<button type="submit" class="${esc(cls)}">${esc(label)}</button></form>`;
}

function memberLabel(member: Member | undefined, id: string): string {
  return member === undefined ? shortId(id) : `${member.host}:${member.pid}`;
}

// Distinct colours; hashing the id is the fallback for an owner that is not a live member.
const PALETTE = [
  '#93c5fd',
  '#fcd34d',
  '#86efac',
  '#f9a8d4',
  '#c4b5fd',
  '#fdba74',
  '#67e8f9',
  '#bef264',
  '#fca5a5',
  '#a5b4fc',
];

/**
 * A stopped service (records, no member, no claim) or one without records:
 * greyed, not red, since nobody is meant to run it; a stopped one offers
 * Forget (unless read-only, or the backend cannot forget).
 */
function idleServiceSection(service: ServiceView, ctx: RenderContext, canForget: boolean): string {
  const { name, snapshot, health } = service;
  if (health === 'absent') {
    return `<section class="card idle" data-service="${esc(name)}" data-health="absent"><h2>${esc(name)} <small><span class="tag idle">no records</span></small></h2><p class="muted">The discovery backend holds no record of this service: it was forgotten, or has never run.</p></section>`;
  }
  const shardCount = snapshot.shardCount ?? 0;
  let cells = '';
  for (let shard = 0; shard < shardCount; shard++) {
    cells += `<div class="shard off" data-shard="${shard}" data-owner="" title="shard ${shard}: nobody runs the service"><b>${shard}</b><span>not running</span></div>`;
  }
  const invalid =
    snapshot.invalid.length > 0 ? `<p class="muted">${snapshot.invalid.length} unreadable record(s)</p>` : '';
  const forget = !canForget
    ? '<p class="muted" data-forget="unsupported">This discovery backend cannot forget a service.</p>'
    : ctx.readOnly
      ? ''
      : `<div class="forget">${button(ctx, '/actions/forget', 'Forget', { service: name }, 'secondary')}<span class="muted">removes its records, for a service that is gone for good</span></div>`;
  const shards = snapshot.shardCount === undefined ? 'shard count unreadable' : `${shardCount} shards`;
  return `<section class="card idle" data-service="${esc(name)}" data-health="stopped"><h2>${esc(name)} <small><span class="tag idle">stopped</span> no live member, ${shards}, revision ${num(snapshot.revision)}</small></h2>${invalid}
<p class="muted">Every replica stopped: nobody runs this service, so nothing owns its shards, and that is no alarm. The discovery backend keeps its records (shard count, lease TTL) until they are forgotten; a replica started later runs it again.</p>${forget}
<div class="shardmap">${cells}</div></section>`;
}

function serviceSection(service: ServiceView, now: number, ctx: RenderContext, canForget: boolean): string {
  const { name, snapshot, health } = service;
  if (health === 'stopped' || health === 'absent') return idleServiceSection(service, ctx, canForget);
  const byId = new Map(snapshot.members.map((m) => [m.id, m]));
  // By join order (stable for a member's life): members that join one after another never share a colour.
  const colours = new Map(snapshot.members.map((m) => [m.id, PALETTE[m.joinSeq % PALETTE.length] as string]));
  const colourOf = (owner: string): string => colours.get(owner) ?? ownerColour(owner);
  const owned = new Map<string, number>();
  for (const claim of snapshot.claims) owned.set(claim.owner, (owned.get(claim.owner) ?? 0) + 1);
  const claims = new Map(snapshot.claims.map((c) => [c.shard, c]));
  const shardCount = snapshot.shardCount ?? 0;
  const unowned = shardCount - claims.size;
  const rows = snapshot.members
    .map((m) => {
      const status = m.draining
        ? '<span class="tag warn">draining</span>'
        : (owned.get(m.id) ?? 0) === 0
          ? '<span class="tag idle">standby</span>'
          : '<span class="tag ok">active</span>';
      return `<tr data-member="${esc(m.id)}"><td><span class="swatch" style="background:${colourOf(m.id)}"></span><code title="${esc(m.id)}">${esc(shortId(m.id))}</code></td><td>${esc(m.host)}</td><td class="num">${esc(m.pid)}</td><td class="nowrap">${esc(duration(now - m.startedAt))}</td><td class="nowrap">${esc(duration(m.expiresInMs))}</td><td>${owned.get(m.id) ?? 0}</td><td>${status}</td></tr>`;
    })
    .join('');
  let cells = '';
  for (let shard = 0; shard < shardCount; shard++) {
    const claim = claims.get(shard);
    if (claim === undefined) {
      cells += `<div class="shard unowned" data-shard="${shard}" data-owner="" title="shard ${shard}: unowned"><b>${shard}</b><span>unowned</span></div>`;
    } else {
      const member = byId.get(claim.owner);
      const label = memberLabel(member, claim.owner);
      // Only the host gives way to a narrow cell ("…"); the pid, which tells replicas on one host apart, stays.
      const owner =
        member === undefined
          ? `<span class="host">${esc(label)}</span>`
          : `<span class="host">${esc(member.host)}</span><span class="pid">:${esc(member.pid)}</span>`;
      // The owner's name may be cut with "…" (the title has it whole); the token is never broken.
      cells += `<div class="shard" data-shard="${shard}" data-owner="${esc(claim.owner)}" style="background:${colourOf(claim.owner)}" title="shard ${shard}: ${esc(label)} (${esc(claim.owner)}) token ${claim.token}"><b>${shard}</b><span class="owner">${owner}</span><small>token <span class="token">${esc(claim.token)}</span></small></div>`;
    }
  }
  const invalid =
    snapshot.invalid.length > 0 ? `<p class="warn">${snapshot.invalid.length} unreadable record(s)</p>` : '';
  return `<section class="card" data-service="${esc(name)}" data-health="${esc(health)}"><h2>${esc(name)} <small>${snapshot.members.length} member(s), ${shardCount} shards, ${unowned === 0 ? 'all owned' : `<span class="bad">${unowned} unowned</span>`}, revision ${num(snapshot.revision)}</small></h2>${invalid}
<table><thead><tr><th>member</th><th>host</th><th class="num">pid</th><th>age</th><th>lease left</th><th>shards</th><th>status</th></tr></thead><tbody>${rows || '<tr><td colspan="7" class="muted">no live members</td></tr>'}</tbody></table>
<div class="shardmap">${cells}</div></section>`;
}

function movementsTable(movements: readonly Movement[]): string {
  if (movements.length === 0)
    return '<section class="card"><h2>Recent movements</h2><p class="muted">no shard has changed owner since the dashboard started</p></section>';
  const rows = movements
    .map(
      (m) =>
        `<tr class="movement" data-service="${esc(m.service)}" data-shard="${m.shard}" data-from="${esc(m.from ?? '')}" data-to="${esc(m.to ?? '')}"><td>${clock(m.at)}</td><td>${esc(m.service)}</td><td>${m.shard}</td><td><code>${esc(shortId(m.from))}</code></td><td><code>${esc(shortId(m.to))}</code></td><td class="num token">${esc(m.token ?? '–')}</td></tr>`,
    )
    .join('');
  return `<section class="card"><h2>Recent movements</h2><table id="movements"><thead><tr><th>time (UTC)</th><th>service</th><th>shard</th><th>from</th><th>to</th><th class="num">token</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

/**
 * The services page's live part.
 * @param ctx - for the Forget form of a stopped service (none when read-only).
 */
export function servicesFragment(view: ServicesView, ctx: RenderContext, now = Date.now()): string {
  const sections = view.services.map((s) => serviceSection(s, now, ctx, view.canForget)).join('');
  const none =
    view.services.length === 0 && view.readAt !== undefined
      ? '<p class="card muted" data-empty="services">no services found: no worker has registered with this discovery backend</p>'
      : '';
  return withProblem(view.problem, now, `${sections}${none}${movementsTable(view.movements)}`);
}

/** What a job page says without a job queue. */
export const noQueue = '<p class="card muted" data-empty="no-queue">no job queue configured</p>';

/** States whose jobs wait for a consumer to start them. */
const WAITING: readonly CountedState[] = ['ready', 'scheduled', 'retrying'];

/**
 * How many jobs of a handler wait with no live consumer to run them: some are
 * ready, scheduled or retrying and `consumers` is 0 (`undefined`, where the
 * adapter cannot know, is no alarm). 0 when all is well.
 */
export function waitingWithoutConsumer(row: QueueRow): number {
  if (row.consumers !== 0) return 0;
  return WAITING.reduce((sum, state) => sum + row.counts[state], 0);
}

function countsCells(row: QueueRow): string {
  return STATES.map(
    (s) => `<td class="num ${s}${row.counts[s] > 0 ? ' nz' : ''}" data-count="${s}">${row.counts[s]}</td>`,
  ).join('');
}

/** The queues page's live part. */
export function queuesFragment(view: QueuesView, ctx: RenderContext, now = Date.now()): string {
  if (!view.configured) return noQueue;
  const unread = view.readAt === undefined && view.problem !== undefined;
  const head = STATES.map((s) => `<th class="num">${s}</th>`).join('');
  const tput = (row: QueueRow): string =>
    view.throughputKnown ? `<td class="num">${(row.throughput ?? 0).toFixed(1)}/s</td>` : '';
  const tputHead = view.throughputKnown ? '<th class="num">completed</th>' : '';
  // Where the store counts completions (every consumer's), a queue's column shows those, not this process's.
  const counted = view.storeThroughput?.kind === 'counted';
  const queueTput = (row: QueueRow): string =>
    counted
      ? `<td class="num" data-completed-last-minute="${row.completedLastMinute ?? 0}">${row.completedLastMinute ?? 0}/min</td>`
      : tput(row);
  const queueTputHead = counted
    ? '<th class="num" title="attempts completed in the last full minute, counted in the job store">completed</th>'
    : tputHead;
  const queues = view.queues
    .map(
      (q) =>
        `<tr data-queue="${esc(q.name)}"><td>${esc(q.name)}</td>${countsCells(q)}<td class="num">${esc(duration(q.waitMs))}</td>${queueTput(q)}</tr>`,
    )
    .join('');
  const handlers = view.handlers
    .map((h) => {
      const action = h.paused
        ? button(ctx, '/actions/unpause', 'Unpause', { handler: h.name })
        : button(ctx, '/actions/pause', 'Pause', { handler: h.name }, 'secondary');
      const flag = h.paused ? '<span class="tag warn">paused</span>' : '<span class="tag ok">active</span>';
      const orphan = waitingWithoutConsumer(h) > 0;
      const consumers =
        h.consumers === undefined
          ? '<td class="num muted" data-consumers="" title="this job backend cannot tell">–</td>'
          : `<td class="num${orphan ? ' bad' : ''}" data-consumers="${h.consumers}">${h.consumers}</td>`;
      return `<tr data-handler="${esc(h.name)}" data-paused="${h.paused ? 'true' : 'false'}"${orphan ? ' data-no-consumer="true" class="orphan"' : ''}><td>${esc(h.name)}</td>${countsCells(h)}<td>${flag}</td>${consumers}${tput(h)}${ctx.readOnly ? '' : `<td>${action}</td>`}</tr>`;
    })
    .join('');
  const orphans = view.handlers
    .filter((h) => waitingWithoutConsumer(h) > 0)
    .map((h) => {
      const n = waitingWithoutConsumer(h);
      return `<p class="alert" role="alert" data-warning="no-consumer" data-handler="${esc(h.name)}"><b>${esc(h.name)}</b>: ${n} job${n === 1 ? '' : 's'} waiting, and no live consumer registers this handler: its jobs will wait until a process that registers it starts.</p>`;
    })
    .join('');
  const note = counted
    ? `<p class="muted">completed: per queue, attempts completed in the last full minute, counted in the job store by every consumer; ${view.throughputKnown ? 'per handler, jobs finished by this process over the last 10 s' : 'the store counts them per queue, not per handler'}.</p>`
    : view.throughputKnown
      ? '<p class="muted">completed: jobs finished by this process over the last 10 s.</p>'
      : '<p class="muted">Throughput is not shown: a queue backend only reports counts by state, and completions are only observable in the process that runs the jobs (pass a JobQueue instance to see them).</p>';
  const noQueues = unread
    ? 'not read yet: the job backend has not answered'
    : 'no queues: no job has been enqueued yet';
  const noHandlers = unread ? 'not read yet: the job backend has not answered' : 'no handlers';
  return withProblem(
    view.problem,
    now,
    `<section class="card"><h2>Queues</h2><table><thead><tr><th>queue</th>${head}<th class="num">oldest ready</th>${queueTputHead}</tr></thead><tbody>${queues || `<tr><td colspan="9" class="muted" data-empty="queues">${noQueues}</td></tr>`}</tbody></table></section>
${throughputSection(
  view.storeThroughput,
  view.queues.map((q) => q.name),
)}
<section class="card"><h2>Handlers</h2>${orphans}<table><thead><tr><th>handler</th>${head}<th>paused</th><th class="num" title="live consumer processes that registered the handler">consumers</th>${tputHead}${ctx.readOnly ? '' : '<th></th>'}</tr></thead><tbody>${handlers || `<tr><td colspan="10" class="muted" data-empty="handlers">${noHandlers}</td></tr>`}</tbody></table>${note}</section>`,
  );
}

function jobRow(job: JobInfo, ctx: RenderContext, state: JobState): string {
  const actions =
    state === 'dead' && !ctx.readOnly
      ? `<td class="actions">${button(ctx, '/actions/retry', 'Retry', { id: job.id })}${button(ctx, '/actions/delete', 'Delete', { id: job.id }, 'danger')}</td>`
      : '';
  const error =
    job.lastError === undefined
      ? ''
      : `${job.lastError.name === undefined ? '' : `${job.lastError.name}: `}${job.lastError.message}`;
  const finished = FINISHED.includes(state);
  const at = finished && job.finishedAt !== undefined ? job.finishedAt : job.runAt;
  return `<tr data-job="${esc(job.id)}"><td><a href="${esc(jobHref(job.id))}"><code>${esc(job.id)}</code></a></td><td>${esc(job.handler)}</td><td>${esc(job.queue)}</td><td>${esc(job.key ?? '')}</td><td><code class="args">${unbrokenNumbers(JSON.stringify(job.args), ',')}</code></td><td class="num">${job.fails}</td><td class="nowrap">${esc(new Date(at).toISOString().replace('T', ' ').slice(0, 19))}</td><td class="error">${unbrokenNumbers(error)}</td>${actions}</tr>`;
}

/** What an empty jobs page says instead of rows: why it is empty, never a bare "none". */
function emptyJobs(view: JobsView): string {
  if (view.readAt === undefined && view.problem !== undefined) {
    return 'not read yet: the job backend has not answered';
  }
  if (view.unsupported !== undefined) return `cannot list jobs: ${esc(view.unsupported)}`;
  if (view.total === 0) {
    return FINISHED.includes(view.state)
      ? `no ${esc(view.state)} jobs kept (the queue keeps finished jobs as its keepCompleted option says)`
      : `no ${esc(view.state)} jobs`;
  }
  // An offset past the end (a stale link, or jobs finished meanwhile).
  return `no ${esc(view.state)} jobs at offset ${view.offset}: there ${view.total === 1 ? 'is 1' : `are ${view.total}`}; <a href="/jobs/${esc(view.state)}">go to the first page</a>`;
}

/** A jobs page's live part. */
export function jobsFragment(view: JobsView, ctx: RenderContext, now = Date.now()): string {
  if (!view.configured) return noQueue;
  const dead = view.state === 'dead';
  const bulk =
    dead && !ctx.readOnly && view.total > 0
      ? `<div class="bulk">${button(ctx, '/actions/retry', 'Retry all dead', { all: '1' })}${button(ctx, '/actions/delete', 'Delete all dead', { all: '1' }, 'danger')}</div>`
      : '';
  const rows = view.jobs.map((j) => jobRow(j, ctx, view.state)).join('');
  const last = Math.min(view.total, view.offset + view.jobs.length);
  const link = (offset: number, label: string): string => `<a href="/jobs/${view.state}?offset=${offset}">${label}</a>`;
  // A pager only under a page that shows jobs: an empty page says why in its one row.
  const pager =
    view.jobs.length === 0
      ? ''
      : `<p class="pager">${view.offset + 1}–${last} of ${view.total} ${view.offset > 0 ? link(Math.max(0, view.offset - view.limit), '← newer') : ''} ${last < view.total ? link(view.offset + view.limit, 'older →') : ''}</p>`;
  const actionHead = dead && !ctx.readOnly ? '<th></th>' : '';
  return withProblem(
    view.problem,
    now,
    `<section class="card"><h2>${esc(view.state)} jobs <small data-total="${view.total}">${view.total}</small></h2>${bulk}<table id="jobs"><thead><tr><th>id</th><th>handler</th><th>queue</th><th>key</th><th>args</th><th class="num">fails</th><th>${FINISHED.includes(view.state) ? 'finished' : 'run at'} (UTC)</th><th>${view.state === 'cancelled' ? 'reason' : 'last error'}</th>${actionHead}</tr></thead><tbody>${rows || `<tr><td colspan="9" class="muted" data-empty="jobs">${emptyJobs(view)}</td></tr>`}</tbody></table>${pager}</section>`,
  );
}

/**
 * Search by job id: a GET form to `/jobs?id=…`, which leads to the job page.
 * In the header, outside the part the page script swaps, so a poll never
 * clears what is being typed.
 */
export function searchForm(query = '', cls = 'search'): string {
  return `<form method="get" action="/jobs" class="${esc(cls)}" role="search"><input type="search" name="id" value="${esc(query)}" placeholder="job id" aria-label="job id" required maxlength="200" spellcheck="false" autocomplete="off"><button type="submit" class="secondary">Find job</button></form>`;
}

/** A whole page around a fragment; the script keeps `#content` fresh from `api`. */
export function layout(options: {
  title: string;
  active: string;
  content: string;
  api: string;
  refreshMs: number;
  csrf: string;
  flash: { readonly kind: 'ok' | 'error'; readonly text: string } | undefined;
  /** The job id the search box holds (on a job page). */
  query?: string | undefined;
}): string {
  const nav = [
    ['/', 'Services'],
    ['/queues', 'Queues'],
    ...LISTED_STATES.map((s) => [`/jobs/${s}`, s[0]?.toUpperCase() + s.slice(1)]),
  ]
    .map(([href, label]) => `<a href="${href}"${href === options.active ? ' class="active"' : ''}>${label}</a>`)
    .join('');
  const flash =
    options.flash === undefined
      ? ''
      : options.flash.kind === 'error'
        ? `<div class="flash error" role="alert">${esc(options.flash.text)}</div>`
        : `<div class="flash" role="status">${esc(options.flash.text)}</div>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="csrf-token" content="${esc(options.csrf)}"><title>${esc(options.title)} · shardwork</title><link rel="stylesheet" href="/assets/dashboard.css"></head>
<body data-api="${esc(options.api)}" data-refresh-ms="${options.refreshMs}"><header><span class="brand">shardwork</span><nav>${nav}</nav>${searchForm(options.query)}<span id="updated" class="muted"></span></header><main>${flash}<div id="content">${options.content}</div></main><script src="/assets/dashboard.js"></script></body></html>`;
}
