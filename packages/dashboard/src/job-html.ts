import type { JobDetails, JobState } from '@shardwork/jobs';
import { button, esc, isoTime, noQueue, type RenderContext, searchForm, unbrokenNumbers, withProblem } from './html.js';
import type { JobView } from './job-data.js';

/** States a job can be cancelled in: waiting ones are removed, a running attempt is aborted. */
export const CANCELLABLE: readonly JobState[] = ['scheduled', 'ready', 'retrying', 'running'];
/** States a job can be promoted from (made ready to run now). */
export const PROMOTABLE: readonly JobState[] = ['scheduled', 'retrying'];

/** What the job page's Cancel records as the reason (`error.message` of the cancelled job). */
export const CANCEL_REASON = 'cancelled from the dashboard';

/** What an unknown id means, in the words of the job layer. */
const UNKNOWN = 'never enqueued, or finished and no longer kept';

/**
 * Pretty JSON (two-space indent), escaped, numbers never broken;
 * `undefined` (nothing reported or returned) as a muted `–` with why.
 */
export function prettyJson(value: unknown, none: string): string {
  if (value === undefined) return `<p class="muted">${esc(none)}</p>`;
  return `<pre class="json">${unbrokenNumbers(JSON.stringify(value, null, 2) ?? String(value), ',')}</pre>`;
}

/** A bar for a percentage (a number 0–100); pretty JSON for any other progress. */
function progressBlock(progress: unknown): string {
  if (typeof progress === 'number' && Number.isFinite(progress) && progress >= 0 && progress <= 100) {
    const pct = Math.round(progress * 10) / 10;
    return `<div class="progress" role="progressbar" aria-label="progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}" data-progress="${pct}"><span class="fill" style="width:${pct}%"></span></div><p class="progress-label">${pct}%</p>`;
  }
  return prettyJson(progress, 'no progress reported');
}

function row(label: string, value: string, field: string): string {
  return `<tr data-field="${esc(field)}"><th>${esc(label)}</th><td>${value}</td></tr>`;
}

const code = (value: string | undefined, none = '–'): string =>
  value === undefined || value === '' ? `<span class="muted">${esc(none)}</span>` : `<code>${esc(value)}</code>`;
const time = (ms: number | undefined, none: string): string =>
  ms === undefined
    ? `<span class="muted">${esc(none)}</span>`
    : `<time class="nowrap" datetime="${esc(isoTime(ms))}">${esc(isoTime(ms))}</time>`;

function fieldsTable(job: JobDetails): string {
  const maxFails =
    job.maxFails === undefined
      ? '<span class="muted" title="maxFails comes from the handler\'s registration, and this process does not register it">– (handler not registered in this process)</span>'
      : esc(job.maxFails);
  return `<table class="fields">${[
    row('state', `<span class="tag state ${esc(job.state)}">${esc(job.state)}</span>`, 'state'),
    row('handler', esc(job.handler), 'handler'),
    row('queue', esc(job.queue), 'queue'),
    row('key', code(job.key, '– (no key)'), 'key'),
    row('attempt', esc(job.attempt), 'attempt'),
    row('fails', esc(job.fails), 'fails'),
    row('max fails', maxFails, 'maxFails'),
    row(
      'priority',
      job.priority === undefined
        ? '<span class="muted">– (handler not registered in this process)</span>'
        : esc(job.priority),
      'priority',
    ),
    row('enqueued', time(job.enqueuedAt, '–'), 'enqueuedAt'),
    row('scheduled', time(job.scheduledAt, '–'), 'scheduledAt'),
    row('started', time(job.startedAt, '– (not started)'), 'startedAt'),
    row('finished', time(job.finishedAt, '– (not finished)'), 'finishedAt'),
    row(
      'partition',
      job.partition === undefined ? '<span class="muted">– (no partitions on this adapter)</span>' : esc(job.partition),
      'partition',
    ),
    row(
      'owner',
      code(job.owner, job.state === 'running' ? '– (not reported by the job backend)' : '– (not running)'),
      'owner',
    ),
  ].join('')}</table>`;
}

