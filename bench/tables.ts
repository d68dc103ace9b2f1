/**
 * The markdown tables `pnpm bench` prints (bench/run.ts measures, this file
 * lays out): one function per section, writing to stdout.
 */

import type { LatencyResult } from './latency.js';
import { markdownTable, ms, num, summarize } from './lib/stats.js';
import type { MovementResult } from './movement.js';
import type { ScaleResult } from './scale.js';

/** Print one line (or an empty one) of the report on stdout. */
export const out = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};

/** The handoff, failover and join tables of the sections measured. */
export function latencyTables(results: readonly LatencyResult[], sections: ReadonlySet<string>): void {
  const shape = (r: LatencyResult): string => `${r.replicas} × ${r.shards}`;
  if (sections.has('handoff')) {
    out('### Graceful handoff: stop → every shard of the leaver owned by another replica\n');
    const rows = results.map((r) => {
      const s = summarize(r.handoff);
      const own = summarize(r.handoffLeaverStop);
      return [
        r.backend,
        String(r.ttlMs),
        shape(r),
        String(s?.n ?? 0),
        ms(s?.median),
        ms(s?.p99),
        ms(s?.max),
        ms(own?.median),
        ms(own?.p99),
      ];
    });
    out(
      markdownTable(
        [
          'backend',
          'TTL ms',
          'replicas × shards',
          'runs',
          'median ms',
          'p99 ms',
          'max ms',
          "leaver's stop(), median ms",
          "leaver's stop(), p99 ms",
        ],
        rows,
      ),
    );
    out();
  }
  if (sections.has('failover')) {
    out('### Crash failover: kill -9 → every shard of the dead replica owned by another replica\n');
    const rows = results.map((r) => {
      const s = summarize(r.failover);
      const left = summarize(r.leaseLeftAtCrash);
      const after = summarize(r.failoverAfterExpiry);
      return [
        r.backend,
        String(r.ttlMs),
        shape(r),
        String(s?.n ?? 0),
        ms(s?.median),
        ms(s?.p99),
        num(s === undefined ? undefined : s.median / r.ttlMs, 2),
        num(s === undefined ? undefined : s.p99 / r.ttlMs, 2),
        ms(left?.median),
        ms(after?.median),
        ms(after?.p99),
      ];
    });
    out(
      markdownTable(
        [
          'backend',
          'TTL ms',
          'replicas × shards',
          'runs',
          'median ms',
          'p99 ms',
          'median / TTL',
          'p99 / TTL',
          'lease left at kill, median ms',
          'after lease expiry, median ms',
          'after lease expiry, p99 ms',
        ],
        rows,
      ),
    );
    out();
  }
  if (sections.has('join')) {
    out('### Join: `worker.start()` of a new replica → it holds its fair share (⌊T/N⌋)\n');
    const rows = results.map((r) => {
      const s = summarize(r.join);
      return [
        r.backend,
        String(r.ttlMs),
        shape(r),
        String(Math.floor(r.shards / r.replicas)),
        String(s?.n ?? 0),
        ms(s?.median),
        ms(s?.p99),
        ms(s?.max),
      ];
    });
    out(
      markdownTable(
        ['backend', 'TTL ms', 'replicas × shards', 'fair share', 'runs', 'median ms', 'p99 ms', 'max ms'],
        rows,
      ),
    );
    out();
  }
}

/** Movement per join and leave, per strategy. */
export function movementTables(result: MovementResult, churn: number): void {
  const names = Object.keys(result.single[0]?.strategies ?? {});
  out('### Movement per join and leave (shards whose owner changes), from the steady state of N replicas\n');
  out('Leave: mean over which replica leaves, worst case in parentheses. Minimum: see docs/benchmarks.md.\n');
  const rows = result.single.map((r) => [
    String(r.n),
    String(r.t),
    r.event,
    num(r.minimum, 1),
    ...names.map((name) => {
      const s = r.strategies[name];
      if (s === undefined) return '–';
      return r.event === 'join' ? String(s.mean) : `${num(s.mean, 1)} (${s.max})`;
    }),
  ]);
  out(markdownTable(['N', 'T', 'event', 'minimum', ...names], rows));
  out();
  out(`### Movement over ${churn} random joins and leaves (N kept within [N/2, 2N])\n`);
  out('Total moves, their ratio to the total minimum, and how many events moved more than their minimum.\n');
  const churnRows = result.churn.map((r) => [
    String(r.n),
    String(r.t),
    ...names.map((name) => {
      const s = r.strategies[name];
      if (s === undefined) return '–';
      return `${s.moves} (×${num(s.minimum === 0 ? undefined : s.moves / s.minimum, 2)}; ${s.eventsAboveMinimum} above)`;
    }),
  ]);
  out(markdownTable(['N', 'T', ...names], churnRows));
  out();
}

