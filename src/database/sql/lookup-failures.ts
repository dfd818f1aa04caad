/**
 * @module database/sql/lookup-failures
 * Failed console token lookups per client and window (`store/lookup-failures.ts`) in
 * `porthole_lookup_failures` (one row per client, migration 0006): an upsert that starts the
 * count again when the row is from an earlier window; PostgreSQL and SQLite return the count
 * (RETURNING), MySQL/MariaDB hand it back as the statement's insert id (`LAST_INSERT_ID(expr)`,
 * the documented way to get a value out of an upsert in one round trip). Rows of past windows
 * are deleted by `sweep`.
 */
import { sql } from 'kysely';
import type { LookupFailureCounter } from '../../store/lookup-failures.ts';
import type { Database } from './types.ts';

const TABLE = 'porthole_lookup_failures';

export class SqlLookupFailures implements LookupFailureCounter {
  readonly description: string;

  constructor(private readonly database: Database) {
    this.description = database.description;
  }

  async add(client: string, windowStart: number): Promise<number> {
    const { db, dialect } = this.database;
    if (dialect === 'mysql') {
      // assignments run left to right: `failures` still sees the row's old window_start
      const r = await sql`INSERT INTO porthole_lookup_failures (client, window_start, failures) VALUES (${client}, ${windowStart}, LAST_INSERT_ID(1))
        ON DUPLICATE KEY UPDATE failures = LAST_INSERT_ID(IF(window_start = VALUES(window_start), failures + 1, 1)), window_start = VALUES(window_start)`.execute(db);
      return Number(r.insertId ?? 1);
    }
    // every expression of an UPDATE reads the row as it was, on SQLite and PostgreSQL alike
    const r = await sql<{ failures: number | string }>`INSERT INTO porthole_lookup_failures (client, window_start, failures) VALUES (${client}, ${windowStart}, 1)
      ON CONFLICT (client) DO UPDATE SET
        failures = CASE WHEN porthole_lookup_failures.window_start = excluded.window_start THEN porthole_lookup_failures.failures + 1 ELSE 1 END,
        window_start = excluded.window_start
      RETURNING failures`.execute(db);
    return Number(r.rows[0]?.failures ?? 1);
  }

  async sweep(windowStart: number): Promise<void> {
    await this.database.db.deleteFrom(TABLE).where('window_start', '<', windowStart).execute();
  }
}