function errorBlock(job: JobDetails): string {
  const error = job.error;
  const title = job.state === 'cancelled' ? 'Cancelled' : job.state === 'dead' ? 'Error (dead)' : 'Last error';
  if (error === undefined) return '';
  const errorCode = error.code === undefined ? '' : ` <small class="muted">(${esc(error.code)})</small>`;
  return `<section class="card" data-section="error"><h2>${title}</h2><p class="error-text"><b>${esc(error.name)}</b>: ${unbrokenNumbers(error.message)}${errorCode}</p><p class="muted">at ${time(error.at, '–')}</p></section>`;
}

function actionsBar(job: JobDetails, ctx: RenderContext): string {
  if (ctx.readOnly) return '';
  const fields = { id: job.id };
  const buttons = [
    CANCELLABLE.includes(job.state) ? button(ctx, '/actions/cancel', 'Cancel', fields, 'danger') : '',
    PROMOTABLE.includes(job.state) ? button(ctx, '/actions/promote', 'Promote', fields) : '',
    job.state === 'dead' ? button(ctx, '/actions/retry', 'Retry', fields) : '',
  ].join('');
  if (buttons === '') return '';
  const note =
    job.state === 'running'
      ? 'Cancel aborts the running attempt wherever it runs.'
      : PROMOTABLE.includes(job.state)
        ? 'Promote runs it now instead of at its scheduled time.'
        : job.state === 'dead'
          ? 'Retry moves it back to ready.'
          : '';
  return `<div class="job-actions">${buttons}${note === '' ? '' : `<span class="muted">${note}</span>`}</div>`;
}

function details(job: JobDetails, ctx: RenderContext): string {
  const result =
    job.state === 'completed' || job.result !== undefined
      ? `<section class="card" data-section="result"><h2>Result</h2>${prettyJson(job.result, 'nothing returned')}</section>`
      : '';
  return `<section class="card" data-job-page="${esc(job.id)}" data-state="${esc(job.state)}"><h2>Job <code class="job-id">${esc(job.id)}</code> <span class="tag state ${esc(job.state)}">${esc(job.state)}</span></h2>${actionsBar(job, ctx)}
<div class="job-grid"><div>${fieldsTable(job)}</div><div><h3>Args</h3>${prettyJson(job.args, '–')}<h3>Progress</h3><div data-section="progress">${progressBlock(job.progress)}</div></div></div></section>${result}${errorBlock(job)}`;
}

/**
 * The job page's live part: every field of the job, its args, progress
 * (a bar for a percentage), result and error, and the actions its state
 * allows; or why there is nothing to show.
 */
export function jobFragment(view: JobView, ctx: RenderContext, now = Date.now()): string {
  if (!view.configured) return noQueue;
  const title = `<h2>Job <code class="job-id">${esc(view.id)}</code></h2>`;
  if (view.refused !== undefined) {
    const what =
      view.refused.kind === 'unsupported'
        ? 'This job backend cannot look jobs up by id'
        : 'This is not a job id (1–200 printable ASCII characters without spaces)';
    return `<section class="card" data-job-refused="${esc(view.refused.kind)}">${title}<p class="alert" role="alert">${what}: ${esc(view.refused.message)}</p></section>`;
  }
  if (view.job !== undefined) return withProblem(view.problem, now, details(view.job, ctx));
  if (view.readAt === undefined) {
    return withProblem(
      view.problem,
      now,
      `<section class="card">${title}<p class="muted" data-empty="job">not read yet: the job backend has not answered</p></section>`,
    );
  }
  return withProblem(
    view.problem,
    now,
    `<section class="card" data-job-missing="true">${title}<p class="alert" role="alert">No such job (${UNKNOWN}): the job store does not know the id <code>${esc(view.id)}</code>. Completed and cancelled jobs are kept only as long as the queue's keepCompleted option says (by default the newest 1,000 of each per queue, for at most a day).</p><p class="muted">The finished jobs the queue keeps are listed under <a href="/jobs/completed">Completed</a> and <a href="/jobs/cancelled">Cancelled</a>.</p></section>`,
  );
}

/** The page of `/jobs` without an id: a search form, since there is no list of every job. */
export function searchPage(): string {
  return `<section class="card"><h2>Find a job by id</h2><p class="muted">Every job has a page with all its fields, args, progress, result and error. Enter its id (as <code>perform</code> returned it, or from a job list).</p>${searchForm('', 'search big')}</section>`;
}
