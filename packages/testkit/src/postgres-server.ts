/**
 * A throw-away PostgreSQL server for tests that restart, crash, pause or cut
 * it: `initdb` into a temporary directory and `postgres` on a free loopback
 * port, never the system server on 5432. Its binaries come from
 * `PG_BIN` or Debian's `/usr/lib/postgresql/<version>/bin` (the `postgresql`
 * package). PostgreSQL refuses to run as root: when the tests run as root
 * (CI does), the server runs as the `postgres` user that package creates.
 *
 * A crash (`kill -9`) and a pause (`SIGSTOP`) reach the postmaster and every
 * one of its processes at once, as a machine failure would. `fsync` stays on (as in production), so what a client saw
 * committed survives a crash.
 *
 * ```ts
 * const server = await startPostgres();
 * const client = new pg.Client({ connectionString: server.url });
 * await server.crash(); // kill -9 of every process of the server, then start again: committed data is there
 * await server.stop();
 * ```
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { killOnExit } from './on-exit.js';
import { freePort } from './ports.js';

/** A running test server. */
export interface PostgresTestServer {
  /** Its loopback port. */
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  readonly url: string;
  /** Process id of the current postmaster. */
  readonly pid: number | undefined;
  /** Run one SQL statement as the superuser (a connection of its own) and return its rows. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<R[]>;
  /**
   * A crash: `kill -9` of the postmaster and every backend, then the server
   * starts again on the same directory and port (crash recovery replays the
   * WAL: what was committed is there). `downMs` keeps the port closed that long.
   */
  crash(opts?: { downMs?: number }): Promise<void>;
  /** `pg_ctl restart -m <mode>`: `fast` (sessions end cleanly) or `immediate` (no checkpoint; recovery on start). */
  restart(opts?: { mode?: 'fast' | 'immediate'; downMs?: number }): Promise<void>;
  /** SIGSTOP every process of the server: connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONT after {@link PostgresTestServer.pause}. */
  resume(): void;
  /** Stop the server (immediate) and remove its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface PostgresServerOptions {
  /** More `-c name=value` settings, e.g. `{ max_connections: '200' }`. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** The postmaster and its children (PostgreSQL gives each backend a session of its own, so a group signal misses them). */
function serverPids(postmaster: number): number[] {
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid (after the parenthesised command name).
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === postmaster) pids.push(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}

/** Send `signal` to every process of the server. */
function signalServer(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  for (const pid of serverPids(child.pid)) {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  }
}

/** The directory of PostgreSQL's server binaries (`PG_BIN`, else the newest Debian one). */
export function postgresBinDir(): string {
  const given = process.env.PG_BIN;
  if (given !== undefined && given !== '') return given;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(
      `no PostgreSQL server binaries under ${root}: install them (apt-get install -y postgresql) or set PG_BIN to the directory of initdb and postgres`,
    );
  }
  return join(root, newest, 'bin');
}

/** The uid and gid to run as: the `postgres` user when this process is root (PostgreSQL refuses root). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'PostgreSQL cannot run as root and there is no "postgres" user: install the postgresql package (it creates one) or run the tests as another user',
    );
  }
}

/** Start a private PostgreSQL server. */
export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresTestServer> {
  const bin = postgresBinDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'shardwork-pg-'));
  const data = join(dir, 'data');
  if (user !== undefined) chownSync(dir, user.uid, user.gid);
  execFileSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], {
    stdio: 'pipe',
    ...(user ?? {}),
  });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const settings = { fsync: 'on', synchronous_commit: 'on', ...options.settings };
  let child: ChildProcess | undefined;
  let stopped = false;

  const logOf = (): string => {
    try {
      return readFileSync(join(dir, 'postgres.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      return '(no log)';
    }
  };

  const spawnOnce = (): ChildProcess => {
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    const proc = spawn(
      'sh',
      ['-c', `exec "$0" "$@" >>${JSON.stringify(join(dir, 'postgres.log'))} 2>&1`, join(bin, 'postgres'), ...args],
      { detached: true, stdio: 'ignore', ...(user ?? {}) },
    );
    const forget = killOnExit(() => signalServer(proc, 'SIGKILL'));
    proc.once('exit', forget);
    return proc;
  };

  const ready = async (proc: ChildProcess, withinMs: number): Promise<boolean> => {
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) return false;
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        // Starting, or recovering.
      } finally {
        await client.end().catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`PostgreSQL on port ${port} did not accept connections within ${withinMs} ms: ${logOf()}`);
  };

  /** Start; a crashed server's backends may still hold its shared memory for a moment: try again. */
  const boot = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const proc = spawnOnce();
      if (await ready(proc, 30_000)) {
        child = proc;
        return;
      }
      if (Date.now() > deadline) throw new Error(`PostgreSQL on port ${port} exited at start: ${logOf()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  /** Send `signal` to the server's process group and wait until the postmaster is gone. */
  const down = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    signalServer(proc, 'SIGCONT');
    // A crash kills every process at once; a shutdown is the postmaster's signal (pg_ctl's modes).
    if (signal === 'SIGKILL') signalServer(proc, signal);
    else proc.kill(signal);
    await exited;
  };

  await boot();

  return {
    port,
    url,
    get pid() {
      return child?.pid;
    },
    async query<R extends Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<R[]> {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query<R>(sql, values)).rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async crash({ downMs = 0 } = {}) {
      await down('SIGKILL');
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await boot();
    },
    async restart({ mode = 'fast', downMs = 0 } = {}) {
      // pg_ctl's modes are these signals to the postmaster.
      await down(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await boot();
    },
    pause() {
      if (child !== undefined) signalServer(child, 'SIGSTOP');
    },
    resume() {
      if (child !== undefined) signalServer(child, 'SIGCONT');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await down('SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
