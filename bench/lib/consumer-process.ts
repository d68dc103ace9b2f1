/**
 * A consumer child process of the job benchmarks, as the drivers see it: it
 * runs `script` with its configuration in BENCH_CONSUMER and reads the JSON
 * lines it prints (`ready`, `first`, `count`, `start`; see
 * bench/jobs-consumer.ts). Consumers load the built packages (dist/, as users
 * run them): the bench commands build first.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';

/** One consumer child and what it reported so far. */
export class ConsumerProcess {
  readonly child: ChildProcess;
  /** Resolves with the monotonic ms of its `ready` line. */
  readonly ready: Promise<number>;
  /** Monotonic ms of its first job start. */
  first = Number.POSITIVE_INFINITY;
  /** Completions so far, and when that count last grew. */
  count = 0;
  countAt = 0;
  /** Every job start, when the consumer reports them. */
  readonly starts: { id: string; t: number }[] = [];

  constructor(script: string, config: object) {
    this.child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, BENCH_CONSUMER: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.ready = new Promise((resolve, reject) => {
      let buffer = '';
      this.child.stdout?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
          const msg = JSON.parse(buffer.slice(0, nl)) as { type: string; t: number; n?: number; id?: string };
          buffer = buffer.slice(nl + 1);
          if (msg.type === 'ready') resolve(msg.t);
          else if (msg.type === 'first') this.first = msg.t;
          else if (msg.type === 'count') {
            if ((msg.n ?? 0) > this.count) this.countAt = msg.t;
            this.count = msg.n ?? 0;
          } else if (msg.type === 'start') this.starts.push({ id: msg.id as string, t: msg.t });
        }
      });
      this.child.once('exit', (code) => reject(new Error(`consumer exited with ${code}`)));
    });
    this.ready.catch(() => undefined);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
