/**
 * Free loopback ports for the servers and proxies the tests start.
 *
 * @module
 */

import { createServer } from 'node:net';

/** A TCP port that was free a moment ago on 127.0.0.1 (listen on port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port === 0 ? reject(new Error('could not find a free port')) : resolve(port)));
    });
  });
}
