/**
 * Worker options and {@link compileOptions}, the single
 * place that validates options, fills defaults and converts forms. Everything
 * after it reads {@link CompiledWorkerOptions}.
 *
 * @module
 */

import { hostname } from 'node:os';
import { type AssignmentStrategy, type StrategyName, strategies } from './assignment.js';
import { type Clock, MAX_TIMER_MS, systemClock } from './clock.js';
import type { Discovery } from './discovery/contract.js';
import { parseDiscoveryUrl } from './discovery/registry.js';
import { InvalidOptionsError } from './errors.js';
import type { Handler, StageFunction } from './handler.js';
import { compileLogger, type Logger } from './logger.js';
import { parseParams, type ShardParamsInput } from './params.js';
import { compileRetry, type RetryOptions, type RetryPolicy, type RetryPolicyFunction } from './retry.js';
import { type CompiledSchedule, compileSchedule, type ScheduleInput } from './schedule.js';
import type { Subject, WorkerSubject } from './subject.js';

export type { Handler, ShardContext, Stage, StageFunction, WatchInfo } from './handler.js';
export type { Subject, WorkerSubject } from './subject.js';

/** Options of a {@link Worker}. */
export interface WorkerOptions {
  /** Service name shared by all replicas: letters, digits, `_`, `.`, `-` (1–100 characters). */
  readonly service: string;
  /** Number of shards `T`, an integer in `[1, 100000]`; must be equal on all replicas. */
  readonly shards: number;
  /** The handler, or just its `do` function. */
  readonly handler: Handler | StageFunction;
  /**
   * Discovery backend: a URL (`memory://`, `redis://…`, `etcd://…`) or an instance.
   * A backend created from a URL is closed by the worker; an instance is not.
   * @defaultValue `process.env.SHARDWORK_DISCOVERY`, else `memory://`
   */
  readonly discovery?: string | Discovery;
  /**
   * Cron schedule: 5 fields, or 6 with seconds first, or a nickname such as
   * `@daily`; optionally `{ cron, timezone }`. Any other field count (a
   * seventh field, the year, included) is refused with `InvalidCronError`.
   * @defaultValue none: the pipeline runs once per acquisition
   */
  readonly schedule?: ScheduleInput;
  /**
   * Retry policy of every stage, or a function.
   * @defaultValue `{ initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 10000, maximumAttempts: 0 }`
   */
  readonly retry?: RetryOptions | RetryPolicyFunction;
  /** Per-shard parameters: `"0=a,1=b"`, `['a', 'b']` or `{ 0: 'a' }`. */
  readonly params?: ShardParamsInput;
  /**
   * Assignment strategy: a built-in name or a function.
   * @defaultValue `'balanced'`
   */
  readonly strategy?: StrategyName | AssignmentStrategy;
  /**
   * Relative capacity of this replica for the strategies (positive).
   * @defaultValue 1
   */
  readonly weight?: number;
  /** Labels stored with the member. @defaultValue `{}` */
  readonly labels?: Readonly<Record<string, string>>;
  /** Host name stored with the member. @defaultValue `os.hostname()` */
  readonly host?: string;
  /**
   * Lease TTL in ms: a crashed replica's shards move after about this long.
   * Use the same value on every replica of a service.
   * @defaultValue 10000
   */
  readonly leaseTtlMs?: number;
  /**
   * Interval between lease renewals.
   * @defaultValue `leaseTtlMs / 3`
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * How long before the lease could expire on the backend this replica stops
   * considering itself owner (self-fencing margin).
   * @defaultValue `min(1000, leaseTtlMs / 10)`
   */
  readonly fenceMarginMs?: number;
  /**
   * How long a revoked shard's handler may take to settle after its signal
   * aborts before the claim is released anyway.
   * @defaultValue 10000
   */
  readonly revokeTimeoutMs?: number;
  /**
   * Period (±10 %) of the resync that covers lost change notifications: one
   * cheap version check, and a full re-list only when the version differs
   * from the cached view's. Change notifications carry the changes, so this
   * is a safety net, not the way changes arrive.
   * @defaultValue 30000
   */
  readonly resyncIntervalMs?: number;
  /**
   * How long `start()` keeps retrying an unreachable backend before it fails
   * with `StartTimeoutError`; it holds even while a backend call is still
   * waiting (a server that accepts connections and never answers). A refusal
   * that retrying cannot fix (`BackendRefusedError`: credentials, ACL or
   * role, TLS) fails `start()` at once. 0: a single attempt.
   * @defaultValue 30000
   */
  readonly startTimeoutMs?: number;
  /**
   * Stop gracefully on the first SIGTERM or SIGINT.
   * @defaultValue false
   */
  readonly handleSignals?: boolean;
  /**
   * For libraries that run a worker on their users' behalf: what the service,
   * its shards and the handler are, in the words of the messages the worker
   * produces (a job adapter: a queue, its partitions, and the adapter's own
   * partition consumer). See {@link WorkerSubject}.
   * @defaultValue a service, its shards, and the handler as your own code
   */
  readonly subject?: WorkerSubject;
  /**
   * Where the worker's own messages go (an error nobody listens for, a held-back
   * claim, a failing stage without `onError`): pino's shape, fields first
   * (see {@link Logger}). Given a logger, nothing is printed to the console.
   * @defaultValue `consoleLogger()`: `console.warn` and `console.error`, level `warn`
   */
  readonly logger?: Logger;
  /** Monotonic clock, for tests. @defaultValue {@link systemClock} */
  readonly clock?: Clock;
}

