/**
 * The wrapper around every etcd call: its deadline, the mapping of what etcd3
 * throws to shardwork's errors, and the connection state both depend on.
 *
 * - Deadline. Until a first call has succeeded, calls get `dialTimeoutMs`
 *   (connect, TLS and authentication happen in them); after that,
 *   `callTimeoutMs`.
 * - Errors. Refusals that retrying cannot fix are `BackendRefusedError`s (see
 *   `errors.ts`); everything else is a retryable `DiscoveryUnavailableError`.
 *   Each call names the keys it touches ({@link EtcdKeyScope}), so that a
 *   permission error can say which grant is missing.
 * - Recovery. When calls succeed again after a failure, the owner is told
 *   (`onRecovered`), so that watches silenced by the failure start over.
 *
 * @module
 */

import { X509Certificate } from 'node:crypto';
import { type BackendRefusedError, DiscoveryUnavailableError, ShardworkError } from '@shardwork/core';
import {
  ClientClosedError,
  type Etcd3,
  EtcdPermissionDeniedError as Etcd3PermissionDeniedError,
  EtcdAuthenticationFailedError,
  EtcdUserNotFoundError,
  GRPCUnavailableError,
  type ITxnResponse,
} from 'etcd3';
import { EtcdAuthError, type EtcdKeyScope, EtcdPermissionError, EtcdTlsError } from './errors.js';
import type { ServiceKeys } from './keys.js';
import type { CompiledEtcdOptions } from './options.js';
import { diagnoseEndpoint, explainGrpcTls } from './tls-diagnosis.js';
import type { TxnRequest } from './txn.js';

/** gRPC call options carrying a call's deadline (`Date.now()` ms). */
export interface CallOptions {
  deadline: number;
}

/**
 * The calls of one connection: {@link EtcdCalls.run} wraps each one, and
 * {@link EtcdCalls.deadline} gives the deadline for the next gRPC request.
 */
export class EtcdCalls {
  readonly #options: CompiledEtcdOptions;
  readonly #client: Etcd3;
  /** Told, with the time of the last failure, when calls succeed again after one. */
  readonly #onRecovered: (failedAt: number) => void;
  /** The etcd user, for messages: the auth user, else the client certificate's common name. */
  readonly #user: string | undefined;
  #connected = false;
  #degraded = false;
  #diagnosing: Promise<readonly (string | undefined)[]> | undefined;
  /** When the last call failed (`performance.now()`). */
  #failedAt = 0;
  #closed = false;

  constructor(options: CompiledEtcdOptions, client: Etcd3, onRecovered: (failedAt: number) => void) {
    this.#options = options;
    this.#client = client;
    this.#onRecovered = onRecovered;
    this.#user = options.auth?.username ?? certificateUser(options);
  }

  /** Whether {@link EtcdCalls.close} was called: every call rejects from then on. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Reject every call from now on (with `DiscoveryUnavailableError`, "connection closed"). */
  close(): void {
    this.#closed = true;
  }

