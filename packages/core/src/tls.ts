/**
 * TLS material from files, checked before any connection is made, and plain
 * words for the TLS failures a deployment meets (wrong CA, expired or
 * mismatched certificate, wrong host name). Every backend package that talks
 * TLS (Redis, etcd) reads its `ca`/`cert`/`key` files through
 * {@link readTlsFiles} and words its connection errors with
 * {@link explainTlsError}.
 *
 * @module
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { InvalidOptionsError } from './errors.js';

/** Paths of PEM files: the CA that signs the server's certificate, and a client certificate with its key. */
export interface TlsFiles {
  /** CA certificate(s) that sign the server's certificate (PEM). */
  readonly ca?: string;
  /** Client certificate chain (PEM), for servers that require client certificates. Needs `key`. */
  readonly cert?: string;
  /** Private key of `cert` (PEM, unencrypted). */
  readonly key?: string;
}

/** What {@link readTlsFiles} read: the files' contents. */
export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

function readPem(option: string, path: unknown): Buffer {
  if (typeof path !== 'string' || path === '') throw new InvalidOptionsError(option, path, 'a path to a PEM file');
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(error);
    throw new InvalidOptionsError(option, path, `a readable PEM file (${why})`);
  }
  if (!data.includes('-----BEGIN ')) {
    throw new InvalidOptionsError(option, path, 'a PEM file (it has no "-----BEGIN" line)');
  }
  return data;
}

function checkCertificate(option: string, path: string, pem: Buffer, now: number): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (error) {
    throw new InvalidOptionsError(option, path, `a PEM certificate (${(error as Error).message})`);
  }
  const until = Date.parse(certificate.validTo);
  if (Number.isFinite(until) && until < now) {
    throw new InvalidOptionsError(
      option,
      path,
      `a certificate that has not expired (it expired on ${new Date(until).toISOString()}; subject ${certificate.subject.replace(/\n/g, ', ')})`,
    );
  }
  const from = Date.parse(certificate.validFrom);
  if (Number.isFinite(from) && from > now) {
    throw new InvalidOptionsError(
      option,
      path,
      `a certificate that is already valid (it is valid only from ${new Date(from).toISOString()})`,
    );
  }
}

/** How {@link readTlsFiles} names the files in messages, and the time certificates must be valid at. */
export interface ReadTlsFilesOptions {
  /** Option names of the three files under `option`. @defaultValue `{ ca: 'ca', cert: 'cert', key: 'key' }` */
  readonly names?: { readonly ca: string; readonly cert: string; readonly key: string };
  /** @defaultValue `Date.now()` */
  readonly now?: number;
}

/**
 * Read and check TLS files: each must exist and hold PEM, certificates must be
 * valid now, and `cert` and `key` must be given together and match.
 *
 * @param option - where the files were configured, for messages, e.g. `tls` or `url`.
 * @throws InvalidOptionsError naming the option, the file and what is wrong with it.
 */
export function readTlsFiles(option: string, files: TlsFiles, options: ReadTlsFilesOptions = {}): TlsMaterial {
  const names = options.names ?? { ca: 'ca', cert: 'cert', key: 'key' };
  const now = options.now ?? Date.now();
  const name = (file: 'ca' | 'cert' | 'key') => `${option}.${names[file]}`;
  if ((files.cert === undefined) !== (files.key === undefined)) {
    const missing = files.cert === undefined ? 'cert' : 'key';
    throw new InvalidOptionsError(name(missing), undefined, 'a client certificate and its key together');
  }
  const material: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  if (files.ca !== undefined) {
    material.ca = readPem(name('ca'), files.ca);
    checkCertificate(name('ca'), files.ca, material.ca, now);
  }
  if (files.cert !== undefined && files.key !== undefined) {
    material.cert = readPem(name('cert'), files.cert);
    checkCertificate(name('cert'), files.cert, material.cert, now);
    material.key = readPem(name('key'), files.key);
    try {
      createSecureContext({ cert: material.cert, key: material.key });
    } catch (error) {
      const message = (error as Error).message;
      throw new InvalidOptionsError(
        name('key'),
        files.key,
        /mismatch/i.test(message)
          ? `the private key of ${files.cert} (the key does not match the certificate)`
          : `an unencrypted PEM private key (${message})`,
      );
    }
  }
  return material;
}

/** Node's certificate verification codes, and OpenSSL alerts a server sends, in plain words. */
const EXPLAINED: readonly [RegExp, string][] = [
  [
    /SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/,
    "the server's certificate is not signed by a trusted CA: give the CA that signed it (ca)",
  ],
  [/CERT_HAS_EXPIRED/, "the server's certificate has expired"],
  [/CERT_NOT_YET_VALID/, "the server's certificate is not valid yet (check the clocks)"],
  [/ERR_TLS_CERT_ALTNAME_INVALID|Hostname\/IP does not match/i, "the server's certificate is not for this host name"],
  [/ALERT_CERTIFICATE_EXPIRED|certificate expired/i, 'the server rejected our client certificate: it has expired'],
  [/ALERT_UNKNOWN_CA|unknown ca/i, 'the server rejected our client certificate: it does not trust its CA'],
  [
    /ALERT_BAD_CERTIFICATE|ALERT_HANDSHAKE_FAILURE|CERTIFICATE_REQUIRED|certificate required|bad certificate/i,
    'the server requires a client certificate it accepts (cert and key)',
  ],
  [
    /WRONG_VERSION_NUMBER|packet length too long|ERR_SSL_HTTP_REQUEST/i,
    'the server does not speak TLS on this port (use the plain scheme, or its TLS port)',
  ],
];

/**
 * A plain explanation of a TLS failure (`"the server's certificate is not
 * signed by a trusted CA: …"`), or `undefined` when `error` is not one.
 * Looks at the error's `code` and message and those of its causes.
 */
export function explainTlsError(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const text = `${(e as { code?: unknown }).code ?? ''} ${(e as { message?: unknown }).message ?? ''}`;
    for (const [pattern, words] of EXPLAINED) if (pattern.test(text)) return `TLS: ${words}`;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