/** Options after {@link compileOptions}: complete and validated. */
export interface CompiledWorkerOptions {
  readonly service: string;
  readonly shardCount: number;
  readonly handler: Required<Pick<Handler, 'do'>> & Handler;
  /** A checked URL (resolved from the environment at construction) or an instance. */
  readonly discovery: string | Discovery;
  readonly schedule: CompiledSchedule | undefined;
  readonly retry: RetryPolicy;
  readonly params: ReadonlyMap<number, string>;
  readonly strategy: AssignmentStrategy;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly host: string;
  readonly leaseTtlMs: number;
  readonly heartbeatIntervalMs: number;
  readonly fenceMarginMs: number;
  readonly revokeTimeoutMs: number;
  readonly resyncIntervalMs: number;
  readonly startTimeoutMs: number;
  readonly handleSignals: boolean;
  /** The words of messages (see {@link WorkerOptions.subject}). */
  readonly subject: Subject;
  readonly logger: Logger;
  readonly clock: Clock;
}

const SERVICE_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

function positive(option: string, value: unknown, min: number, max = MAX_TIMER_MS): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionsError(option, value, `a number in [${min}, ${max}]`);
  }
  return value;
}

const DEFAULTS = { kind: 'service', unit: 'shard', member: 'replica', countOption: 'shards' } as const;

function word(option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  // One line of plain words: these go into error messages and log lines.
  const oneLine = typeof value === 'string' && [...value].every((c) => c >= ' ');
  if (typeof value !== 'string' || value.trim() === '' || value.length > 200 || !oneLine) {
    throw new InvalidOptionsError(option, value, 'a non-empty string of at most 200 characters on one line');
  }
  return value;
}

/** Validate the `subject` option and fill defaults; throws `InvalidOptionsError` naming the field. */
function compileSubject(service: string, input: WorkerSubject | undefined): Subject {
  if (input !== undefined && (typeof input !== 'object' || input === null)) {
    throw new InvalidOptionsError('subject', input, 'an object such as { kind, unit, handler }');
  }
  const s = input ?? {};
  const kind = word('subject.kind', s.kind, DEFAULTS.kind);
  const name = word('subject.name', s.name, service);
  const unit = word('subject.unit', s.unit, DEFAULTS.unit);
  const units = word('subject.units', s.units, `${unit}s`);
  const member = word('subject.member', s.member, DEFAULTS.member);
  const countOption = word('subject.countOption', s.countOption, DEFAULTS.countOption);
  if (s.handler !== undefined && typeof s.handler !== 'function') {
    throw new InvalidOptionsError('subject.handler', s.handler, 'a function of the shard returning a description');
  }
  const handler = s.handler;
  const advice =
    s.revokeTimeoutAdvice === undefined
      ? handler === undefined
        ? 'Make the handler honour ctx.signal.'
        : ''
      : word('subject.revokeTimeoutAdvice', s.revokeTimeoutAdvice, '');
  const custom =
    kind !== DEFAULTS.kind ||
    name !== service ||
    unit !== DEFAULTS.unit ||
    units !== `${DEFAULTS.unit}s` ||
    member !== DEFAULTS.member ||
    countOption !== DEFAULTS.countOption;
  return {
    kind,
    name,
    unit,
    units,
    member,
    countOption,
    handler,
    revokeTimeoutAdvice: advice,
    custom,
    tag: custom ? `[shardwork ${kind} ${name}]` : `[shardwork ${service}]`,
  };
}

