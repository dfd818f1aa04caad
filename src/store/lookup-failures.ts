/**
 * @module store/lookup-failures
 * Failed console token lookups per client and window, counted in Porthole's own store so that
 * every process and proxy sharing it sees one count (`src/proxy/lookup-budget.ts` decides what
 * the count means). `add` counts one failure and answers the client's count in that window,
 * atomically, in one statement:
 *
 * - SQL (`porthole_lookup_failures`, one row per client, migration 0006): an upsert that starts
 *   the count again when the row is from an earlier window; PostgreSQL and SQLite return the
 *   count (RETURNING), MySQL/MariaDB hand it back as the statement's insert id
 *   (`LAST_INSERT_ID(expr)`, the documented way to get a value out of an upsert in one round
 *   trip). Rows of past windows are deleted by `sweep`;
 * - Redis: `lookup-failures:<window start>:<client>` under `[porthole] redis_key_prefix`, INCR
 *   and an EXPIREAT at the window's end, so Redis itself is the sweep.
 *
 * Windows are fixed periods of the clock, named by their start in epoch seconds, so processes
 * agree on them without talking. Never in a Nova database: only Porthole's own store has it.
 */
import { sql } from 'kysely';
import type { Database } from './database.ts';
import type { RedisConnection } from './redis.ts';

export interface LookupFailureCounter {
  /** Where the count is kept (no password), for log lines. */
  readonly description: string;
  /** Counts one failed lookup of `client` in the window starting at `windowStart` (epoch s, ending at `windowEnd`); returns its count there. */
  add(client: string, windowStart: number, windowEnd: number): Promise<number>;
  /** Deletes the counts of windows that started before `windowStart`. */
  sweep(windowStart: number): Promise<void>;
}

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

export class RedisLookupFailures implements LookupFailureCounter {
  readonly description: string;

  constructor(private readonly connection: RedisConnection) {
    this.description = connection.description;
  }

  async add(client: string, windowStart: number, windowEnd: number): Promise<number> {
    const key = `${this.connection.prefix}lookup-failures:${windowStart}:${client}`;
    const replies = (await this.connection.redis.multi().incr(key).expireat(key, windowEnd).exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    return Number(replies[0]?.[1] ?? 1);
  }

  async sweep(): Promise<void> {
    // the keys expire by themselves at their window's end
  }
}
