/** The stylesheet, served from /assets so that the CSP needs no 'unsafe-inline'. */
export const CSS = `
:root { --bg:#f5f6f8; --card:#fff; --fg:#1d2330; --muted:#6b7280; --line:#e2e5ea; --ok:#16a34a; --warn:#d97706; --bad:#dc2626; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; flex-wrap:wrap; align-items:center; gap:8px 24px; padding:10px 24px; background:#111827; color:#fff; }
.brand { font-weight:700; letter-spacing:.02em; }
nav a { color:#cbd5e1; text-decoration:none; margin-right:14px; padding:4px 0; }
nav a.active, nav a:hover { color:#fff; border-bottom:2px solid var(--accent); }
#updated { margin-left:auto; font-size:12px; color:#9ca3af; }
main { padding:18px 24px; max-width:1400px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; margin-bottom:16px; overflow-x:auto; }
h2 { font-size:16px; margin:0 0 10px; } h2 small { font-weight:400; color:var(--muted); margin-left:8px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
.nowrap, .token { white-space:nowrap; font-variant-numeric:tabular-nums; }
td.nz.dead { color:var(--bad); font-weight:600; } td.nz.retrying { color:var(--warn); font-weight:600; } td.nz.running { color:var(--accent); font-weight:600; }
code { font:12px ui-monospace, SFMono-Regular, Menlo, monospace; }
/* Args and errors wrap where they must, but never inside a number (each run of digits is a .nowrap span). */
code.args { overflow-wrap:anywhere; }
td.error { color:var(--bad); max-width:360px; overflow-wrap:anywhere; }
.muted { color:var(--muted); } .bad { color:var(--bad); font-weight:600; } .warn { color:var(--warn); }
.tag { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; color:#fff; }
.tag.ok { background:var(--ok); } .tag.warn { background:var(--warn); } .tag.idle { background:#9ca3af; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; vertical-align:middle; }
/* A cell is wide enough for "token" and a 16-digit token on one line; the token never breaks, the owner's name gets "…". */
.shardmap { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:6px; margin-top:12px; }
.shard { border-radius:6px; padding:6px 8px; font-size:12px; display:flex; flex-direction:column; border:1px solid rgba(0,0,0,.08); min-width:0; }
.shard b { font-size:14px; } .shard small { color:#374151; }
.shard .owner { display:flex; min-width:0; white-space:nowrap; }
.shard .owner .host { overflow:hidden; text-overflow:ellipsis; min-width:0; } .shard .owner .pid { flex:none; }
.shard.unowned { background:repeating-linear-gradient(45deg,#fee2e2,#fee2e2 6px,#fff 6px,#fff 12px); border:1px dashed var(--bad); color:var(--bad); }
/* A stopped service: nobody is meant to run it, so grey, never the red of an unowned shard. */
.card.idle { background:#f9fafb; color:var(--muted); } .card.idle h2 { color:var(--muted); }
.shard.off { background:#f3f4f6; border:1px dashed #9ca3af; color:var(--muted); }
.forget { margin:8px 0; } .forget .muted { margin-left:6px; font-size:12px; }
/* Data kept from before a backend went down: grey and faded, so nothing on it reads as live. */
.stale { filter:grayscale(1); opacity:.55; }
#updated.not-live { color:#fca5a5; font-weight:600; }
.alert { background:#fef2f2; border:1px solid var(--bad); color:#991b1b; padding:6px 10px; border-radius:6px; margin:0 0 8px; }
tr.orphan td { background:#fef2f2; }
.banner { background:#fef2f2; border:1px solid var(--bad); color:#991b1b; padding:10px 14px; border-radius:8px; margin-bottom:16px; font-weight:600; }
.flash { background:#ecfdf5; border:1px solid var(--ok); color:#065f46; padding:8px 14px; border-radius:8px; margin-bottom:16px; }
.flash.error { background:#fef2f2; border-color:var(--bad); color:#991b1b; }
form.inline { display:inline; margin:0 4px 0 0; }
button { font:inherit; font-size:13px; padding:3px 12px; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.secondary { background:#fff; color:var(--accent); } button.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
td.actions { white-space:nowrap; }
.bulk { margin-bottom:10px; } .pager a { margin-left:10px; }
/* Search by job id: in the header, outside the part the page script swaps. */
form.search { display:flex; gap:6px; margin:0; }
form.search input { font:12px ui-monospace, SFMono-Regular, Menlo, monospace; width:190px; padding:3px 8px; border-radius:6px; border:1px solid #4b5563; background:#1f2937; color:#fff; }
form.search button.secondary { background:#1f2937; color:#cbd5e1; border-color:#4b5563; }
form.search.big input { width:min(420px, 100%); background:#fff; color:var(--fg); border-color:var(--line); font-size:14px; padding:5px 10px; }
form.search.big button.secondary { background:#fff; color:var(--accent); border-color:var(--accent); }
td a code { color:var(--accent); }
/* The job page. */
h3 { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); margin:4px 0 6px; }
.job-id { font-size:15px; overflow-wrap:anywhere; }
.job-actions { margin:0 0 12px; display:flex; align-items:center; gap:4px; flex-wrap:wrap; } .job-actions .muted { margin-left:6px; font-size:12px; }
.job-grid { display:grid; grid-template-columns:minmax(300px, 1fr) minmax(0, 1.4fr); gap:12px 28px; }
@media (max-width: 760px) { .job-grid { grid-template-columns:minmax(0, 1fr); } }
table.fields th { width:120px; text-transform:none; font-size:13px; letter-spacing:0; white-space:nowrap; }
table.fields td { overflow-wrap:anywhere; }
pre.json { margin:0 0 12px; padding:8px 10px; background:#f8fafc; border:1px solid var(--line); border-radius:6px; font:12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; white-space:pre-wrap; overflow-wrap:anywhere; max-height:420px; overflow:auto; }
.progress { height:14px; background:#e5e7eb; border-radius:7px; overflow:hidden; margin:2px 0 4px; }
.progress .fill { display:block; height:100%; background:var(--accent); border-radius:7px; transition:width .3s; }
.progress-label { margin:0 0 12px; font-variant-numeric:tabular-nums; font-weight:600; }
.error-text { color:var(--bad); overflow-wrap:anywhere; margin:0 0 4px; }
.tag.state { background:#64748b; } .tag.state.ready { background:#0891b2; } .tag.state.running { background:var(--accent); }
.tag.state.retrying { background:var(--warn); } .tag.state.completed { background:var(--ok); } .tag.state.dead { background:var(--bad); }
.tag.state.cancelled { background:#9ca3af; }
/* Throughput charts: one small inline SVG per queue, three to a row at 1280 px, one on a phone. */
.tp-legend { margin:-4px 0 8px; font-size:12px; color:var(--muted); } .tp-legend .swatch { margin-left:12px; } .tp-legend .swatch:first-child { margin-left:0; }
.tp-grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(min(340px, 100%), 1fr)); gap:12px 24px; }
.tp-chart { margin:0; min-width:0; }
.tp-chart figcaption { font-weight:600; overflow-wrap:anywhere; } .tp-chart figcaption small { font-weight:400; color:var(--muted); margin-left:6px; }
.tp-chart svg { display:block; width:100%; max-width:420px; height:auto; }
.tp-chart svg text { font:11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-variant-numeric:tabular-nums; }
`;

