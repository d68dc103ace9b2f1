/**
 * A throw-away RabbitMQ node on free loopback ports for tests: its own node
 * name, AMQP and distribution ports, data and log directories, no plugins.
 * Never the system broker on 5672. `restart()` keeps the data (quorum queues
 * and durable messages survive it, as on a real broker restart).
 *
 * ```ts
 * const broker = await startRabbitServer();
 * const jobs = createJobQueue(`${broker.url}?prefix=t1`);
 * await broker.restart({ downMs: 2000 });
 * await broker.stop();
 * ```
 *
 * @module
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from './ports.js';
import { sleep } from './wait.js';

/** A running test broker. */
export interface RabbitTestServer {
  /** Its loopback AMQP port. */
  readonly port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>`. */
  readonly url: string;
  /** Process id of the current node (the Erlang VM). */
  readonly pid: number | undefined;
  /** Kill the node (SIGKILL) and remove its directory. Idempotent. */
  stop(): Promise<void>;
  /** Stop the node (SIGTERM: a clean broker shutdown, data kept) and start it again on the same ports. */
  restart(opts?: { downMs?: number; kill?: boolean }): Promise<void>;
  /** Run `rabbitmqctl` against this node (`add_vhost`, `add_user`, `set_permissions`, …); resolves with its output. */
  ctl(...args: string[]): Promise<string>;
}

/** The broker script itself (`/usr/sbin/rabbitmq-server` is a wrapper that switches to the rabbitmq user). */
const binary = process.env.RABBITMQ_SERVER_BIN ?? '/usr/lib/rabbitmq/bin/rabbitmq-server';
const ctlBinary = join(dirname(binary), 'rabbitmqctl');
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
let seq = 0;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Start a private node; resolves once its AMQP port accepts connections. */
export async function startRabbitServer(opts: { startTimeoutMs?: number } = {}): Promise<RabbitTestServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'shardwork-rabbit-'));
  const port = await freePort();
  const distPort = await freePort();
  const name = `swtest${process.pid}n${++seq}@localhost`;
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  // The default delivery acknowledgement timeout (30 min) is kept; the heartbeat floor is lowered for fault tests.
  writeFileSync(join(dir, 'rabbitmq.conf'), 'heartbeat = 5\nlog.console.level = warning\nlog.file = false\n');
  const env = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    // Makes the script exec the Erlang VM, so that our signals reach the broker itself.
    RUNNING_UNDER_SYSTEMD: 'true',
  };
  let child: ChildProcess | undefined;
  let output = '';

  async function launch(): Promise<void> {
    output = '';
    const started = spawn(binary, [], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    child = started;
    running.add(started);
    started.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    });
    started.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    });
    started.once('exit', () => running.delete(started));
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    while (!(await portOpen(port))) {
      if (started.exitCode !== null) throw new Error(`rabbitmq-server exited (${started.exitCode}):\n${output}`);
      if (Date.now() > deadline) throw new Error(`rabbitmq-server did not listen on ${port}:\n${output}`);
      await sleep(100);
    }
  }

  async function kill(signal: NodeJS.Signals): Promise<void> {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill(signal);
    await exited;
    while (await portOpen(port)) await sleep(50);
  }

  await launch();
  return {
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    async stop() {
      await kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    ctl(...args: string[]) {
      return new Promise((resolve, reject) => {
        execFile(ctlBinary, ['-n', name, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
          if (error !== null) reject(new Error(`rabbitmqctl ${args.join(' ')}: ${stderr || error.message}`));
          else resolve(stdout);
        });
      });
    },
    async restart(o = {}) {
      await kill(o.kill === true ? 'SIGKILL' : 'SIGTERM');
      if (o.downMs !== undefined) await sleep(o.downMs);
      await launch();
    },
  };
}
