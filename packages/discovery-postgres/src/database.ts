/**
 * The statement side of one {@link PostgresDiscovery}: a pool (its own or the
 * application's), the schema migrated once before the first statement, every
 * statement bounded by `callTimeoutMs`, and every failure mapped to the
 * contract's errors. A connection whose statement failed for any reason other
 * than the statement itself is dropped, not returned to the pool: after a
 * timeout its reply may still be on the way.
 *
 * @module
 */

import { DiscoveryUnavailableError } from '@shardwork/core';
import pg from 'pg';
import { isUnreachable, mapPostgresError } from './errors.js';
import { migrate } from './migrate.js';
import type { CompiledPostgresOptions } from './options.js';
import type { Query } from './query.js';

/** See the module documentation. */
export class Database {
  readonly #options: CompiledPostgresOptions;
  readonly #pool: pg.Pool;
  readonly #ownPool: boolean;
  #migrated: Promise<void> | undefined;
  #closed = false;
  /** Whether the latest call failed because the server could not be reached. */
  #down = false;
  /** Called when a call succeeds after calls failed for an unreachable server. */
  onRecovered: (() => void) | undefined;

  constructor(options: CompiledPostgresOptions) {
    this.#options = options;
    this.#ownPool = options.pool === undefined;
    this.#pool = options.pool ?? new pg.Pool(options.connection);
    // Idle connections die with a crashed server; the pool makes new ones.
    if (this.#ownPool) this.#pool.on('error', () => undefined);
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Run `work` on one connection of the pool (after the schema is migrated), with errors mapped. */
  async run<T>(work: (query: Query) => Promise<T>): Promise<T> {
    if (this.#closed) throw new DiscoveryUnavailableError('postgres', `${this.#options.target}: connection closed`);
    await this.#ready();
    try {
      return await this.#withClient(work);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== '42P01' && code !== '3F000') throw error;
      // The tables (or the schema) are gone: dropped by hand. Create them again at the next call;
      // revisions and tokens go on above the old ones (see migrations.ts).
      this.#migrated = undefined;
      throw new DiscoveryUnavailableError(
        'postgres',
        `${this.#options.target}: the discovery tables of schema "${this.#options.schema}" are missing (${(error as Error).message}); they are created again at the next call`,
        error,
      );
    }
  }

  /**
   * Run `work` in one transaction: `BEGIN`, the work, then `COMMIT`, or
   * `ROLLBACK` when it says `commit: false` (it changed nothing worth a
   * write) or rejects. Notifications sent by `work` reach listeners at commit.
   */
  transaction<T>(work: (query: Query) => Promise<{ readonly value: T; readonly commit: boolean }>): Promise<T> {
    return this.run(async (query) => {
      await query('BEGIN');
      let outcome: { readonly value: T; readonly commit: boolean };
      try {
        outcome = await work(query);
      } catch (error) {
        await query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      await query(outcome.commit ? 'COMMIT' : 'ROLLBACK');
      return outcome.value;
    });
  }

  async #withClient<T>(work: (query: Query) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      this.#down = true;
      throw mapPostgresError(error, this.#options.target);
    }
    // pg-pool listens for errors of idle clients only: one that breaks while
    // checked out (between two statements) would otherwise be an unhandled
    // 'error'. The statement in flight rejects anyway; the next one fails.
    let broken: unknown;
    const onError = (error: Error): void => {
      broken ??= error;
    };
    client.on('error', onError);
    const timeout = this.#options.callTimeoutMs;
    const query: Query = async (text, values) => {
      const result = await client.query({
        text,
        values: values as unknown[],
        query_timeout: timeout,
      } as pg.QueryConfig);
      return result.rows;
    };
    try {
      const result = await work(query);
      if (this.#down) {
        this.#down = false;
        this.onRecovered?.();
      }
      return result;
    } catch (error) {
      if (isUnreachable(error)) {
        broken = error;
        this.#down = true;
      }
      throw mapPostgresError(error, this.#options.target);
    } finally {
      client.removeListener('error', onError);
      client.release(broken === undefined ? undefined : (broken as Error));
    }
  }

  /** Migrate once; a failure is not remembered, so the next call tries again. */
  #ready(): Promise<void> {
    this.#migrated ??= this.#withClient(async (query) => {
      await migrate(query, this.#options.schema, this.#options.migrate);
    }).catch((error: unknown) => {
      this.#migrated = undefined;
      throw error;
    });
    return this.#migrated;
  }

  /** End the own pool (an application's pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownPool) await this.#pool.end().catch(() => undefined);
  }
}