  /** gRPC call options with the deadline for the next call. */
  deadline(): CallOptions {
    return { deadline: Date.now() + (this.#connected ? this.#options.callTimeoutMs : this.#options.dialTimeoutMs) };
  }

  /** One transaction with the call deadline. */
  txn(request: TxnRequest): Promise<ITxnResponse> {
    return this.#client.kv.txn(request, this.deadline());
  }

  /**
   * Run one backend call: map what etcd3 throws to shardwork's errors (see
   * {@link EtcdCalls.#failure}) and track whether calls succeed.
   * `scope` names the keys the call touches, for permission errors.
   */
  async run<T>(what: string, scope: EtcdKeyScope, run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    let result: T;
    try {
      result = await run();
    } catch (error) {
      if (error instanceof ShardworkError) throw error;
      if (this.#closed || error instanceof ClientClosedError) throw closedError(error);
      this.#degraded = true;
      this.#failedAt = performance.now();
      throw await this.#failure(what, scope, error);
    }
    this.#connected = true;
    if (this.#degraded) {
      // Calls succeed again: a watch stream that has been silent since the
      // failure may be dead without knowing it, and a broken one may be waiting
      // to retry; start those over on a fresh stream now, so that listeners
      // re-list at once.
      this.#degraded = false;
      this.#onRecovered(this.#failedAt);
    }
    return result;
  }

  /**
   * The error for a failed call. Refusals that retrying cannot fix are
   * `BackendRefusedError`s (not retryable, see `errors.ts`): permission denied, a wrong
   * password or no user while etcd has authentication on, and, before the
   * first call succeeded, a TLS set-up that fails at every endpoint (found by
   * probing them, see `tls-diagnosis.ts`). Everything else is a retryable
   * `DiscoveryUnavailableError`, which names the endpoints until a call has
   * succeeded, and carries a TLS explanation when gRPC's message holds one.
   */
  async #failure(
    what: string,
    scope: EtcdKeyScope,
    error: unknown,
  ): Promise<DiscoveryUnavailableError | BackendRefusedError> {
    const user = this.#user;
    if (error instanceof Etcd3PermissionDeniedError) return new EtcdPermissionError(what, user, scope, error);
    if (error instanceof EtcdAuthenticationFailedError) {
      return new EtcdAuthError(what, user, 'wrong user name or password (etcd: authentication failed)', error);
    }
    const message = error instanceof Error ? error.message : String(error);
    if (/user name is empty/.test(message)) {
      return new EtcdAuthError(
        what,
        undefined,
        'etcd has authentication on and this connection names no user: give user:password@ in the URL (or the auth option),' +
          ' or under --client-cert-auth a client certificate whose common name is an etcd user',
        error,
      );
    }
    if (/authentication is not enabled/.test(message)) {
      const detail = 'etcd has authentication off: leave out the user and password, or enable authentication in etcd';
      return new EtcdAuthError(what, user, detail, error);
    }
    if (error instanceof EtcdUserNotFoundError) return new EtcdAuthError(what, user, 'no such etcd user', error);
    const endpoints = this.#options.endpoints;
    const at = this.#connected || endpoints.length === 0 ? '' : ` at ${endpoints.join(', ')}`;
    let explanation = explainGrpcTls(error);
    if (!this.#connected && error instanceof GRPCUnavailableError && endpoints.length > 0) {
      const found = await this.#diagnose();
      const explained = found.filter((e): e is string => e !== undefined);
      const each = endpoints
        .map((endpoint, i) => (found[i] === undefined ? undefined : `${endpoint}: ${found[i]}`))
        .filter((e) => e !== undefined)
        .join('; ');
      if (explained.length === endpoints.length) {
        // Every endpoint refuses for a TLS reason: retrying cannot help.
        const [first] = explained;
        const same = first !== undefined && explained.every((e) => e === first);
        return new EtcdTlsError(what, endpoints, same ? first : each, error);
      }
      // Some endpoints may merely be down: retryable, with what the others said.
      if (explained.length > 0) explanation = each;
    }
    const detail = `${what} failed${at}: ${message}${explanation === undefined ? '' : ` (${explanation})`}`;
    return new DiscoveryUnavailableError('etcd', detail, error);
  }

  /** Probe every endpoint for a TLS problem (one probe at a time per instance). */
  #diagnose(): Promise<readonly (string | undefined)[]> {
    if (this.#diagnosing === undefined) {
      const timeoutMs = Math.min(1000, this.#options.dialTimeoutMs);
      const tls = this.#options.tls;
      this.#diagnosing = Promise.all(
        this.#options.endpoints.map((endpoint) => diagnoseEndpoint(endpoint, tls, timeoutMs).catch(() => undefined)),
      ).finally(() => {
        this.#diagnosing = undefined;
      });
    }
    return this.#diagnosing;
  }
}

/** The scope of a call on one key of a service: readwrite on the service prefix covers it. */
export function keyScope(keys: ServiceKeys, key: string): EtcdKeyScope {
  return { key, prefix: false, permission: 'readwrite', grant: keys.root };
}

/** The scope of a call on a range of keys under `grant`. */
export function prefixScope(key: string, permission: 'read' | 'readwrite', grant = key): EtcdKeyScope {
  return { key, prefix: true, permission, grant };
}

/** The common name of the client certificate: the etcd user under `--client-cert-auth` when no password is given. */
function certificateUser(options: CompiledEtcdOptions): string | undefined {
  const chain = options.tls === false ? undefined : options.tls.certChain;
  if (chain === undefined) return undefined;
  try {
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(chain).subject)?.[1];
    return cn;
  } catch {
    return undefined;
  }
}

function closedError(cause?: unknown): DiscoveryUnavailableError {
  return new DiscoveryUnavailableError('etcd', 'connection closed', cause);
}
