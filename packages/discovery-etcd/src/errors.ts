/**
 * Errors of the etcd backend. An unreachable or slow etcd is core's
 * `DiscoveryUnavailableError` (retryable); a refusal that retrying with the
 * same configuration cannot fix — a permission the user's roles lack, a wrong
 * password, a TLS set-up that cannot work — is core's `BackendRefusedError`
 * (never retryable, so that a worker's `start()` fails at once instead of
 * retrying until `startTimeoutMs`), as one of the subclasses here, which
 * carry what etcd refused.
 *
 * @module
 */

import { BackendRefusedError } from '@shardwork/core';

/** The keys a call touched and the grant it needs, for {@link EtcdPermissionError}. */
export interface EtcdKeyScope {
  /** The key the call touched, or the prefix when {@link EtcdKeyScope.prefix} is set. */
  readonly key: string;
  /** Whether `key` is a prefix (a range of every key starting with it). */
  readonly prefix: boolean;
  /** The permission type the call needs. */
  readonly permission: 'read' | 'readwrite';
  /** The key prefix a role must cover with {@link EtcdKeyScope.permission}: `<prefix>/<service>/`, or `<prefix>/` for `services()`. */
  readonly grant: string;
}

/** etcd answered "permission denied": the user's roles do not cover the keys of the call. */
export class EtcdPermissionError extends BackendRefusedError {
  /** The backend call that was refused, e.g. `ensureGroup`. */
  readonly operation: string;
  /** The etcd user (the client certificate's common name under client-cert auth), `undefined` when none is known. */
  readonly user: string | undefined;
  /** The keys the call touched and the grant it needs. */
  readonly scope: EtcdKeyScope;

  constructor(operation: string, user: string | undefined, scope: EtcdKeyScope, cause: unknown) {
    const who = user === undefined ? 'this connection' : `user "${user}"`;
    super(
      'etcd',
      'permission',
      `${operation}: permission denied on ${scope.prefix ? 'the prefix' : 'the key'} "${scope.key}" for ${who}` +
        ` (a role of the user needs ${scope.permission} on the prefix "${scope.grant}";` +
        ' see "Least privilege" in the README of @shardwork/discovery-etcd)',
      cause,
    );
    this.name = 'EtcdPermissionError';
    this.operation = operation;
    this.user = user;
    this.scope = scope;
  }
}

/** etcd did not accept the credentials: wrong user or password, or no user although authentication is on. */
export class EtcdAuthError extends BackendRefusedError {
  /** The backend call that was refused. */
  readonly operation: string;
  /** The user name tried, `undefined` when none was given. */
  readonly user: string | undefined;

  constructor(operation: string, user: string | undefined, detail: string, cause: unknown) {
    super('etcd', 'auth', `${operation}: ${user === undefined ? '' : `user "${user}": `}${detail}`, cause);
    this.name = 'EtcdAuthError';
    this.operation = operation;
    this.user = user;
  }
}

/** No TLS connection can be made with this configuration (wrong CA, expired certificate, TLS on one side only…). */
export class EtcdTlsError extends BackendRefusedError {
  /** The backend call that failed. */
  readonly operation: string;
  /** The endpoints tried, `https://host:port`. */
  readonly endpoints: readonly string[];
  /** The plain explanation, `"TLS: the server's certificate …"`. */
  readonly explanation: string;

  constructor(operation: string, endpoints: readonly string[], explanation: string, cause: unknown) {
    super(`etcd at ${endpoints.join(', ')}`, 'tls', `${operation}: ${explanation}`, cause);
    this.name = 'EtcdTlsError';
    this.operation = operation;
    this.endpoints = endpoints;
    this.explanation = explanation;
  }
}
