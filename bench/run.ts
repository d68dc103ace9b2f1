/**
 * shardwork benchmarks: `pnpm bench [flags]`. Prints markdown tables on stdout
 * and progress on stderr. See docs/benchmarks.md for the results and
 * `pnpm bench --help` for the flags.
 *
 * Sections: handoff, failover, join (repeated trials per backend), movement
 * (pure computation over the strategies), scale (50–200 replicas, 1,000
 * shards, one backend server).
 */

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { mulberry32 } from '../test/chaos/schedule.js';
import { type LatencyKind, type LatencyResult, runLatency } from './latency.js';
import { type BenchServer, startServer } from './lib/servers.js';
import { markdownTable, ms, num, summarize } from './lib/stats.js';
import { type MovementResult, runMovement } from './movement.js';
import { runScale, type ScaleResult } from './scale.js';

const SECTIONS = ['handoff', 'failover', 'join', 'movement', 'scale'] as const;
type Section = (typeof SECTIONS)[number];
const BACKENDS = ['memory', 'redis', 'etcd'] as const;
type Backend = (typeof BACKENDS)[number];

const HELP = `Usage: pnpm bench [flags]

  --only LIST            sections: ${SECTIONS.join(',')} (default: all)
  --backend LIST         backends: ${BACKENDS.join(',')} (default: all)
  --trials N             trials of handoff and of failover per backend (default 20)
  --ttl MS               lease TTL of the handoff/failover/join trials (default 2000)
  --replicas N           replicas in the trials (default 4)
  --shards N             shards in the trials (default 32)
  --scale-sizes LIST     replica counts of the scale runs (default 50,100,200)
  --scale-shards N       shards of the scale runs (default 1000)
  --scale-ttl MS         lease TTL of the scale runs (default 10000, the library default)
  --scale-window MS      steady-state measurement window (default 20000)
  --scale-warmup MS      wait after convergence before the window (default 3000)
  --scale-timeout MS     give up on convergence after this long (default 180000)
  --processes N          replica-host processes for Redis/etcd scale runs (default 4)
  --movement-sizes LIST  N of the movement computation (default 3,4,8,50,200)
  --movement-shards LIST T of the movement computation (default 12,32,1000)
  --churn N              random joins/leaves per churn sequence (default 200)
  --seed N               seed of the random choices (default 1)
  --json FILE            also write the raw results as JSON
`;

interface Options {
  sections: Set<Section>;
  backends: Backend[];
  trials: number;
  ttlMs: number;
  replicas: number;
  shards: number;
  scaleSizes: number[];
  scaleShards: number;
  scaleTtlMs: number;
  scaleWindowMs: number;
  scaleWarmupMs: number;
  scaleTimeoutMs: number;
  processes: number;
  movementSizes: number[];
  movementShards: number[];
  churn: number;
  seed: number;
  json: string | undefined;
}

type NumberOption = {
  [K in keyof Options]: Options[K] extends number ? K : never;
}[keyof Options];
type ListOption = { [K in keyof Options]: Options[K] extends number[] ? K : never }[keyof Options];

