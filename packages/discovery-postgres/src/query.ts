/**
 * The one shape in which the backend's modules run SQL: a function bound to
 * one connection (see `database.ts`), so that pure-ish modules need no pool.
 *
 * @module
 */

import type pg from 'pg';

/** Runs one statement on one connection and resolves its rows. */
export type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values?: readonly unknown[],
) => Promise<R[]>;