/** Validate options and fill defaults. Throws {@link InvalidOptionsError} (or a cron/params error). */
export function compileOptions(options: WorkerOptions): CompiledWorkerOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('options', options, 'an object');
  }
  const { service, shards } = options;
  if (typeof service !== 'string' || !SERVICE_NAME.test(service)) {
    throw new InvalidOptionsError('service', service, 'a name of 1–100 letters, digits, "_", "." or "-"');
  }
  if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > 100_000) {
    throw new InvalidOptionsError('shards', shards, 'an integer in [1, 100000]');
  }
  const handler = typeof options.handler === 'function' ? { do: options.handler } : options.handler;
  if (typeof handler !== 'object' || handler === null || typeof handler.do !== 'function') {
    throw new InvalidOptionsError('handler', options.handler, 'a function or an object with a do(ctx) function');
  }
  for (const key of ['before', 'after', 'onError', 'watch'] as const) {
    if (handler[key] !== undefined && typeof handler[key] !== 'function') {
      throw new InvalidOptionsError(`handler.${key}`, handler[key], 'a function');
    }
  }
  const discoveryInput = options.discovery;
  let discovery: string | Discovery;
  if (discoveryInput === undefined || typeof discoveryInput === 'string') {
    // A malformed URL or an unknown scheme fails here, not at start().
    discovery = parseDiscoveryUrl(discoveryInput).url;
  } else if (typeof discoveryInput === 'object' && typeof discoveryInput?.snapshot === 'function') {
    discovery = discoveryInput;
  } else {
    throw new InvalidOptionsError('discovery', discoveryInput, 'a URL string or a Discovery instance');
  }
  const strategyInput = options.strategy ?? 'balanced';
  const strategy = typeof strategyInput === 'function' ? strategyInput : strategies[strategyInput];
  if (typeof strategy !== 'function') {
    throw new InvalidOptionsError(
      'strategy',
      strategyInput,
      `one of ${Object.keys(strategies).join(', ')} or a function`,
    );
  }
  const leaseTtlMs = positive('leaseTtlMs', options.leaseTtlMs ?? 10_000, 100, 3_600_000);
  const fenceMarginMs = positive(
    'fenceMarginMs',
    options.fenceMarginMs ?? Math.min(1000, leaseTtlMs / 10),
    0,
    leaseTtlMs / 2,
  );
  const heartbeatIntervalMs = positive(
    'heartbeatIntervalMs',
    options.heartbeatIntervalMs ?? leaseTtlMs / 3,
    10,
    (leaseTtlMs - fenceMarginMs) / 2,
  );
  const labels = options.labels ?? {};
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string') throw new InvalidOptionsError(`labels.${k}`, v, 'a string');
  }
  return {
    service,
    shardCount: shards,
    handler,
    discovery,
    schedule: compileSchedule(options.schedule),
    retry: compileRetry(options.retry),
    params: parseParams(options.params, shards),
    strategy,
    weight: positive('weight', options.weight ?? 1, Number.MIN_VALUE, 1e6),
    labels: { ...labels },
    host: hostOption(options.host),
    leaseTtlMs,
    heartbeatIntervalMs,
    fenceMarginMs,
    revokeTimeoutMs: positive('revokeTimeoutMs', options.revokeTimeoutMs ?? 10_000, 0),
    resyncIntervalMs: positive('resyncIntervalMs', options.resyncIntervalMs ?? 30_000, 50),
    startTimeoutMs: positive('startTimeoutMs', options.startTimeoutMs ?? 30_000, 0),
    handleSignals: booleanOption('handleSignals', options.handleSignals),
    subject: compileSubject(service, options.subject),
    logger: compileLogger(options.logger),
    clock: options.clock ?? systemClock,
  };
}

/** `host`: a non-empty string (every replica must be able to read the member record), else `os.hostname()`. */
function hostOption(host: unknown): string {
  if (host === undefined) return hostname();
  if (typeof host !== 'string' || host === '' || host.length > 255) {
    throw new InvalidOptionsError('host', host, 'a host name of 1–255 characters (default: os.hostname())');
  }
  return host;
}

/** A boolean option, `false` when absent. */
function booleanOption(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidOptionsError(name, value, 'true or false');
  return value;
}
