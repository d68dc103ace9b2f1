/**
 * Multi-process fault runs of the PostgreSQL job queue on PostgreSQL alone (the
 * partition owners coordinate through `postgres://` discovery in the same
 * database): a private server (`fsync` on, as in production), consumer
 * replicas as child processes (each behind its own TCP proxy, so a cut takes
 * its jobs and its lease at once), a producer in
 * this process, faults (kill -9, SIGSTOP, a server crash, `pg_ctl restart -m
 * immediate`, a cut), and the checker of job-faults.ts with PostgreSQL as the
 * judge of completion, plus the count of what `ctx.transaction` wrote: every
 * completed `tx` job wrote its row exactly once, and a zombie's rows (an
 * attempt whose partition had a newer owner) never committed.
 */

import { createJobQueue, type JobQueue } from '@shardwork/jobs';
import { type PostgresTestServer, startPostgres } from '@shardwork/testkit';
import { type JobCheckReport, StoredJobCluster } from './job-faults.js';

const SCHEMA = 'jobfaults';
const EFFECTS = `${SCHEMA}_effects.rows`;

/** Options of {@link PostgresJobCluster.start}. */
export interface PostgresJobClusterOptions {
  readonly replicas: number;
  readonly partitions?: number;
  readonly ttlMs?: number;
  readonly concurrency?: number;
  /** Share of produced jobs that write in `ctx.transaction`. @defaultValue 0.3 */
  readonly txShare?: number;
}

/** What {@link PostgresJobCluster.check} finds, beyond the common report. */
export interface PostgresJobCheckReport extends JobCheckReport {
  /** Rows written by `ctx.transaction` beyond one per job: a zombie's write that committed (must be 0). */
  readonly zombieWrites: number;
  /** `tx` jobs accepted. */
  readonly txJobs: number;
}

/** A PostgreSQL job cluster under test. See the module documentation. */
export class PostgresJobCluster extends StoredJobCluster {
  readonly server: PostgresTestServer;
  readonly producer: JobQueue;
  protected override readonly txShare: number;
  readonly #options: Required<PostgresJobClusterOptions>;

  private constructor(server: PostgresTestServer, options: Required<PostgresJobClusterOptions>) {
    super('shardwork-pgjobfaults-');
    this.server = server;
    this.#options = options;
    this.txShare = options.txShare;
    // The producer never consumes; its discovery (the same database) only names the partition owners.
    this.producer = createJobQueue(this.#url(server.port), { adapter: { enqueueTimeoutMs: 20_000 } });
    this.producer.on('error', () => undefined);
    this.producer.register('uniq', () => undefined, { unique: (args) => String(args.u) });
  }

  static async start(options: PostgresJobClusterOptions): Promise<PostgresJobCluster> {
    const server = await startPostgres();
    await server.query(`CREATE SCHEMA ${SCHEMA}_effects`);
    await server.query(`CREATE TABLE ${EFFECTS} (id text NOT NULL, pid integer NOT NULL, token bigint NOT NULL)`);
    const cluster = new PostgresJobCluster(server, {
      partitions: 6,
      ttlMs: 1000,
      concurrency: 8,
      txShare: 0.3,
      ...options,
    });
    for (let i = 0; i < options.replicas; i++) await cluster.spawn();
    await Promise.all(cluster.replicas.map((r) => r.ready));
    return cluster;
  }

  /** Partitions of the cluster's queue. */
  get partitionCount(): number {
    return this.#options.partitions;
  }

  #url(port: number): string {
    const o = this.#options;
    return `postgres://postgres@127.0.0.1:${port}/postgres?schema=${SCHEMA}&partitions=${o.partitions}&leaseTtlMs=${o.ttlMs}`;
  }

  /** Start one more consumer replica behind its own proxy; returns its index. */
  spawn(): Promise<number> {
    return this.spawnBehindProxy(this.server.port, (port, recordFile) => ({
      url: this.#url(port),
      recordFile,
      concurrency: this.#options.concurrency,
      handlers: ['work', 'seq', 'uniq', 'limited', 'tick', 'tx'],
      effectsTable: EFFECTS,
      adapter: {
        revokeTimeoutMs: 2000,
        startTimeoutMs: 60_000,
        idleCheckMs: 2000,
      },
    }));
  }

  /** kill -9 of the server, then a start on its folder (crash recovery; a fault of every consumer). */
  async crashServer(downMs = 500): Promise<void> {
    await this.faults.around('postgres kill -9', undefined, () => this.server.crash({ downMs }));
  }

  /** `pg_ctl restart -m immediate` (no checkpoint: recovery at start). */
  async restartServer(downMs = 300): Promise<void> {
    await this.faults.around('postgres restart -m immediate', undefined, () =>
      this.server.restart({ mode: 'immediate', downMs }),
    );
  }

  protected async stored(id: string): Promise<boolean> {
    const rows = await this.server.query<{ state: string }>(`SELECT state FROM ${SCHEMA}.jobs WHERE id = $1`, [id]);
    const state = rows[0]?.state;
    return state !== undefined && !['completed', 'dead', 'cancelled'].includes(state);
  }

  /**
   * The common check, then the rows `ctx.transaction` wrote: exactly one per
   * completed `tx` job (none lost with a completion, none from a zombie).
   */
  override async check(): Promise<PostgresJobCheckReport> {
    const report = await super.check();
    const rows = await this.server.query<{ id: string; n: string }>(
      `SELECT id, count(*) AS n FROM ${EFFECTS} GROUP BY id`,
    );
    const written = new Map(rows.map((r) => [r.id, Number(r.n)]));
    const violations: string[] = [];
    for (const v of report.violations) {
      const id = /^lost: \S+ (\S+)/.exec(v)?.[1];
      violations.push(id === undefined ? v : `${v}; its row: ${await this.#locate(id)}`);
    }
    let zombieWrites = 0;
    let txJobs = 0;
    for (const [id, job] of this.accepted) {
      if (job.h !== 'tx') continue;
      txJobs++;
      const n = written.get(id) ?? 0;
      if (n === 0) violations.push(`tx: ${id} completed without its transactional write`);
      if (n > 1) {
        zombieWrites += n - 1;
        violations.push(`tx: ${id} wrote its row ${n} times (a zombie's write committed)`);
      }
    }
    return { ...report, violations, zombieWrites, txJobs };
  }

  /** A job's row as it is now, for the message of a lost job. */
  async #locate(id: string): Promise<string> {
    const rows = await this.server.query(
      `SELECT j.state, j.partition, j.token, f.token AS fence, j.fails, j.run_at - (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS due_in
       FROM ${SCHEMA}.jobs j LEFT JOIN ${SCHEMA}.fences f USING (queue, partition) WHERE j.id = $1`,
      [id],
    );
    return JSON.stringify(rows[0] ?? null);
  }

  close(): Promise<void> {
    return this.closeWith(this.server);
  }
}