/**
 * The page script: polls the page's JSON API every refresh interval and swaps
 * in the server-rendered fragment when it changed. The server reports a
 * backend outage in the fragment (banner, greyed data); the header then says
 * how old the data is instead of "updated". When the dashboard itself cannot
 * be reached the script keeps the page, greys it out the same way and says
 * since when it is not live.
 */
export const JS = `
(function () {
  var body = document.body;
  var api = body.getAttribute('data-api');
  var every = Number(body.getAttribute('data-refresh-ms')) || 1000;
  var content = document.getElementById('content');
  var updated = document.getElementById('updated');
  var last = null;
  var liveAt = Date.now();
  if (!api || !content) return;
  function status(text, stale) {
    if (!updated) return;
    updated.textContent = text;
    updated.className = stale ? 'muted not-live' : 'muted';
  }
  function age(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + ' s' : Math.floor(s / 60) + ' m ' + (s % 60) + ' s';
  }
  function tick() {
    fetch(api + location.search, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (data) {
        content.classList.remove('stale');
        if (typeof data.html === 'string' && data.html !== last) {
          // Replace only when something changed, so a button is not swapped under the pointer for nothing.
          last = data.html;
          content.innerHTML = data.html;
        }
        var from = data.problem && data.problem.dataFrom;
        if (data.problem) status(from ? 'not live: data from ' + new Date(from).toLocaleTimeString() + ', ' + age(Date.now() - from) + ' old' : 'not live: no data read yet', true);
        else { liveAt = Date.now(); status('updated ' + new Date(liveAt).toLocaleTimeString(), false); }
      })
      .catch(function (e) {
        content.classList.add('stale');
        status('dashboard unreachable (' + e.message + '): page from ' + new Date(liveAt).toLocaleTimeString() + ', ' + age(Date.now() - liveAt) + ' old', true);
      })
      .finally(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
`;
