/**
 * One transaction on a connection of the pool: committed when `work`
 * resolves, rolled back when it rejects (the rejection passes on), the
 * connection released either way, and destroyed when it broke meanwhile
 * (the server ended the session, the network cut it): its failed query
 * rejects `work`; the `error` the client emits is not left unhandled.
 *
 * @module
 */

import type pg from 'pg';

/** Run `work` in a transaction on a connection of `pool`. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const value = await work(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    if (broken === undefined) await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
