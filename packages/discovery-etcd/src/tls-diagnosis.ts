/**
 * Why a connection to etcd fails when TLS is the cause, in core's plain words
 * (`explainTlsError`). gRPC reports a failed handshake only as
 * `14 UNAVAILABLE: No connection established. Last error: <text>`, without
 * the error's code, and says nothing useful when one side talks TLS and the
 * other does not. So there are two ways in:
 *
 * - {@link explainGrpcTls} reads the text gRPC kept (cheap, any time);
 * - {@link diagnoseEndpoint} probes an endpoint with `node:tls` (or a plain
 *   HTTP/2 preface) and the same certificates, and explains what Node reports
 *   with its code: used while a client has not connected yet, when the answer
 *   decides whether retrying can help.
 *
 * @module
 */

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { explainTlsError } from '@shardwork/core/backend';
import type { CompiledEtcdTls } from './options.js';

/** OpenSSL's verification messages (what gRPC keeps) and Node's code for each (what core explains). */
const VERIFY_MESSAGES: readonly [RegExp, string][] = [
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/certificate is not yet valid/i, 'CERT_NOT_YET_VALID'],
];

/**
 * Core's words for "this port does not speak TLS". Asked of core with the code
 * Node gives for it, so that the wording stays the one every backend uses.
 */
function notTls(): string {
  return (
    explainTlsError({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }) ??
    'TLS: the server does not speak TLS on this port (use the plain scheme, or its TLS port)'
  );
}

/** Words for a plain client at a TLS port (core has none: it explains failed TLS, not missing TLS). */
const EXPECTS_TLS =
  'TLS: the server expects TLS on this port: use etcds:// (or https:// endpoints) with the CA that signed its certificate (tls.caFile, ?ca=)';

/** The TLS explanation hidden in a gRPC error's text, or `undefined`. */
export function explainGrpcTls(error: unknown): string | undefined {
  const direct = explainTlsError(error);
  if (direct !== undefined) return direct;
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const message = String((e as { message?: unknown }).message ?? '');
    for (const [pattern, code] of VERIFY_MESSAGES) {
      if (pattern.test(message)) return explainTlsError({ code, message });
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** `host` and `port` of `http(s)://host:port` (IPv6 without brackets). */
function hostPort(endpoint: string): { host: string; port: number; secure: boolean } {
  const url = new URL(endpoint);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), secure: url.protocol === 'https:' };
}

/** The client connection preface of HTTP/2 and an empty SETTINGS frame: a gRPC server answers with its SETTINGS. */
const H2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

type Outcome =
  | { kind: 'answered' }
  | { kind: 'failed'; error: NodeJS.ErrnoException; handshaken: boolean }
  | { kind: 'silent' };

/**
 * Send the HTTP/2 preface on `socket` once `ready` fires and wait for the first
 * bytes back (the server's SETTINGS), an error, or `timeoutMs`. With TLS the
 * server's alert for a client certificate it rejects arrives only after the
 * client's side of the handshake is done, so "handshake done" is not enough.
 */
function exchange(socket: Socket, ready: 'connect' | 'secureConnect', timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let handshaken = false;
    const finish = (outcome: Outcome) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'silent' }), timeoutMs);
    socket.once(ready, () => {
      handshaken = true;
      socket.write(H2_PREFACE);
    });
    socket.once('data', () => finish({ kind: 'answered' }));
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ kind: 'failed', error, handshaken }));
    socket.once('close', () =>
      finish({
        kind: 'failed',
        error: Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }),
        handshaken,
      }),
    );
  });
}

/**
 * Probe `endpoint` and explain a TLS problem with it, or `undefined` when TLS
 * is not the problem (it answers, is down, or stays silent). `tls` is the
 * client's material (`false`: a plain client).
 */
export async function diagnoseEndpoint(
  endpoint: string,
  tls: false | CompiledEtcdTls,
  timeoutMs: number,
): Promise<string | undefined> {
  const { host, port } = hostPort(endpoint);
  if (tls === false) {
    // A plain client that failed although something listens: does it speak TLS?
    const probe = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const outcome = await exchange(probe, 'secureConnect', timeoutMs);
    return outcome.kind === 'answered' || (outcome.kind === 'failed' && outcome.handshaken) ? EXPECTS_TLS : undefined;
  }
  const probe = tlsConnect({
    host,
    port,
    ALPNProtocols: ['h2'],
    ...(tls.rootCertificate === undefined ? {} : { ca: tls.rootCertificate }),
    ...(tls.certChain === undefined ? {} : { cert: tls.certChain }),
    ...(tls.privateKey === undefined ? {} : { key: tls.privateKey }),
  });
  const outcome = await exchange(probe, 'secureConnect', timeoutMs);
  if (outcome.kind !== 'failed') return undefined;
  const explained = explainTlsError(outcome.error);
  if (explained !== undefined) return explained;
  if (outcome.handshaken || outcome.error.code !== 'ECONNRESET') return undefined;
  // Reset during the handshake: a plain server drops a ClientHello. Ask it in plain HTTP/2.
  const plain = await exchange(netConnect({ host, port }), 'connect', timeoutMs);
  return plain.kind === 'answered' ? notTls() : undefined;
}
