/**
 * @module database/sql/database
 * Opens the SQL database named by a `[database] connection` URL (SQLAlchemy forms, as in
 * nova.conf) as a Kysely instance, one file per dialect (`sqlite.ts`, `postgres.ts`,
 * `mysql.ts`), each importing its driver only when chosen. Also: Porthole's migrations, which
 * come in two sets (the token table, Porthole's own tables) so that each can live in its own
 * database, and the look at a database's tables that tells a Nova cell database apart.
 */
import { Migrator, sql, type Migration, type MigrationResultSet } from 'kysely';
import { GatewayError } from '../../errors.ts';
import { DEFAULT_CONNECT_OPTIONS, type ConnectOptions } from '../connect-options.ts';
import type { Adoption, MigrationSet } from '../types.ts';
import { redactUrl, storeKind } from '../url.ts';
import { migrationsFor, MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from './migrations.ts';
import type { Database } from './types.ts';

/** Opens the SQL database `connection` names, importing only its dialect's driver. */
export async function openDatabase(connection: string, opts: ConnectOptions = DEFAULT_CONNECT_OPTIONS): Promise<Database> {
  const kind = storeKind(connection);
  if (kind === 'sqlite') return (await import('./sqlite.ts')).openSqlite(connection);
  if (kind === 'postgres') return (await import('./postgres.ts')).openPostgres(connection, opts);
  if (kind === 'mysql') return (await import('./mysql.ts')).openMysql(connection, opts);
  throw new GatewayError('CONFIG_INVALID', `connection = ${redactUrl(connection)}: Redis is not an SQL database`);
}

/**
 * Applies the migrations of `set` that `database` has not had yet; returns their names.
 *
 * A database may have had the other set too (Porthole's own tables were beside the tokens, then
 * `[porthole] connection` moved them, or the other way round). Kysely refuses to run when a
 * recorded migration is not in its list, so those already recorded are listed as done, and the
 * two sets may interleave (`allowUnorderedMigrations`): they touch different tables.
 */
export async function migrate(database: Database, set: MigrationSet = 'all', opts: { onAdopted?: (adoption: Adoption) => void } = {}): Promise<string[]> {
  const done = (await existingTables(database, [MIGRATION_TABLE])).has(MIGRATION_TABLE)
    ? (await database.db.selectFrom(MIGRATION_TABLE).select('name').execute()).map((r) => String(r.name))
    : [];
  // told only once the run succeeded (on SQLite a failed run is rolled back, adoption included)
  const adopted: Adoption[] = [];
  const migrations: Record<string, Migration> = {
    ...Object.fromEntries(done.map((name) => [name, { up: async () => {} }])),
    ...migrationsFor(set, database.dialect, (a) => adopted.push(a)),
  };
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: async (): Promise<Record<string, Migration>> => migrations },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
    allowUnorderedMigrations: true,
  });
  let outcome: MigrationResultSet;
  try {
    outcome = database.dialect === 'sqlite' ? await (await import('./sqlite.ts')).withSqliteWriteLock(database.db, () => migrator.migrateToLatest()) : await migrator.migrateToLatest();
  } catch (err) {
    outcome = { error: err };
  }
  const { error, results } = outcome;
  if (error) {
    throw new GatewayError('STORE_UNAVAILABLE', `migration of ${database.description} failed: ${(error as Error).message}`, { status: 503, cause: error });
  }
  for (const a of adopted) opts.onAdopted?.(a);
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Which of `names` are tables of the database (its current schema on PostgreSQL). */
export async function existingTables(database: Database, names: readonly string[]): Promise<Set<string>> {
  const { db, dialect } = database;
  const list = sql.join(names.map((n) => sql.lit(n)));
  const query =
    dialect === 'sqlite'
      ? sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (${list})`
      : dialect === 'postgres'
        ? sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN (${list})`
        : sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (${list})`;
  const { rows } = await query.execute(db);
  return new Set(rows.map((r) => r.name));
}

/** The column names of `table`, empty when there is no such table. */
export async function tableColumns(database: Database, table: string): Promise<string[]> {
  const { db, dialect } = database;
  const query =
    dialect === 'sqlite'
      ? sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`
      : dialect === 'postgres'
        ? sql<{ name: string }>`SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table}`
        : sql<{ name: string }>`SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ${table}`;
  const { rows } = await query.execute(db);
  return rows.map((r) => r.name);
}

/**
 * Nova's cell database always has its `instances` table; Porthole never creates one. That is how
 * `[porthole] nova_database = auto` tells Nova's database from Porthole's own.
 */
export async function isNovaDatabase(database: Database): Promise<boolean> {
  return (await existingTables(database, ['instances'])).has('instances');
}
