import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** The TLS files the harness shows a member, read: the CA and, under client-cert auth, a client certificate. */
export type HarnessTls = { ca: Buffer; cert?: Buffer; key?: Buffer };

/** An HTTP(S) request to a member's client port; resolves with the parsed JSON body. */
export function requestJson(
  url: string,
  tls: HarnessTls | undefined,
  method: 'GET' | 'POST',
  body?: object,
  headers: Record<string, string> = {},
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const options = { method, timeout: 1000, headers: { 'content-type': 'application/json', ...headers } };
    const onResponse = (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    };
    // The harness does not verify the server's certificate, so that a member
    // with a broken one (expired, other CA) can be started and checked for
    // the tests that need it.
    const req =
      tls === undefined
        ? httpRequest(url, options, onResponse)
        : httpsRequest(url, { ...options, ...tls, rejectUnauthorized: false }, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 1 s`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