/** Convergence, load on the backend and membership cost at 50–200 replicas. */
export function scaleTables(results: readonly ScaleResult[]): void {
  out('### Scale: simultaneous start of every replica → balanced\n');
  const phase = (x: number | undefined, r: ScaleResult): string =>
    x === undefined ? `> ${(r.convergeTimeoutMs / 1000).toFixed(0)} s` : ms(x);
  out(
    markdownTable(
      [
        'backend',
        'replicas',
        'shards',
        'TTL ms',
        'all registered ms',
        'all shards owned ms',
        'balanced ms',
        'slowest start() ms',
        'passes / replica',
        'snapshots / replica',
        'claim requests (T)',
        'server requests',
        'server CPU s',
        'replicas CPU s',
        'leases lost',
        'worker errors (≤ 5 each)',
        'state at the end',
      ],
      results.map((r) => [
        r.backend,
        `${r.replicas} (${r.processes} proc)`,
        String(r.shards),
        String(r.ttlMs),
        phase(r.allMembersMs, r),
        phase(r.allCoveredMs, r),
        phase(r.convergeMs, r),
        ms(r.slowestStartMs),
        num((r.duringConvergence.resolver.passes ?? 0) / r.replicas, 1),
        num((r.duringConvergence.calls.snapshot ?? 0) / r.replicas, 0),
        `${r.duringConvergence.calls.claimMany ?? 0} (${r.shards})`,
        r.duringConvergence.serverRequests === undefined ? '–' : String(Math.round(r.duringConvergence.serverRequests)),
        num(r.duringConvergence.serverCpuMs === undefined ? undefined : r.duringConvergence.serverCpuMs / 1000, 1),
        num(r.duringConvergence.replicaCpuMs / 1000, 1),
        String(r.leasesLost),
        String(r.errors),
        r.convergeMs === undefined ? r.convergeDetail : 'balanced',
      ]),
    ),
  );
  out();
  out('### Scale: steady state after convergence\n');
  const steady = results.filter((r) => r.convergeMs !== undefined);
  out(
    markdownTable(
      [
        'backend',
        'replicas',
        'window s',
        'server requests / replica / s',
        'contract calls / replica / s',
        'CPU / replica, % of a core',
        'RSS growth / replica MiB',
        'host RSS / replica MiB',
        'server CPU %',
        'server RSS MiB',
      ],
      steady.map((r) => [
        r.backend,
        `${r.replicas} (${r.processes} proc)`,
        num(r.windowMs / 1000, 0),
        num(r.serverRequestsPerReplicaSec, 2),
        num(
          Object.values(r.callsPerReplicaSec).reduce((a, b) => a + b, 0),
          2,
        ),
        num(r.cpuPctPerReplica, 2),
        num(r.rssMiBPerReplica, 2),
        num(r.rssTotalMiBPerReplica, 1),
        num(r.serverCpuPct, 1),
        num(r.serverRssMiB, 0),
      ]),
    ),
  );
  out();
  out("Per method, per replica per second (server side; the workers' contract calls):\n");
  const fmt = (record: Readonly<Record<string, number>>): string =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(', ');
  out(
    markdownTable(
      ['backend', 'replicas', 'server', 'contract calls'],
      steady.map((r) => [r.backend, String(r.replicas), fmt(r.serverByMethod) || '–', fmt(r.callsPerReplicaSec)]),
    ),
  );
  out();
  membershipTable(steady);
  const errored = results.filter((r) => r.errorSamples.length > 0);
  if (errored.length > 0) {
    out('Worker errors seen (first distinct messages):\n');
    for (const r of errored) out(`- ${r.backend} ${r.replicas}: ${r.errorSamples.map((e) => `\`${e}\``).join('; ')}`);
    out();
  }
}

/** Least-squares fit y = a + b·x, and R². */
function linearFit(points: readonly (readonly [number, number])[]): { a: number; b: number; r2: number } | undefined {
  if (points.length < 2) return undefined;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const syy = points.reduce((s, [, y]) => s + (y - my) ** 2, 0);
  if (sxx === 0) return undefined;
  const b = sxy / sxx;
  return { a: my - b * mx, b, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/** What one join and one leave cost the whole cluster, per N, with a linear fit over N. */
function membershipTable(results: readonly ScaleResult[]): void {
  const rows = results.filter((r) => r.join !== undefined || r.leave !== undefined);
  if (rows.length === 0) return;
  out(
    '### Scale: one replica joins, then leaves (requests summed over the cluster; heartbeats and periodic version checks excluded)\n',
  );
  const fmt = (record: Readonly<Record<string, number>>): string =>
    Object.entries(record)
      .filter(([k]) => k !== 'renew' && k !== 'version')
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  out(
    markdownTable(
      [
        'backend',
        'replicas',
        'join: balanced ms',
        'join: requests',
        'leave: balanced ms',
        'leave: requests',
        'join calls',
        'leave calls',
      ],
      rows.map((r) => [
        r.backend,
        String(r.replicas),
        ms(r.join?.ms),
        String(r.join?.requests ?? '–'),
        ms(r.leave?.ms),
        String(r.leave?.requests ?? '–'),
        fmt(r.join?.calls ?? {}),
        fmt(r.leave?.calls ?? {}),
      ]),
    ),
  );
  out();
  for (const backend of new Set(rows.map((r) => r.backend))) {
    for (const kind of ['join', 'leave'] as const) {
      const points = rows
        .filter((r) => r.backend === backend && r[kind] !== undefined)
        .map((r) => [r.replicas, r[kind]?.requests ?? 0] as const);
      const fit = linearFit(points);
      const quad = linearFit(points.map(([x, y]) => [x * x, y] as const));
      if (fit === undefined) continue;
      out(
        `- ${backend} ${kind}: requests ≈ ${fit.a.toFixed(1)} + ${fit.b.toFixed(2)}·N (R² ${fit.r2.toFixed(3)}; ` +
          `a fit in N² has R² ${quad?.r2.toFixed(3) ?? '–'})`,
      );
    }
  }
  out();
}
