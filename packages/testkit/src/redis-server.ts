/**
 * A throw-away `redis-server` on a free loopback port for tests. Never the
 * system Redis on 6379: every server gets its own port and its own temporary
 * directory, and is killed by `stop()` (or when the test process exits).
 *
 * ```ts
 * const redis = await startRedisServer();
 * const discovery = new RedisDiscovery({ url: redis.url });
 * await redis.restart(); // all data lost, same port
 * await redis.stop();
 * ```
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ShardworkError } from '@shardwork/core';
import { freePort } from './ports.js';

/** A running test server. */
export interface RedisTestServer {
  /** Its loopback port (the TLS port when {@link RedisServerOptions.tls} is set). */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, or `rediss://127.0.0.1:<port>` with TLS. */
  readonly url: string;
  /** Process id of the current server process. */
  readonly pid: number | undefined;
  /** Kill the server and remove its directory. Idempotent. */
  stop(): Promise<void>;
  /**
   * Kill the server and start a new one on the same port. By default all data
   * is lost; with `keepData` it is saved (`SAVE`) first and loaded again (with
   * `aof`, the append-only file already has it: the kill loses nothing).
   * `downMs` keeps the port closed that long in between.
   */
  restart(opts?: { keepData?: boolean; downMs?: number }): Promise<void>;
  /** Send one command and return the raw RESP reply (meant for short replies such as `+OK`). */
  command(...args: string[]): Promise<string>;
}

/** Command to run: `REDIS_SERVER_BIN` or `redis-server` from the PATH. */
const binary = process.env.REDIS_SERVER_BIN ?? 'redis-server';

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export { freePort } from './ports.js';

/** TLS files of a test server (see `certs.ts`). */
export interface RedisServerTls {
  /** Server certificate and key (PEM paths). */
  readonly cert: string;
  readonly key: string;
  /** CA that signs client certificates and that the harness trusts. */
  readonly ca: string;
  /** `--tls-auth-clients`: whether clients must show a certificate. @defaultValue 'yes' */
  readonly authClients?: 'yes' | 'no' | 'optional';
}

/** How the harness reaches a server: plain TCP, or TLS (then it shows the server's own certificate as its client certificate). */
export interface RedisCommandOptions {
  readonly tls?: RedisServerTls;
  /** `AUTH` first with this user and password (e.g. when the default user is off). */
  readonly auth?: readonly [user: string, password: string];
}

