/**
 * The parent's handle on one replica-host child process (`bench/replica-host.ts`).
 *
 * @module
 */

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onLines, spawnSource } from '@shardwork/testkit';
import { HOST_CONFIG_ENV, type HostCommand, type HostConfig, type HostMessage } from './protocol.js';

const MAIN = fileURLToPath(new URL('../replica-host.ts', import.meta.url));

/** One child process running `config.workers` replicas. */
export class HostProcess {
  readonly config: HostConfig;
  readonly #child: ChildProcess;
  readonly #listeners = new Set<(message: HostMessage) => void>();
  /** The last lines of stderr and unparsable stdout, for error messages. */
  readonly #log: string[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the `standby` message (modules loaded, no worker started). */
  readonly standby: Promise<Extract<HostMessage, { e: 'standby' }>>;

  constructor(config: HostConfig) {
    this.config = config;
    this.#child = spawnSource(MAIN, {
      env: { ...process.env, [HOST_CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.#child.once('exit', (code, signal) => resolve({ code, signal })));
    onLines(this.#child.stdout, (line) => {
      let message: HostMessage;
      try {
        message = JSON.parse(line) as HostMessage;
      } catch {
        this.#remember(line);
        return;
      }
      if (message.e === 'err' || message.e === 'fatal') this.#remember(`${message.e}: ${message.msg}`);
      if (message.e === 'lost') this.#remember(`lease lost: ${message.id}`);
      for (const listener of [...this.#listeners]) listener(message);
    });
    this.#child.stderr?.on('data', (chunk: Buffer) => this.#remember(chunk.toString()));
    this.standby = this.next((m): m is Extract<HostMessage, { e: 'standby' }> => m.e === 'standby', 60_000);
    this.standby.catch(() => undefined);
  }

  #remember(line: string): void {
    this.#log.push(line.trimEnd());
    if (this.#log.length > 50) this.#log.shift();
  }

  /** Recent stderr and error reports. */
  get log(): string {
    return this.#log.join('\n');
  }

  /** Process id. */
  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Listen to every message; returns the unsubscribe function. */
  onMessage(listener: (message: HostMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The next message matching `predicate`; rejects after `timeoutMs` or when the process exits first. */
  next<T extends HostMessage>(predicate: (message: HostMessage) => message is T, timeoutMs: number): Promise<T>;
  next(predicate: (message: HostMessage) => boolean, timeoutMs: number): Promise<HostMessage>;
  next(predicate: (message: HostMessage) => boolean, timeoutMs: number): Promise<HostMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`replica host ${this.pid}: no expected message within ${timeoutMs} ms\n${this.log}`));
      }, timeoutMs);
      const off = this.onMessage((message) => {
        if (!predicate(message)) return;
        clearTimeout(timer);
        off();
        resolve(message);
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        off();
        reject(new Error(`replica host ${this.pid} exited (code ${code}, signal ${signal})\n${this.log}`));
      });
    });
  }

  /** Send a command on stdin. */
  send(command: HostCommand): void {
    this.#child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** Send a signal if the process is alive. */
  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.#child.kill(signal);
  }

  /** Current resource usage and call counts. */
  async stats(timeoutMs = 10_000): Promise<Extract<HostMessage, { e: 'stats' }>> {
    const reply = this.next((m): m is Extract<HostMessage, { e: 'stats' }> => m.e === 'stats', timeoutMs);
    this.send({ cmd: 'stats' });
    return reply;
  }

  /** Graceful stop (the `stop` command), then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (!this.alive) return;
    this.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** kill -9 and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}
