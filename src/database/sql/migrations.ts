/**
 * @module database/sql/migrations
 * Porthole's schema, in order, on SQLite, PostgreSQL and MariaDB/MySQL. `console_auth_tokens` is
 * Nova's table column for column (with the nullable `tls_port` of Nova 2025.1), with Nova's
 * constraint and index names and Nova's column types per dialect (an autoincrementing `id`:
 * SERIAL on PostgreSQL, AUTO_INCREMENT on MySQL; DATETIME timestamps on MySQL, `timestamp`
 * without time zone on PostgreSQL), so a cell database table and a Porthole table are read by
 * the same code. Migrations only ever add, but for 0011, which drops two indexes on SQLite only
 * (code of every version reads and writes the same without them). A `console_auth_tokens` found already there with Nova's
 * columns (made with Nova's DDL, without the rest of a cell database) is adopted: 0001 adds only
 * what it lacks and is recorded as applied.
 *
 * Two sets: `tokens` (the token table, in `[database] connection`) and `own` (Porthole's own
 * tables, in `[porthole] connection` when set). A database that holds both runs `all`, in name
 * order, which is what every Porthole database before the split already recorded. A Nova
 * database runs neither.
 */
import { sql, type ColumnDataType, type Kysely, type Migration } from 'kysely';
import type { Adoption, MigrationSet } from '../types.ts';
import type { Dialect } from './types.ts';

interface Step {
  readonly set: 'tokens' | 'own';
  up(db: Kysely<any>, dialect: Dialect, report: (adoption: Adoption) => void): Promise<void>;
}

interface IndexSpec {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique?: boolean;
}

/** Nova's DateTime column: DATETIME on MySQL (its TIMESTAMP would update itself), else `timestamp`. */
const timestamp = (d: Dialect): ColumnDataType => (d === 'mysql' ? 'datetime' : 'timestamp');

/** MySQL has no CREATE INDEX IF NOT EXISTS (MariaDB has): a migration runs once, so none is needed there. */
function createIndex(db: Kysely<any>, d: Dialect, name: string) {
  const b = db.schema.createIndex(name);
  return d === 'mysql' ? b : b.ifNotExists();
}

/** Porthole's indexes on `console_auth_tokens`, Nova's names (Nova has a fourth, on token_hash alone). */
const TOKEN_INDEXES: readonly IndexSpec[] = [
  { name: 'console_auth_tokens_instance_uuid_idx', columns: ['instance_uuid'] },
  { name: 'console_auth_tokens_host_expires_idx', columns: ['host', 'expires'] },
  { name: 'console_auth_tokens_token_hash_instance_uuid_idx', columns: ['token_hash', 'instance_uuid'] },
];
const TOKEN_UNIQUE: IndexSpec = { name: 'uniq_console_auth_tokens0token_hash', columns: ['token_hash'], unique: true };
/** The columns of Nova's `console_auth_tokens` (Nova 26 on; `tls_port` of 2025.1 is optional). */
const NOVA_TOKEN_COLUMNS = ['created_at', 'updated_at', 'id', 'token_hash', 'console_type', 'host', 'port', 'internal_access_path', 'instance_uuid', 'expires', 'access_url_base'];

