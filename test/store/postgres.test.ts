/**
 * The PostgreSQL store on the machine's PostgreSQL (127.0.0.1:5432), in a database of its own
 * created for the run and dropped after: the store contract, and Nova's schema as Porthole
 * creates it there (SERIAL id, timestamp without time zone), migrated once by racing processes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStores } from '../../src/database/index.ts';
import { freshPostgres, type FreshStore } from '../support/stores.ts';
import { spec, storeContract } from './contract.ts';

const ALL_MIGRATIONS = ['0001_console_auth_tokens', '0002_porthole_servers', '0003_porthole_servers_backend_auth', '0004_porthole_token_uses', '0005_porthole_sessions', '0006_porthole_lookup_failures', '0007_porthole_servers_serial_spice', '0008_porthole_events', '0009_porthole_registry_scale', '0010_porthole_consoles_framebuffer', '0011_porthole_events_sqlite_indexes'];

storeContract('PostgreSQL', async () => {
  const db = await freshPostgres();
  return {
    open: () => openStores(db.url, { migrate: true }),
    async setExpires(record, expires) {
      await db.query('UPDATE console_auth_tokens SET expires = $1 WHERE id = $2', [expires, record.id]);
    },
    async dump() {
      return JSON.stringify([await db.query('SELECT * FROM console_auth_tokens'), await db.query('SELECT * FROM porthole_token_uses')]);
    },
    expiresByItself: false,
    cleanup: () => db.drop(),
  };
});

describe('PostgreSQL schema and migrations', () => {
  let db: FreshStore;
  before(async () => {
    db = await freshPostgres();
  });
  after(() => db?.drop());

  it('applies each migration once when several processes migrate a fresh database at the same time', async () => {
    const all = await Promise.all([1, 2, 3, 4].map(() => openStores(db.url, { migrate: false })));
    try {
      const applied = await Promise.all(all.map((s) => s.migrate()));
      assert.deepEqual(applied.filter((a) => a.length > 0), [ALL_MIGRATIONS]);
      assert.deepEqual(await all[0]!.migrate(), []);
    } finally {
      await Promise.all(all.map((s) => s.close()));
    }
  });

  it('creates console_auth_tokens with Nova\'s column types: a SERIAL id, timestamps without time zone', async () => {
    const columns = await db.query<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
      "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name = 'console_auth_tokens' ORDER BY ordinal_position",
    );
    const by = new Map(columns.map((c) => [c.column_name, c]));
    assert.deepEqual([...by.keys()].sort(), ['access_url_base', 'console_type', 'created_at', 'expires', 'host', 'id', 'instance_uuid', 'internal_access_path', 'port', 'tls_port', 'token_hash', 'updated_at']);
    assert.equal(by.get('id')!.data_type, 'integer');
    assert.match(by.get('id')!.column_default ?? '', /^nextval\('console_auth_tokens_id_seq'/);
    assert.equal(by.get('created_at')!.data_type, 'timestamp without time zone');
    assert.equal(by.get('expires')!.data_type, 'integer');
    assert.equal(by.get('token_hash')!.is_nullable, 'NO');
    assert.equal(by.get('tls_port')!.is_nullable, 'YES');
    const constraints = await db.query<{ conname: string }>("SELECT conname FROM pg_constraint WHERE conrelid = 'console_auth_tokens'::regclass AND contype = 'u'");
    assert.deepEqual(constraints.map((c) => c.conname), ['uniq_console_auth_tokens0token_hash']);
    const indexes = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'console_auth_tokens' ORDER BY indexname");
    assert.deepEqual(indexes.map((i) => i.indexname), ['console_auth_tokens_host_expires_idx', 'console_auth_tokens_instance_uuid_idx', 'console_auth_tokens_pkey', 'console_auth_tokens_token_hash_instance_uuid_idx', 'uniq_console_auth_tokens0token_hash']);
  });

  it('numbers tokens from the sequence and writes created_at as naive UTC, as Nova does', async () => {
    const stores = await openStores(db.url, { migrate: true });
    try {
      const a = await stores.tokens.create(spec());
      const b = await stores.tokens.create(spec());
      assert.equal(b.record.id, a.record.id + 1);
      const [row] = await db.query<{ utc: string; updated_at: Date | null }>("SELECT to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS utc, updated_at FROM console_auth_tokens WHERE id = $1", [a.record.id]);
      assert.ok(Math.abs(Date.parse(`${row!.utc}Z`) - Date.now()) < 60_000, row!.utc);
      assert.equal(row!.updated_at, null);
    } finally {
      await stores.close();
    }
  });
});
