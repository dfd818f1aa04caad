/**
 * @module store/migrations
 * Porthole's schema, in order. `console_auth_tokens` is Nova's table column for column (with the
 * nullable `tls_port` of Nova 2025.1), with Nova's constraint and index names, so a cell database
 * table and a Porthole table are read by the same code. Migrations only ever add.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_console_auth_tokens': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('console_auth_tokens')
        .ifNotExists()
        .addColumn('created_at', 'timestamp')
        .addColumn('updated_at', 'timestamp')
        .addColumn('id', 'integer', (c) => c.primaryKey().notNull())
        .addColumn('token_hash', 'varchar(255)', (c) => c.notNull())
        .addColumn('console_type', 'varchar(255)', (c) => c.notNull())
        .addColumn('host', 'varchar(255)', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('tls_port', 'integer')
        .addColumn('internal_access_path', 'varchar(255)')
        .addColumn('instance_uuid', 'varchar(36)', (c) => c.notNull())
        .addColumn('expires', 'integer', (c) => c.notNull())
        .addColumn('access_url_base', 'varchar(255)')
        .addUniqueConstraint('uniq_console_auth_tokens0token_hash', ['token_hash'])
        .execute();
      await db.schema.createIndex('console_auth_tokens_instance_uuid_idx').ifNotExists().on('console_auth_tokens').column('instance_uuid').execute();
      await db.schema.createIndex('console_auth_tokens_host_expires_idx').ifNotExists().on('console_auth_tokens').columns(['host', 'expires']).execute();
      await db.schema.createIndex('console_auth_tokens_token_hash_instance_uuid_idx').ifNotExists().on('console_auth_tokens').columns(['token_hash', 'instance_uuid']).execute();
    },
  },
  '0002_porthole_servers': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('porthole_servers')
        .ifNotExists()
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey().notNull())
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('project_id', 'varchar(255)')
        .addColumn('status', 'varchar(32)', (c) => c.notNull().defaultTo('ACTIVE'))
        .addColumn('vnc_host', 'varchar(255)')
        .addColumn('vnc_port', 'integer')
        .addColumn('created_at', 'timestamp', (c) => c.notNull().defaultTo(sql`CURRENT_TIMESTAMP`))
        .addColumn('updated_at', 'timestamp')
        .execute();
      await db.schema.createIndex('porthole_servers_name_idx').ifNotExists().on('porthole_servers').column('name').execute();
    },
  },
  '0003_porthole_servers_backend_auth': {
    async up(db: Kysely<any>) {
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
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};

export const MIGRATION_TABLE = 'porthole_migration';
export const MIGRATION_LOCK_TABLE = 'porthole_migration_lock';
