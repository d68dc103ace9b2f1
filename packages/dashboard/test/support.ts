import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/** Repository root: replica scripts run from there so that tsx and the source condition resolve. */
export const ROOT = new URL('../../../', import.meta.url).pathname;

/** A replica child process of `service`. */
export interface Replica {
  readonly child: ChildProcess;
  readonly instance: string;
}

/** Start one replica (test/replica.ts) and wait until it has registered. */
export async function startReplica(service: string, discovery: string, shards = 6): Promise<Replica> {
  const child = spawn(
    process.execPath,
    ['--conditions=@shardwork/source', '--import', 'tsx', 'packages/dashboard/test/replica.ts'],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        SHARDWORK_TEST_SERVICE: service,
        SHARDWORK_TEST_DISCOVERY: discovery,
        SHARDWORK_TEST_SHARDS: String(shards),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  const instance = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica did not start: ${out}`)), 60_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /ready (\S+)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited with ${code}: ${out}`));
    });
  });
  return { child, instance };
}

/** Kill a replica (SIGKILL unless told) and wait for it to exit. */
export async function killReplica(replica: Replica, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null) return;
  const exited = once(replica.child, 'exit');
  replica.child.kill(signal);
  await exited;
}

/** A random name for a test's own keyspace. */
export const randomName = (prefix: string): string => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

/** Chromium launch options for Debian's package. */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
};
