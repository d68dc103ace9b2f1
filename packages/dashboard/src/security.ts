import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { DashboardAuth, DashboardWarning } from './options.js';

/** Compare two strings in time independent of where they differ (hashing first evens out lengths). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** A random token, URL safe. */
export const randomToken = (): string => randomBytes(32).toString('base64url');

/**
 * Whether `host` is certainly a loopback address (`127.0.0.0/8`, `::1`,
 * `localhost`). Anything else, including `0.0.0.0`, `::` and host names,
 * may be reachable from the network.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    // The URL parser writes every IPv6 form the same way: [::1], and [::ffff:7f00:1] for ::ffff:127.0.0.1.
    const canonical = new URL(`http://[${h}]/`).hostname;
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:/.test(canonical);
  }
  return false;
}

/**
 * The warning for a dashboard that anyone on the network can use: listening
 * beyond loopback without `auth`. `undefined` when it is not exposed that way.
 */
export function exposureWarning(o: {
  readonly host: string;
  readonly port: number;
  readonly auth: DashboardAuth | undefined;
  readonly readOnly: boolean;
}): DashboardWarning | undefined {
  if (o.auth !== undefined || isLoopbackHost(o.host)) return undefined;
  const can = o.readOnly
    ? 'read every service, member and job (with its arguments and errors)'
    : 'read every service, member and job (with its arguments and errors) and retry, delete, cancel, promote and pause jobs, and forget stopped services';
  const address = o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  return {
    code: 'UNAUTHENTICATED_NETWORK_BIND',
    host: o.host,
    port: o.port,
    message:
      `The dashboard listens on ${address}, which is reachable from the network, without authentication: ` +
      `anyone who can reach that port can ${can}. Add a token (auth: { token }) or a user and password ` +
      '(auth: { username, password }) and put TLS in front, or listen on 127.0.0.1 (the default).',
  };
}

/** Headers sent with every response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** Name of the cookie that carries a token session after `?token=`. */
export const SESSION_COOKIE = 'shardwork_session';

/** What a request's credentials amount to. */
export type AuthVerdict = 'ok' | 'missing' | 'bad';

/** Checks credentials for one {@link DashboardAuth}. */
export class Authenticator {
  readonly #auth: DashboardAuth | undefined;
  /** The cookie value: derived from the token with a per-process secret, so the cookie never holds the token. */
  readonly session: string;

  constructor(auth: DashboardAuth | undefined) {
    this.#auth = auth;
    const secret = randomToken();
    this.session =
      auth !== undefined && 'token' in auth
        ? createHash('sha256').update(`${secret}:${auth.token}`).digest('base64url')
        : '';
  }

  get kind(): 'none' | 'token' | 'basic' {
    return this.#auth === undefined ? 'none' : 'token' in this.#auth ? 'token' : 'basic';
  }

  /** Whether `token` is the configured token. */
  tokenMatches(token: string): boolean {
    return this.#auth !== undefined && 'token' in this.#auth && safeEqual(token, this.#auth.token);
  }

  /** Judge the `Authorization` header and the session cookie. */
  check(authorization: string | undefined, cookie: string | undefined): AuthVerdict {
    const auth = this.#auth;
    if (auth === undefined) return 'ok';
    if ('token' in auth) {
      if (cookie !== undefined && safeEqual(cookie, this.session)) return 'ok';
      const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
      if (match === null) return cookie === undefined ? 'missing' : 'bad';
      return this.tokenMatches((match[1] ?? '').trim()) ? 'ok' : 'bad';
    }
    const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '');
    if (match === null) return 'missing';
    const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'bad';
    // Both compared, always, so the time does not tell which one was wrong.
    const user = safeEqual(decoded.slice(0, colon), auth.username);
    const pass = safeEqual(decoded.slice(colon + 1), auth.password);
    return user && pass ? 'ok' : 'bad';
  }
}