function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    sections: new Set(SECTIONS),
    backends: [...BACKENDS],
    trials: 20,
    ttlMs: 2000,
    replicas: 4,
    shards: 32,
    scaleSizes: [50, 100, 200],
    scaleShards: 1000,
    scaleTtlMs: 10_000,
    scaleWindowMs: 20_000,
    scaleWarmupMs: 3000,
    scaleTimeoutMs: 180_000,
    processes: 4,
    movementSizes: [3, 4, 8, 50, 200],
    movementShards: [12, 32, 1000],
    churn: 200,
    seed: 1,
    json: undefined,
  };
  const list = (value: string): string[] =>
    value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const int = (flag: string, value: string, min = 1): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer >= ${min}, got "${value}"`);
    return n;
  };
  const ints = (flag: string, value: string): number[] => list(value).map((v) => int(flag, v));
  // Integer flags: the option they set and their minimum.
  const intFlags: Record<string, [NumberOption, number]> = {
    '--trials': ['trials', 1],
    '--ttl': ['ttlMs', 100],
    '--replicas': ['replicas', 2],
    '--shards': ['shards', 1],
    '--scale-shards': ['scaleShards', 1],
    '--scale-ttl': ['scaleTtlMs', 100],
    '--scale-window': ['scaleWindowMs', 100],
    '--scale-warmup': ['scaleWarmupMs', 0],
    '--scale-timeout': ['scaleTimeoutMs', 1000],
    '--processes': ['processes', 1],
    '--churn': ['churn', 1],
    '--seed': ['seed', 0],
  };
  const listFlags: Record<string, ListOption> = {
    '--scale-sizes': 'scaleSizes',
    '--movement-sizes': 'movementSizes',
    '--movement-shards': 'movementShards',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (arg === '--') continue;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new Error(`${flag}: missing value`);
    const intFlag = intFlags[flag];
    if (intFlag !== undefined) {
      o[intFlag[0]] = int(flag, value, intFlag[1]);
      continue;
    }
    const listFlag = listFlags[flag];
    if (listFlag !== undefined) {
      o[listFlag] = ints(flag, value);
      continue;
    }
    switch (flag) {
      case '--only': {
        const picked = list(value);
        const bad = picked.find((s) => !(SECTIONS as readonly string[]).includes(s));
        if (bad !== undefined) throw new Error(`--only: unknown section "${bad}" (${SECTIONS.join(', ')})`);
        o.sections = new Set(picked as Section[]);
        break;
      }
      case '--backend': {
        const picked = list(value);
        const bad = picked.find((s) => !(BACKENDS as readonly string[]).includes(s));
        if (bad !== undefined) throw new Error(`--backend: unknown backend "${bad}" (${BACKENDS.join(', ')})`);
        o.backends = picked as Backend[];
        break;
      }
      case '--json':
        o.json = value;
        break;
      default:
        throw new Error(`unknown flag ${flag}\n\n${HELP}`);
    }
  }
  return o;
}

/** The commit being measured, and whether the work tree differs from it. */
function commitInfo(): string {
  const pinned = process.env.SHARDWORK_BENCH_COMMIT;
  if (pinned !== undefined) return `commit ${pinned.slice(0, 12)} (frozen export, bench/pinned.sh)`;
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], { encoding: 'utf8' }).trim();
    return `commit ${sha.slice(0, 12)}${dirty === '' ? '' : ' with uncommitted changes in packages/'}`;
  } catch {
    return 'unknown commit';
  }
}

const log = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};
const out = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function latencyTables(results: readonly LatencyResult[], sections: ReadonlySet<Section>): void {
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

function movementTables(result: MovementResult, churn: number): void {
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

function scaleTables(results: readonly ScaleResult[]): void {
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

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const random = mulberry32(o.seed);
  const raw: Record<string, unknown> = { argv: process.argv.slice(2), options: { ...o, sections: [...o.sections] } };
  const began = Date.now();
  out('## shardwork benchmarks\n');
  out(`- command: \`pnpm bench${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}\``);
  out(
    `- machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, Node ${process.version}`,
  );
  out(`- code: ${commitInfo()}`);
  out(`- load average at start (1, 5, 15 min): ${load()}`);
  out(`- started: ${new Date(began).toISOString()}`);

  const servers = new Map<Backend, BenchServer>();
  const server = async (backend: Backend): Promise<BenchServer | undefined> => {
    if (backend === 'memory') return undefined;
    let s = servers.get(backend);
    if (s === undefined) {
      s = await startServer(backend);
      servers.set(backend, s);
      out(`- ${backend}: ${s.version}, private server at ${s.url}`);
    }
    return s;
  };
  const loads: Record<string, string> = {};
  try {
    for (const b of o.backends) await server(b);
    out();
    if (o.sections.has('movement')) {
      loads.movement = load();
      log('movement');
      const movement = runMovement(o.movementSizes, o.movementShards, o.churn, random);
      raw.movement = movement;
      movementTables(movement, o.churn);
    }
    const kinds = new Set(
      (['handoff', 'failover', 'join'] as const).filter((k): k is LatencyKind => o.sections.has(k)),
    );
    if (kinds.size > 0) {
      const results: LatencyResult[] = [];
      for (const backend of o.backends) {
        const before = load();
        log(`${backend}: ${[...kinds].join(', ')} — ${o.trials} trials, TTL ${o.ttlMs} ms, load ${before}`);
        const s = await server(backend);
        results.push(
          await runLatency({
            backend,
            ...(s === undefined ? {} : { server: s }),
            kinds,
            trials: o.trials,
            ttlMs: o.ttlMs,
            replicas: o.replicas,
            shards: o.shards,
            random,
            log,
          }),
        );
        loads[`latency ${backend}`] = `${before} → ${load()}`;
      }
      raw.latency = results;
      latencyTables(results, o.sections);
    }
    if (o.sections.has('scale')) {
      const results: ScaleResult[] = [];
      for (const backend of o.backends) {
        for (const replicas of o.scaleSizes) {
          const before = load();
          log(`${backend}: scale ${replicas} replicas × ${o.scaleShards} shards, load ${before}`);
          const s = await server(backend);
          results.push(
            await runScale({
              backend,
              ...(s === undefined ? {} : { server: s }),
              replicas,
              shards: o.scaleShards,
              processes: o.processes,
              ttlMs: o.scaleTtlMs,
              warmupMs: o.scaleWarmupMs,
              windowMs: o.scaleWindowMs,
              convergeTimeoutMs: o.scaleTimeoutMs,
              log,
            }),
          );
          loads[`scale ${backend} ${replicas}`] = `${before} → ${load()}`;
        }
      }
      raw.scale = results;
      scaleTables(results);
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.stop()));
  }
  out('Load average (1, 5, 15 min) before → after each part:\n');
  out(markdownTable(['part', 'load'], Object.entries(loads)));
  out();
  out(
    `Finished in ${((Date.now() - began) / 1000).toFixed(0)} s. p99 is nearest-rank: with fewer than 100 runs it is the maximum.`,
  );
  raw.loads = loads;
  if (o.json !== undefined) {
    writeFileSync(o.json, `${JSON.stringify(raw, null, 2)}\n`);
    log(`raw results written to ${o.json}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
