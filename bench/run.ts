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
import { markdownTable } from './lib/stats.js';
import { runMovement } from './movement.js';
import { runScale, type ScaleResult } from './scale.js';
import { latencyTables, movementTables, out, scaleTables } from './tables.js';

const SECTIONS = ['handoff', 'failover', 'join', 'movement', 'scale'] as const;
type Section = (typeof SECTIONS)[number];
const BACKENDS = ['memory', 'redis', 'etcd', 'postgres'] as const;
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
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

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
