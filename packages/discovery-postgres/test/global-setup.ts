/**
 * One private PostgreSQL server for the tests of this package that share a
 * server (each file in a schema of its own): started before them on a free
 * loopback port, with a database `test`, and stopped after. Its URL reaches
 * the test files as SHARDWORK_TEST_POSTGRES; set that variable to use a
 * server of your own instead. Tests that crash, pause or cut a server start
 * their own.
 */

import { startPostgres } from '@shardwork/testkit';

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.SHARDWORK_TEST_POSTGRES !== undefined) return undefined;
  const server = await startPostgres();
  await server.query('CREATE DATABASE test');
  process.env.SHARDWORK_TEST_POSTGRES = server.url.replace(/\/postgres$/, '/test');
  return async () => {
    await server.stop();
  };
}
