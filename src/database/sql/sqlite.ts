/**
 * @module database/sql/sqlite
 * The embedded SQLite store (better-sqlite3), the default: one file that the daemon and the CLI
 * of one host share in WAL mode. Not for several hosts: use PostgreSQL, MariaDB/MySQL or Redis.
 * The file holds VNC passwords in clear (the inventory), so it is created 0600 whatever the umask,
 * and a file found readable by other users is made 0600 with a warning.
 */
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, openSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Kysely, SqliteDialect, sql, type MigrationResultSet, type SqliteDatabase } from 'kysely';
import { GatewayError } from '../../errors.ts';
import type { Database } from './types.ts';

const SQLITE_BUSY_TIMEOUT_MS = 5000;
/** How long `migrate` waits for another process's migration of the same SQLite file. */
const SQLITE_MIGRATION_WAIT_MS = 30_000;
/** Distinct SQL texts whose prepared statements are kept (Porthole issues a few dozen). */
const STATEMENT_CACHE_SIZE = 256;

/** `sqlite:///rel.db` → `rel.db`, `sqlite:////abs.db` → `/abs.db`, `sqlite://` → in memory. */
export function sqlitePath(connection: string): string {
  const rest = connection.slice('sqlite://'.length).split('?')[0]!;
  if (rest === '' || rest === '/' || rest === '/:memory:') return ':memory:';
  if (!rest.startsWith('/')) {
    throw new GatewayError('CONFIG_INVALID', `[database] connection = ${connection}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db`);
  }
  return resolve(rest.slice(1));
}

export async function openSqlite(connection: string): Promise<Database> {
  const path = sqlitePath(connection);
  const { default: BetterSqlite3 } = await import('better-sqlite3');
  let sqlite;
  try {
    if (path !== ':memory:') ownerOnly(path);
    sqlite = new BetterSqlite3(path);
  } catch (err) {
    throw new GatewayError('STORE_UNAVAILABLE', `cannot open SQLite database ${path}: ${(err as Error).message}`, { status: 503 });
  }
  // WAL lets the CLI write while a proxy reads; busy_timeout makes the two wait instead of fail
  sqlite.pragma('journal_mode = WAL');
  // better-sqlite3 runs on the event loop, and every console adds and removes its row in the
  // sessions registry: with FULL each of those commits waits for an fsync while no console moves.
  // NORMAL in WAL mode syncs at checkpoints only: a commit survives the process (a crash, a
  // restart), the file is never corrupted, and only an OS crash or power cut can undo the last
  // commits (SQLite's documented trade-off; a console URL minted just then would have to be asked
  // for again). Use PostgreSQL or MariaDB where that matters.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return { db, dialect: 'sqlite', description: `sqlite:${path}`, close: () => db.destroy() };
}

/** Files SQLite keeps beside the database: WAL mode's log and shared-memory index, the rollback journal. */
const SIDE_FILES = ['-wal', '-shm', '-journal'];
/** Paths already warned about in this process: a file Porthole cannot chmod is reported once. */
const warned = new Set<string>();

/**
 * Creates the database file 0600 before SQLite opens it: SQLite would create it 0644 (less the
 * umask), a window in which any local user can open it. SQLite gives `-wal`, `-shm` and
 * `-journal` the main file's permissions at their creation (os_unix.c, findCreateFileMode, with
 * an fchmod past the umask), so those follow. A file that exists with permissions for other
 * users (made by an older Porthole, or by hand) is made 0600; group-only permissions (0640,
 * 0660) are left alone: they are how a daemon and a CLI running as different users of one
 * group share the file, and nothing makes them by accident.
 */
function ownerOnly(path: string): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_CREAT, 0o600);
  try {
    const { mode } = fstatSync(fd);
    if ((mode & 0o007) !== 0) tighten(path, mode, () => fchmodSync(fd, 0o600));
  } finally {
    closeSync(fd);
  }
  for (const suffix of SIDE_FILES) {
    let mode: number;
    try {
      mode = statSync(path + suffix).mode;
    } catch {
      continue;
    }
    if ((mode & 0o007) !== 0) tighten(path + suffix, mode, () => chmodSync(path + suffix, 0o600));
  }
}

function tighten(path: string, mode: number, chmod: () => void): void {
  const was = (mode & 0o777).toString(8).padStart(4, '0');
  let message: string;
  try {
    chmod();
    message = `${path} was mode ${was}, readable by other users, and holds VNC passwords: made it 0600`;
  } catch (err) {
    message = `${path} is mode ${was}, readable by other users, and holds VNC passwords; it could not be made 0600 (${(err as Error).message}): run chmod 600 on it`;
  }
  if (warned.has(path)) return;
  warned.add(path);
  // Node's warning channel (stderr): the CLI opens the store without a logger, and a daemon's
  // stderr reaches its journal
  process.emitWarning(message, { code: 'PORTHOLE_FILE_MODE' });
}

/**
 * Kysely's SQLite driver prepares every query anew; compiling the statement was the largest part
 * of a token lookup (each console connection waits for one, and the sessions registry writes
 * two more). Prepared statements are reusable and stay valid across schema changes (SQLite
 * re-prepares them itself), and the driver runs one query at a time, so one statement per SQL
 * text is safe. The cache is bounded: texts with a variable number of parameters differ.
 */
function withStatementCache(sqlite: SqliteDatabase): SqliteDatabase {
  const statements = new Map<string, ReturnType<SqliteDatabase['prepare']>>();
  return {
    close: () => sqlite.close(),
    prepare(text) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = sqlite.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * Kysely takes no migration lock on SQLite (it assumes one connection), so two processes that
 * migrate the same new file both apply 0001 and one fails on `porthole_migration`'s key. SQLite's
 * own write lock (`BEGIN IMMEDIATE`) serialises them and makes the run one transaction. The lock
 * is polled with busy_timeout at 0: better-sqlite3's busy wait is synchronous and would stall
 * the event loop, and with it another connection of this process that holds the lock.
 */
export async function withSqliteWriteLock(db: Kysely<any>, run: () => Promise<MigrationResultSet>): Promise<MigrationResultSet> {
  const deadline = Date.now() + SQLITE_MIGRATION_WAIT_MS;
  await sql`PRAGMA busy_timeout = 0`.execute(db);
  try {
    for (;;) {
      try {
        await sql`BEGIN IMMEDIATE`.execute(db);
        break;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  } finally {
    await sql.raw(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`).execute(db);
  }
  let outcome: MigrationResultSet;
  try {
    outcome = await run();
  } catch (err) {
    await sql`ROLLBACK`.execute(db);
    throw err;
  }
  await sql.raw(outcome.error ? 'ROLLBACK' : 'COMMIT').execute(db);
  return outcome;
}