/** Send a RESP command and resolve with the first complete reply line(s). */
export function redisCommand(
  port: number,
  args: readonly string[],
  timeoutMs = 1000,
  options: RedisCommandOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const { tls } = options;
    const socket: Socket =
      tls === undefined
        ? createConnection({ host: '127.0.0.1', port })
        : tlsConnect({
            host: '127.0.0.1',
            port,
            ca: readFileSync(tls.ca),
            cert: readFileSync(tls.cert),
            key: readFileSync(tls.key),
          });
    const commands = options.auth === undefined ? [args] : [['AUTH', ...options.auth], args];
    let skip = commands.length - 1; // replies to drop (the AUTH reply)
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply from 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on(tls === undefined ? 'connect' : 'secureConnect', () => {
      for (const c of commands) {
        socket.write(`*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
      }
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (!data.endsWith('\r\n')) return;
      if (skip > 0) {
        const end = data.indexOf('\r\n');
        if (data.startsWith('-')) {
          clearTimeout(timer);
          socket.end();
          resolve(data.slice(0, end + 2));
          return;
        }
        data = data.slice(end + 2);
        skip--;
        if (data === '') return;
      }
      // Bulk replies: wait for the payload line too.
      const bulk = /^\$(\d+)\r\n/.exec(data);
      if (bulk?.[1] !== undefined && data.length < bulk[0].length + Number(bulk[1]) + 2) return;
      clearTimeout(timer);
      socket.end();
      resolve(data);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function log(dir: string): string {
  try {
    return readFileSync(join(dir, 'redis.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

async function waitForPing(
  port: number,
  dir: string,
  child: ChildProcess,
  withinMs: number,
  reach: RedisCommandOptions,
): Promise<void> {
  const deadline = Date.now() + withinMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited early (${child.exitCode ?? child.signalCode}): ${log(dir)}`);
    }
    try {
      if ((await redisCommand(port, ['PING'], 500, reach)).startsWith('+PONG')) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${withinMs} ms`, { cause: last });
}

/** How a test server keeps its data. */
export interface RedisServerOptions {
  /** Append-only file with `appendfsync always`: data survives a kill -9 of the server. @defaultValue false */
  readonly aof?: boolean;
  /** Serve TLS only (`--tls-port`, plain port off). @defaultValue plain TCP */
  readonly tls?: RedisServerTls;
  /** A configuration file, given first on the command line (Sentinel needs one it can rewrite). */
  readonly configFile?: string;
  /** More command line flags, e.g. `['--cluster-enabled', 'yes']` or `['--sentinel']`. @defaultValue [] */
  readonly extraArgs?: readonly string[];
  /** How the harness authenticates its own PINGs and commands. @defaultValue none */
  readonly auth?: readonly [user: string, password: string];
}

function spawnServer(port: number, dir: string, options: RedisServerOptions = {}): Promise<ChildProcess> {
  const { tls } = options;
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          tls.cert,
          '--tls-key-file',
          tls.key,
          '--tls-ca-cert-file',
          tls.ca,
          '--tls-auth-clients',
          tls.authClients ?? 'yes',
        ];
  const child = spawn(
    binary,
    [
      ...(options.configFile === undefined ? [] : [options.configFile]),
      ...listen,
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      options.aof === true ? 'yes' : 'no',
      ...(options.aof === true ? ['--appendfsync', 'always'] : []),
      '--dir',
      dir,
      '--dbfilename',
      'dump.rdb',
      '--logfile',
      join(dir, 'redis.log'),
      ...(options.extraArgs ?? []),
    ],
    { stdio: 'ignore' },
  );
  return new Promise((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(
          new ShardworkError(
            'BACKEND_BINARY_MISSING',
            `redis-server not found (tried "${binary}"). Install it with \`apt-get install -y redis-server\` ` +
              '(or set REDIS_SERVER_BIN to its path).',
            { cause: error },
          ),
        );
      } else reject(error);
    });
    child.once('spawn', () => {
      running.add(child);
      child.once('exit', () => running.delete(child));
      resolve(child);
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Start a fresh `redis-server` on a free loopback port and wait until it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisTestServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'shardwork-redis-'));
  const reach: RedisCommandOptions = {
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.auth === undefined ? {} : { auth: options.auth }),
  };
  let port = 0;
  let child: ChildProcess | undefined;
  // A port found free can be taken before redis binds it: try a few.
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    const candidate = await spawnServer(port, dir, options);
    try {
      await waitForPing(port, dir, candidate, 5000, reach);
      child = candidate;
    } catch (error) {
      await kill(candidate);
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let current: ChildProcess = child;
  let stopped = false;

  const server: RedisTestServer = {
    port,
    url: `${options.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    get pid() {
      return current.pid;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await kill(current);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart(opts = {}) {
      if (stopped) throw new Error('restart() after stop()');
      // With an append-only file every write is on disk already: a kill -9 loses nothing.
      if (opts.keepData === true && options.aof !== true) await redisCommand(port, ['SAVE'], 5000, reach);
      else if (opts.keepData !== true) {
        rmSync(join(dir, 'dump.rdb'), { force: true });
        rmSync(join(dir, 'appendonlydir'), { recursive: true, force: true });
      }
      await kill(current);
      if (opts.downMs !== undefined && opts.downMs > 0) await new Promise((r) => setTimeout(r, opts.downMs));
      current = await spawnServer(port, dir, options);
      await waitForPing(port, dir, current, 5000, reach);
    },
    command(...args: string[]) {
      return redisCommand(port, args, 1000, reach);
    },
  };
  return server;
}