const steps: Record<string, Step> = {
  '0001_console_auth_tokens': {
    set: 'tokens',
    async up(db, d, report) {
      if (await hasTable(db, 'console_auth_tokens')) {
        report({ table: 'console_auth_tokens', created: await adoptTokenTable(db, d) });
        return;
      }
      let table = db.schema
        .createTable('console_auth_tokens')
        .ifNotExists()
        .addColumn('created_at', timestamp(d))
        .addColumn('updated_at', timestamp(d));
      // SQLite's INTEGER PRIMARY KEY is the rowid, which autoincrements by itself
      table =
        d === 'postgres'
          ? table.addColumn('id', 'serial', (c) => c.primaryKey().notNull())
          : d === 'mysql'
            ? table.addColumn('id', 'integer', (c) => c.primaryKey().notNull().autoIncrement())
            : table.addColumn('id', 'integer', (c) => c.primaryKey().notNull());
      await table
        .addColumn('token_hash', 'varchar(255)', (c) => c.notNull())
        .addColumn('console_type', 'varchar(255)', (c) => c.notNull())
        .addColumn('host', 'varchar(255)', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('tls_port', 'integer')
        .addColumn('internal_access_path', 'varchar(255)')
        .addColumn('instance_uuid', 'varchar(36)', (c) => c.notNull())
        .addColumn('expires', 'integer', (c) => c.notNull())
        .addColumn('access_url_base', 'varchar(255)')
        .addUniqueConstraint(TOKEN_UNIQUE.name, ['token_hash'])
        .execute();
      for (const i of TOKEN_INDEXES) await createIndex(db, d, i.name).on('console_auth_tokens').columns([...i.columns]).execute();
    },
  },
  '0002_porthole_servers': {
    set: 'own',
    async up(db, d) {
      await db.schema
        .createTable('porthole_servers')
        .ifNotExists()
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey().notNull())
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('project_id', 'varchar(255)')
        .addColumn('status', 'varchar(32)', (c) => c.notNull().defaultTo('ACTIVE'))
        .addColumn('vnc_host', 'varchar(255)')
        .addColumn('vnc_port', 'integer')
        .addColumn('created_at', timestamp(d), (c) => c.notNull().defaultTo(sql`CURRENT_TIMESTAMP`))
        .addColumn('updated_at', timestamp(d))
        .execute();
      await createIndex(db, d, 'porthole_servers_name_idx').on('porthole_servers').column('name').execute();
    },
  },
  '0003_porthole_servers_backend_auth': {
    set: 'own',
    async up(db) {
      // ALTER TABLE ... ADD COLUMN has no IF NOT EXISTS in SQLite or MySQL: look first, so a
      // table that already has a column (a partly applied run, a hand-made table) is fine
      const table = (await db.introspection.getTables()).find((t) => t.name === 'porthole_servers');
      const have = new Set(table?.columns.map((c) => c.name) ?? []);
      const columns: Array<[string, 'varchar(255)' | 'varchar(1024)']> = [
        ['auth_schemes', 'varchar(255)'],
        ['vnc_username', 'varchar(255)'],
        ['vnc_password', 'varchar(1024)'],
        ['tls_server_name', 'varchar(255)'],
      ];
      for (const [name, type] of columns) {
        if (!have.has(name)) await db.schema.alterTable('porthole_servers').addColumn(name, type).execute();
      }
    },
  },
  '0004_porthole_token_uses': {
    set: 'own',
    async up(db, d) {
      // one row per consumed single-use token; the primary key is what makes a consumption
      // atomic across proxies (an INSERT that finds the row inserts nothing)
      await db.schema
        .createTable('porthole_token_uses')
        .ifNotExists()
        .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey().notNull())
        .addColumn('client', 'varchar(255)', (c) => c.notNull())
        .addColumn('live', 'integer', (c) => c.notNull())
        .addColumn('consumed_at', 'integer', (c) => c.notNull())
        .addColumn('released_at', 'integer')
        .addColumn('expires', 'integer', (c) => c.notNull())
        .execute();
      await createIndex(db, d, 'porthole_token_uses_expires_idx').on('porthole_token_uses').column('expires').execute();
    },
  },
  '0005_porthole_sessions': {
    set: 'own',
    async up(db, d) {
      // the live-sessions registry (src/sessions/): proxies and their heartbeats, their sessions
      // with byte counts, and the revocations and kills that proxies read (times: epoch ms)
      await db.schema
        .createTable('porthole_proxies')
        .ifNotExists()
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey().notNull())
        .addColumn('address', 'varchar(255)', (c) => c.notNull())
        .addColumn('hostname', 'varchar(255)', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        // ms after heartbeat_at at which the proxy counts as gone (3 of its own heartbeats)
        .addColumn('stale_after', 'bigint', (c) => c.notNull())
        .addColumn('draining', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('porthole_sessions')
        .ifNotExists()
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey().notNull())
        .addColumn('proxy_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('console_type', 'varchar(255)', (c) => c.notNull())
        .addColumn('instance_uuid', 'varchar(36)', (c) => c.notNull())
        .addColumn('server_name', 'varchar(255)')
        .addColumn('client', 'varchar(255)', (c) => c.notNull())
        .addColumn('backend', 'varchar(255)', (c) => c.notNull())
        .addColumn('token_prefix', 'varchar(8)', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('bytes_from_client', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_from_backend', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('killed', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await createIndex(db, d, 'porthole_sessions_proxy_id_idx').on('porthole_sessions').column('proxy_id').execute();
      // AUTOINCREMENT on SQLite: ids never reused, which readers that remember the last id need
      let events = db.schema.createTable('porthole_session_events').ifNotExists();
      events =
        d === 'postgres'
          ? events.addColumn('id', 'bigserial', (c) => c.primaryKey().notNull())
          : d === 'mysql'
            ? events.addColumn('id', 'bigint', (c) => c.primaryKey().notNull().autoIncrement())
            : events.addColumn('id', 'integer', (c) => c.primaryKey().notNull().autoIncrement());
      await events
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('target', 'varchar(255)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0006_porthole_lookup_failures': {
    set: 'own',
    async up(db) {
      // failed console token lookups per client address (lookup-failures.ts): one row
      // per client, its count in the window that started at window_start (epoch seconds); rows
      // of past windows are deleted as the windows pass
      await db.schema
        .createTable('porthole_lookup_failures')
        .ifNotExists()
        .addColumn('client', 'varchar(64)', (c) => c.primaryKey().notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .execute();
    },
  },
  '0007_porthole_servers_serial_spice': {
    set: 'own',
    async up(db) {
      // the serial and SPICE console endpoints (issue 14): nullable, as a server may have any of
      // the three consoles; looked for first, as in 0003
      const table = (await db.introspection.getTables()).find((t) => t.name === 'porthole_servers');
      const have = new Set(table?.columns.map((c) => c.name) ?? []);
      const columns: Array<[string, 'varchar(255)' | 'integer']> = [
        ['serial_host', 'varchar(255)'],
        ['serial_port', 'integer'],
        ['spice_host', 'varchar(255)'],
        ['spice_port', 'integer'],
        ['spice_tls_port', 'integer'],
      ];
      for (const [name, type] of columns) {
        if (!have.has(name)) await db.schema.alterTable('porthole_servers').addColumn(name, type).execute();
      }
    },
  },
  '0008_porthole_events': {
    set: 'own',
    async up(db, d) {
      // the audit trail (issue 15, sql/audit-events.ts): one row per security event, the line
      // itself as JSON beside the columns the events API filters on; times in epoch ms. The id
      // orders events of the same millisecond
      let events = db.schema.createTable('porthole_events').ifNotExists();
      events =
        d === 'postgres'
          ? events.addColumn('id', 'bigserial', (c) => c.primaryKey().notNull())
          : d === 'mysql'
            ? events.addColumn('id', 'bigint', (c) => c.primaryKey().notNull().autoIncrement())
            : events.addColumn('id', 'integer', (c) => c.primaryKey().notNull().autoIncrement());
      await events
        .addColumn('event_time', 'bigint', (c) => c.notNull())
        .addColumn('event', 'varchar(32)', (c) => c.notNull())
        .addColumn('instance_uuid', 'varchar(36)')
        .addColumn('token_prefix', 'varchar(8)')
        .addColumn('session_id', 'varchar(64)')
        .addColumn('line', 'text', (c) => c.notNull())
        .execute();
      await createIndex(db, d, 'porthole_events_instance_time_idx').on('porthole_events').columns(['instance_uuid', 'event_time']).execute();
      await createIndex(db, d, 'porthole_events_time_idx').on('porthole_events').column('event_time').execute();
      await createIndex(db, d, 'porthole_events_token_idx').on('porthole_events').column('token_prefix').execute();
      await createIndex(db, d, 'porthole_events_session_idx').on('porthole_events').column('session_id').execute();
    },
  },
  '0009_porthole_registry_scale': {
    set: 'own',
    async up(db, d) {
      // issue 20: sessions are no longer written at each heartbeat. A proxy's record carries its
      // console counts for the limits (JSON, a few hundred keys at most) and the newest byte-count
      // request it answered; the kills a heartbeat reads are found by (proxy_id, killed) without
      // reading the proxy's other sessions. Looked for first, as in 0007
      const table = (await db.introspection.getTables()).find((t) => t.name === 'porthole_proxies');
      const have = new Set(table?.columns.map((c) => c.name) ?? []);
      if (!have.has('figures_at')) await db.schema.alterTable('porthole_proxies').addColumn('figures_at', 'bigint').execute();
      if (!have.has('console_counts')) await db.schema.alterTable('porthole_proxies').addColumn('console_counts', d === 'mysql' ? sql`mediumtext` : 'text').execute();
      await createIndex(db, d, 'porthole_sessions_proxy_killed_idx').on('porthole_sessions').columns(['proxy_id', 'killed']).execute();
    },
  },
  '0010_porthole_consoles_framebuffer': {
    set: 'own',
    async up(db, d) {
      // issue 18: what Porthole knows of a token beyond Nova's row (store/token-extras.ts), keyed
      // by the token's SHA-256 and swept with the token uses; the list of console recordings
      // (store/recordings.ts, times in epoch ms); a server's shared-console and recording choice
      // (nullable: the config decides); a live session's viewer, shared console, role and
      // recording. Columns looked for first, as in 0007
      await db.schema
        .createTable('porthole_token_extras')
        .ifNotExists()
        .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey().notNull())
        .addColumn('label', 'varchar(64)')
        .addColumn('minted_by', 'varchar(255)')
        .addColumn('control', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('record', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expires', 'integer', (c) => c.notNull())
        .execute();
      await createIndex(db, d, 'porthole_token_extras_expires_idx').on('porthole_token_extras').column('expires').execute();
      await db.schema
        .createTable('porthole_recordings')
        .ifNotExists()
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey().notNull())
        .addColumn('session_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('server_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('server_name', 'varchar(255)')
        .addColumn('project_id', 'varchar(255)')
        .addColumn('viewer', 'varchar(255)')
        .addColumn('client', 'varchar(255)', (c) => c.notNull())
        .addColumn('proxy_host', 'varchar(255)', (c) => c.notNull())
        .addColumn('path', 'varchar(1024)', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await createIndex(db, d, 'porthole_recordings_started_idx').on('porthole_recordings').column('started_at').execute();
      await createIndex(db, d, 'porthole_recordings_server_started_idx').on('porthole_recordings').columns(['server_id', 'started_at']).execute();
      await createIndex(db, d, 'porthole_recordings_project_started_idx').on('porthole_recordings').columns(['project_id', 'started_at']).execute();
      const tables = await db.introspection.getTables();
      const columnsOf = (name: string) => new Set(tables.find((t) => t.name === name)?.columns.map((c) => c.name) ?? []);
      const servers = columnsOf('porthole_servers');
      for (const name of ['shared_consoles', 'record']) {
        if (!servers.has(name)) await db.schema.alterTable('porthole_servers').addColumn(name, 'integer').execute();
      }
      const sessions = columnsOf('porthole_sessions');
      const sessionColumns: Array<[string, 'varchar(255)' | 'varchar(64)' | 'varchar(16)' | 'varchar(36)']> = [
        ['viewer', 'varchar(255)'],
        ['shared_console', 'varchar(64)'],
        ['role', 'varchar(16)'],
        ['recording', 'varchar(36)'],
      ];
      for (const [name, type] of sessionColumns) {
        if (!sessions.has(name)) await db.schema.alterTable('porthole_sessions').addColumn(name, type).execute();
      }
    },
  },
  '0011_porthole_events_sqlite_indexes': {
    set: 'own',
    async up(db, d) {
      // issue 19: on SQLite the audit trail's batches are written on the proxy's event loop, and
      // the indexes on token_prefix and session_id (random keys) made each event dirty two more
      // random B-tree pages: at 200 000 events 100 µs of CPU per event with all four indexes, 24
      // without these two (a console open writes three events; every console of the process waits
      // while a batch is written). Queries by token or session read the time index where a time
      // range is given, else the table. PostgreSQL and MariaDB keep them: their upkeep is the
      // database server's, off the proxy's event loop
      if (d !== 'sqlite') return;
      await db.schema.dropIndex('porthole_events_token_idx').ifExists().execute();
      await db.schema.dropIndex('porthole_events_session_idx').ifExists().execute();
    },
  },
};

/** The Kysely migrations of one set, for one dialect; `report` hears of each table adopted. */
export function migrationsFor(set: MigrationSet, dialect: Dialect, report: (adoption: Adoption) => void = () => {}): Record<string, Migration> {
  const out: Record<string, Migration> = {};
  for (const [name, step] of Object.entries(steps)) {
    if (set === 'all' || step.set === set) out[name] = { up: (db) => step.up(db, dialect, report) };
  }
  return out;
}

async function hasTable(db: Kysely<any>, name: string): Promise<boolean> {
  return (await db.introspection.getTables()).some((t) => t.name === name);
}

/**
 * A `console_auth_tokens` that is already there (made with Nova's DDL, kept from a cell database,
 * or by hand) is Porthole's table if it has Nova's columns: Porthole reads and writes only those
 * (and `tls_port` where it exists). Adopting it adds no column (a later Nova migration would
 * then find its own column there already) and only the indexes and the uniqueness on token_hash
 * that it lacks: an index counts as there when one has its name, or its columns in order (a
 * unique one where uniqueness is wanted). Nova's own DDL has them all, so on Nova's table this
 * creates nothing. Returns the names of the indexes it created.
 */
async function adoptTokenTable(db: Kysely<any>, d: Dialect): Promise<string[]> {
  const table = (await db.introspection.getTables()).find((t) => t.name === 'console_auth_tokens')!;
  const have = new Set(table.columns.map((c) => c.name.toLowerCase()));
  const missing = NOVA_TOKEN_COLUMNS.filter((c) => !have.has(c));
  if (missing.length > 0) {
    throw new Error(`console_auth_tokens is there but is not Nova's table (no column ${missing.join(', ')}): Porthole will not use it`);
  }
  const existing = await tableIndexes(db, d, 'console_auth_tokens');
  const created: string[] = [];
  for (const want of [TOKEN_UNIQUE, ...TOKEN_INDEXES]) {
    const found = existing.some((i) => i.name === want.name || (i.columns.join() === want.columns.join() && (i.unique || !want.unique)));
    if (found) continue;
    const b = createIndex(db, d, want.name).on('console_auth_tokens').columns([...want.columns]);
    await (want.unique ? b.unique() : b).execute();
    created.push(want.name);
  }
  return created;
}

/** The indexes of `table` (unique constraints included), each with its columns in order. */
async function tableIndexes(db: Kysely<any>, d: Dialect, table: string): Promise<Array<{ name: string; columns: string[]; unique: boolean }>> {
  type Row = { name: string; uniq: number | boolean | string; col: string };
  const query =
    d === 'sqlite'
      ? sql<Row>`SELECT il.name AS name, il."unique" AS uniq, ii.name AS col FROM pragma_index_list(${table}) AS il JOIN pragma_index_info(il.name) AS ii ORDER BY il.name, ii.seqno`
      : d === 'postgres'
        ? sql<Row>`SELECT i.relname AS name, ix.indisunique AS uniq, a.attname AS col
            FROM pg_index ix
            JOIN pg_class t ON t.oid = ix.indrelid
            JOIN pg_class i ON i.oid = ix.indexrelid
            JOIN pg_namespace ns ON ns.oid = t.relnamespace
            CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE ns.nspname = current_schema() AND t.relname = ${table}
            ORDER BY i.relname, k.n`
        : sql<Row>`SELECT index_name AS name, non_unique = 0 AS uniq, column_name AS col FROM information_schema.statistics
            WHERE table_schema = DATABASE() AND table_name = ${table} ORDER BY index_name, seq_in_index`;
  const { rows } = await query.execute(db);
  const byName = new Map<string, { name: string; columns: string[]; unique: boolean }>();
  for (const r of rows) {
    const name = String(r.name);
    let index = byName.get(name);
    if (!index) byName.set(name, (index = { name, columns: [], unique: r.uniq === true || Number(r.uniq) === 1 }));
    index.columns.push(String(r.col).toLowerCase());
  }
  return [...byName.values()];
}

export const MIGRATION_TABLE = 'porthole_migration';
export const MIGRATION_LOCK_TABLE = 'porthole_migration_lock';
