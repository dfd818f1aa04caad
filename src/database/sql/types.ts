/**
 * @module database/sql/types
 * An opened SQL database: a Kysely instance and its dialect, whichever of SQLite, PostgreSQL and
 * MariaDB/MySQL it is (the openers: `sqlite.ts`, `postgres.ts`, `mysql.ts`).
 */
import type { Kysely } from 'kysely';
import type { Dialect } from '../url.ts';

export type { Dialect };

export interface Database {
  readonly db: Kysely<any>;
  readonly dialect: Dialect;
  /** For messages: the URL without its password. */
  readonly description: string;
  close(): Promise<void>;
}
