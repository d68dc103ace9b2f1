/**
 * A TCP listener on a free loopback port that accepts connections and never
 * answers (or answers every connection with fixed bytes and closes it): the
 * server that `startTimeoutMs` and TLS diagnostics must cope with.
 *
 * ```ts
 * const silent = await startSilentServer();
 * // connect to 127.0.0.1:silent.port … nothing ever comes back
 * await silent.close();
 * ```
 *
 * @module
 */

import { createServer, type Socket } from 'node:net';
import { freePort } from './ports.js';

/** A running listener of {@link startSilentServer}. */
export interface SilentServer {
  readonly port: number;
  /** Destroy every open connection and stop listening. */
  close(): Promise<void>;
}

/** Listen on a free loopback port; with `reply`, write it to every connection and close it. */
export async function startSilentServer(options: { reply?: string } = {}): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (options.reply !== undefined) socket.end(options.reply);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
