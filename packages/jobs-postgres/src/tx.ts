/**
 * One transaction on a connection of the pool: committed when `work`
 * resolves, rolled back when it rejects (the rejection passes on), the
 * connection released either way.
 *
 * @module
 */

import type pg from 'pg';

/** Run `work` in a transaction on a connection of `pool`. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const value = await work(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
