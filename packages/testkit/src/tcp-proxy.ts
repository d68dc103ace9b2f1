/**
 * A loopback TCP proxy that can cut or stall the connections through it, to
 * simulate partitions between one replica and its backend.
 */

import { connect, createServer, type Server, type Socket } from 'node:net';

/** Proxy from a free loopback port to `target`. */
export class TcpProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<[Socket, Socket]>();
  #mode: 'open' | 'cut' | 'stalled' = 'open';

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Start listening on 127.0.0.1 with a free port. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    if (!/^(127\.|::1$|localhost$)/.test(target.host))
      throw new Error(`proxy targets must be loopback, got ${target.host}`);
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (socket) => proxy.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** The port to connect to instead of the target's. */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  /** Current mode. */
  get mode(): 'open' | 'cut' | 'stalled' {
    return this.#mode;
  }

  /** Reset every connection and refuse new ones until {@link heal}. */
  cut(): void {
    this.#mode = 'cut';
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  /** Keep connections open but forward nothing (a black hole) until {@link heal}. */
  stall(): void {
    this.#mode = 'stalled';
    for (const [a, b] of this.#pairs) {
      a.pause();
      b.pause();
    }
  }

  /** Forward again. Connections cut earlier stay closed; clients reconnect. */
  heal(): void {
    this.#mode = 'open';
    for (const [a, b] of this.#pairs) {
      a.resume();
      b.resume();
    }
  }

  /** Close the listener and every connection. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = connect(this.#target.port, this.#target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => {
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => {
        if (this.#mode === 'open') from.resume();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
    if (this.#mode === 'stalled') {
      client.pause();
      upstream.pause();
    }
  }
}
