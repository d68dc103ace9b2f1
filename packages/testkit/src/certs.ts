/**
 * Throw-away certificates for TLS tests, made with the `openssl` command: a
 * CA, a server certificate for 127.0.0.1/localhost (also usable by etcd peers),
 * client certificates with any common name, and the broken ones a test needs
 * (signed by another CA, expired).
 *
 * ```ts
 * const certs = await makeCerts();
 * certs.ca;                        // PEM path of the CA
 * certs.server.cert, certs.server.key;
 * const app = await certs.client('app');        // CN=app, signed by the CA
 * const old = await certs.client('old', { expired: true });
 * await certs.remove();
 * ```
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, as PEM file paths. */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

/** What {@link makeCerts} made. */
export interface TestCerts {
  /** Directory holding every file. */
  readonly dir: string;
  /** The CA certificate (PEM path) that signed everything below. */
  readonly ca: string;
  /** A second CA that signed nothing the servers use: the "wrong CA". */
  readonly otherCa: string;
  /** Server certificate for `127.0.0.1`, `::1` and `localhost`, serverAuth and clientAuth (etcd peers). */
  readonly server: CertPair;
  /** A server certificate like {@link TestCerts.server} that has expired. */
  readonly expiredServer: CertPair;
  /** A server certificate signed by {@link TestCerts.otherCa}. */
  readonly foreignServer: CertPair;
  /** Issue a client certificate with common name `cn` (the etcd user name under client-cert auth). */
  client(cn: string, options?: { expired?: boolean; foreign?: boolean }): Promise<CertPair>;
  /** Remove the directory. */
  remove(): Promise<void>;
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl not found: install it with `apt-get install -y openssl`');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

/** Make a CA, server certificates and the means to issue client certificates in a new temporary directory. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'shardwork-certs-'));
  const path = (name: string) => join(dir, name);
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  const makeCa = async (name: string) => {
    await openssl([
      'req',
      '-x509',
      ...curve,
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.pem`),
      '-days',
      '30',
      '-subj',
      `/CN=shardwork test ${name}`,
    ]);
  };
  await Promise.all([makeCa('ca'), makeCa('other-ca')]);

  let serial = 0;
  const issue = async (
    name: string,
    cn: string,
    ext: string,
    options: { expired?: boolean; foreign?: boolean } = {},
  ): Promise<CertPair> => {
    const ca = options.foreign === true ? 'other-ca' : 'ca';
    const pair = { cert: path(`${name}.pem`), key: path(`${name}.key`) };
    await openssl(['req', ...curve, '-keyout', pair.key, '-out', path(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await writeFile(path(`${name}.ext`), ext);
    await openssl([
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path(`${ca}.pem`),
      '-CAkey',
      path(`${ca}.key`),
      '-set_serial',
      String(1000 + ++serial),
      '-out',
      pair.cert,
      // A negative validity makes notAfter fall before now: an expired certificate.
      '-days',
      options.expired === true ? '-1' : '30',
      '-extfile',
      path(`${name}.ext`),
    ]);
    return pair;
  };
  const serverExt =
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n';
  const clientExt = 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n';

  const [server, expiredServer, foreignServer] = await Promise.all([
    issue('server', 'localhost', serverExt),
    issue('server-expired', 'localhost', serverExt, { expired: true }),
    issue('server-foreign', 'localhost', serverExt, { foreign: true }),
  ]);
  let clients = 0;
  return {
    dir,
    ca: path('ca.pem'),
    otherCa: path('other-ca.pem'),
    server,
    expiredServer,
    foreignServer,
    client: (cn, options) => issue(`client-${++clients}`, cn, clientExt, options),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
