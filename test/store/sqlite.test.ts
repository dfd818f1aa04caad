import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openStores, type OpenedStores as Stores } from '../../src/database/index.ts';
import { nowSeconds } from '../../src/store/types.ts';
import { tempDir } from '../support/gateway.ts';
import { run } from '../support/process.ts';
import { spec, storeContract } from './contract.ts';

const INSTANCE_A = '0b7c6c4e-6f2b-4d43-9d5e-0c1f3a8e2a11';
const ALL_MIGRATIONS = ['0001_console_auth_tokens', '0002_porthole_servers', '0003_porthole_servers_backend_auth', '0004_porthole_token_uses', '0005_porthole_sessions', '0006_porthole_lookup_failures', '0007_porthole_servers_serial_spice', '0008_porthole_events', '0009_porthole_registry_scale', '0010_porthole_consoles_framebuffer', '0011_porthole_events_sqlite_indexes'];

/** A fresh SQLite file in its own directory, removed by `cleanup`. */
function freshDb(): { path: string; url: string; cleanup: () => void } {
  const dir = tempDir('porthole-store-');
  const path = join(dir, 'tokens.db');
  return { path, url: `sqlite:///${path}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reads the file with a connection of its own, as another process would. */
function raw<T>(path: string, fn: (db: BetterSqlite3.Database) => T): T {
  const db = new BetterSqlite3(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

storeContract('SQLite', async () => {
  const db = freshDb();
  return {
    open: () => openStores(db.url, { migrate: true }),
    async setExpires(record, expires) {
      raw(db.path, (d) => d.prepare('UPDATE console_auth_tokens SET expires = ? WHERE id = ?').run(expires, record.id));
    },
    async dump() {
      return JSON.stringify(raw(db.path, (d) => [d.prepare('SELECT * FROM console_auth_tokens').all(), d.prepare('SELECT * FROM porthole_token_uses').all()]));
    },
    expiresByItself: false,
    async cleanup() {
      db.cleanup();
    },
  };
});

describe('SQLite token store files', () => {
  let db: ReturnType<typeof freshDb>;
  let stores: Stores;

  before(async () => {
    db = freshDb();
    stores = await openStores(db.url, { migrate: true });
  });
  after(async () => {
    await stores.close();
    db.cleanup();
  });

  it('holds the raw token in no file on disk (the WAL included)', async () => {
    const { token } = await stores.tokens.create(spec());
    for (const file of [db.path, `${db.path}-wal`]) {
      if (existsSync(file)) assert.ok(!readFileSync(file).includes(token), `${file} holds the raw token`);
    }
  });

  it('writes created_at in SQLAlchemy\'s DateTime text form, as Nova does', async () => {
    const { record } = await stores.tokens.create(spec());
    const row = raw(db.path, (d) => d.prepare('SELECT created_at, updated_at FROM console_auth_tokens WHERE id = ?').get(record.id) as { created_at: string; updated_at: string | null });
    assert.match(row.created_at, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
    assert.equal(row.updated_at, null);
  });
});

describe('SQLite token store across restarts and migrations', () => {
  it('keeps tokens when the database is closed and opened again', async () => {
    const db = freshDb();
    try {
      const first = await openStores(db.url, { migrate: true });
      const { token, record } = await first.tokens.create(spec());
      await first.close();
      const second = await openStores(db.url, { migrate: true });
      try {
        const found = await second.tokens.lookup(token);
        assert.equal(found.status, 'valid');
        assert.ok(found.status === 'valid');
        assert.deepEqual(found.token, record);
      } finally {
        await second.close();
      }
    } finally {
      db.cleanup();
    }
  });

  it('runs its migrations once: a second run applies nothing and changes no schema', async () => {
    const db = freshDb();
    try {
      const stores = await openStores(db.url, { migrate: false });
      try {
        assert.deepEqual(await stores.migrate(), ALL_MIGRATIONS);
        const schema = raw(db.path, (d) => d.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all());
        assert.deepEqual(await stores.migrate(), []);
        assert.deepEqual(raw(db.path, (d) => d.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all()), schema);
      } finally {
        await stores.close();
      }
      // and opening with migrate:true again is as harmless
      const again = await openStores(db.url, { migrate: true });
      await again.close();
    } finally {
      db.cleanup();
    }
  });

  it('applies each migration once when several connections migrate a fresh file at the same time', async () => {
    // what a proxy and a `porthole token create` started together on a new install do; each
    // connection is SQLite's own, as in separate processes
    const db = freshDb();
    try {
      const all = await Promise.all([1, 2, 3, 4].map(() => openStores(db.url, { migrate: false })));
      try {
        const results = await Promise.allSettled(all.map((s) => s.migrate()));
        const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
        assert.deepEqual(failures, []);
        const applied = results.map((r) => (r.status === 'fulfilled' ? r.value : []));
        assert.deepEqual(applied.filter((a) => a.length > 0), [ALL_MIGRATIONS]);
      } finally {
        await Promise.all(all.map((s) => s.close()));
      }
      const names = raw(db.path, (d) => (d.prepare('SELECT name FROM porthole_migration ORDER BY name').all() as { name: string }[]).map((r) => r.name));
      assert.deepEqual(names, ALL_MIGRATIONS);
    } finally {
      db.cleanup();
    }
  });

  it('moves Porthole\'s own tables to [porthole] connection and back without a migration error', async () => {
    const tokens = freshDb();
    const own = freshDb();
    try {
      const standalone = await openStores(tokens.url, { migrate: true });
      await standalone.close();
      const split = await openStores(tokens.url, { migrate: false, ownConnection: own.url });
      try {
        assert.deepEqual(await split.migrate(), ALL_MIGRATIONS.slice(1), 'only the own set, in the own database');
        assert.equal(split.ownDescription, `sqlite:${own.path}`);
      } finally {
        await split.close();
      }
      const merged = await openStores(own.url, { migrate: false });
      try {
        assert.deepEqual(await merged.migrate(), [ALL_MIGRATIONS[0]], 'the token table joins them');
        assert.deepEqual(await merged.migrate(), []);
      } finally {
        await merged.close();
      }
    } finally {
      tokens.cleanup();
      own.cleanup();
    }
  });

  it('creates console_auth_tokens with Nova\'s columns, unique constraint and index names', async () => {
    const db = freshDb();
    try {
      const stores = await openStores(db.url, { migrate: true });
      await stores.close();
      raw(db.path, (d) => {
        const columns = d.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info('console_auth_tokens')").all() as { name: string; type: string; notnull: number; pk: number }[];
        const byName = new Map(columns.map((c) => [c.name, c]));
        // Nova's model (nova/db/main/models.py ConsoleAuthToken) plus 2025.1's nullable tls_port
        const nova: [string, RegExp, boolean][] = [
          ['created_at', /^(datetime|timestamp)$/i, false],
          ['updated_at', /^(datetime|timestamp)$/i, false],
          ['id', /^integer$/i, true],
          ['token_hash', /^varchar\(255\)$/i, true],
          ['console_type', /^varchar\(255\)$/i, true],
          ['host', /^varchar\(255\)$/i, true],
          ['port', /^integer$/i, true],
          ['tls_port', /^integer$/i, false],
          ['internal_access_path', /^varchar\(255\)$/i, false],
          ['instance_uuid', /^varchar\(36\)$/i, true],
          ['expires', /^integer$/i, true],
          ['access_url_base', /^varchar\(255\)$/i, false],
        ];
        assert.deepEqual([...byName.keys()].sort(), nova.map(([n]) => n).sort());
        for (const [name, type, notNull] of nova) {
          const c = byName.get(name)!;
          assert.match(c.type, type, `${name} type`);
          assert.equal(c.notnull === 1, notNull, `${name} NOT NULL`);
          assert.equal(c.pk === 1, name === 'id', `${name} primary key`);
        }

        const ddl = (d.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'console_auth_tokens'").get() as { sql: string }).sql;
        assert.match(ddl, /constraint\s+"?uniq_console_auth_tokens0token_hash"?\s+unique\s*\(\s*"?token_hash"?\s*\)/i);

        const indexes = d.prepare("SELECT name, \"unique\", origin FROM pragma_index_list('console_auth_tokens')").all() as { name: string; unique: number; origin: string }[];
        const columnsOf = (index: string) => (d.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(index) as { name: string }[]).map((r) => r.name);
        const created = indexes.filter((i) => i.origin === 'c');
        // Nova dropped console_auth_tokens_token_hash_idx in 2023.1 (migration 960aac0e09ea): the
        // unique constraint's index serves the same lookups
        assert.deepEqual(
          created.map((i) => [i.name, columnsOf(i.name)]).sort(),
          [
            ['console_auth_tokens_host_expires_idx', ['host', 'expires']],
            ['console_auth_tokens_instance_uuid_idx', ['instance_uuid']],
            ['console_auth_tokens_token_hash_instance_uuid_idx', ['token_hash', 'instance_uuid']],
          ],
        );
        const unique = indexes.filter((i) => i.origin === 'u');
        assert.equal(unique.length, 1);
        assert.equal(unique[0]!.unique, 1);
        assert.deepEqual(columnsOf(unique[0]!.name), ['token_hash']);
      });
    } finally {
      db.cleanup();
    }
  });

  it('refuses a second row with the same token_hash', async () => {
    const db = freshDb();
    try {
      const stores = await openStores(db.url, { migrate: true });
      const { record } = await stores.tokens.create(spec());
      await stores.close();
      assert.throws(
        () => raw(db.path, (d) => d.prepare('INSERT INTO console_auth_tokens (token_hash, console_type, host, port, instance_uuid, expires) VALUES (?, ?, ?, ?, ?, ?)').run(record.tokenHash, 'novnc', 'h', 1, INSTANCE_A, nowSeconds() + 60)),
        /UNIQUE constraint failed: console_auth_tokens\.token_hash/,
      );
    } finally {
      db.cleanup();
    }
  });
});

// Nova's cell database, built and written by Python the way Nova does it (SQLAlchemy's DDL for
// nova/db/main/models.py ConsoleAuthToken as of the initial alembic version, before 2023.1
// dropped console_auth_tokens_token_hash_idx and before 2025.1 added tls_port), with an instances
// table behind the foreign key so that SQLite enforces it as MySQL/InnoDB would.
const NOVA_PY = String.raw`
import datetime, hashlib, json, sqlite3, sys, time, uuid

path, instance_uuid, action = sys.argv[1], sys.argv[2], sys.argv[3]
conn = sqlite3.connect(path)
if action == 'create':
    conn.executescript("""
CREATE TABLE instances (
	created_at DATETIME,
	updated_at DATETIME,
	deleted_at DATETIME,
	id INTEGER NOT NULL,
	uuid VARCHAR(36) NOT NULL,
	host VARCHAR(255),
	deleted INTEGER,
	PRIMARY KEY (id),
	CONSTRAINT uniq_instances0uuid UNIQUE (uuid)
);
CREATE TABLE console_auth_tokens (
	created_at DATETIME,
	updated_at DATETIME,
	id INTEGER NOT NULL,
	token_hash VARCHAR(255) NOT NULL,
	console_type VARCHAR(255) NOT NULL,
	host VARCHAR(255) NOT NULL,
	port INTEGER NOT NULL,
	internal_access_path VARCHAR(255),
	instance_uuid VARCHAR(36) NOT NULL,
	expires INTEGER NOT NULL,
	access_url_base VARCHAR(255),
	PRIMARY KEY (id),
	CONSTRAINT uniq_console_auth_tokens0token_hash UNIQUE (token_hash),
	FOREIGN KEY(instance_uuid) REFERENCES instances (uuid)
);
CREATE INDEX console_auth_tokens_instance_uuid_idx ON console_auth_tokens (instance_uuid);
CREATE INDEX console_auth_tokens_host_expires_idx ON console_auth_tokens (host, expires);
CREATE INDEX console_auth_tokens_token_hash_idx ON console_auth_tokens (token_hash);
CREATE INDEX console_auth_tokens_token_hash_instance_uuid_idx ON console_auth_tokens (token_hash, instance_uuid);
""")
    now = datetime.datetime.utcnow()
    conn.execute("INSERT INTO instances (created_at, uuid, host, deleted) VALUES (?, ?, ?, 0)",
                 (now.strftime('%Y-%m-%d %H:%M:%S.%f'), instance_uuid, 'compute-1'))
    # nova.objects.ConsoleAuthToken.authorize
    token = str(uuid.uuid4())
    token_hash = hashlib.sha256(token.encode('utf-8')).hexdigest()
    conn.execute(
        "INSERT INTO console_auth_tokens (created_at, updated_at, token_hash, console_type, host, port,"
        " internal_access_path, instance_uuid, expires, access_url_base) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (now.strftime('%Y-%m-%d %H:%M:%S.%f'), None, token_hash, 'novnc', '192.0.2.21', 5900, None,
         instance_uuid, int(time.time()) + 600, 'http://controller:6080/vnc_auto.html'))
    conn.commit()
    print(json.dumps({'token': token}))
elif action == 'lookup':
    # nova.db.main.api.console_auth_token_get_valid
    token = sys.stdin.read().strip()
    token_hash = hashlib.sha256(token.encode('utf-8')).hexdigest()
    row = conn.execute(
        "SELECT created_at, host, port, instance_uuid, console_type, expires FROM console_auth_tokens"
        " WHERE token_hash = ? AND instance_uuid = ? AND expires > ?",
        (token_hash, instance_uuid, int(time.time()))).fetchone()
    if row is None:
        print(json.dumps(None))
    else:
        created = datetime.datetime.strptime(row[0], '%Y-%m-%d %H:%M:%S.%f')
        print(json.dumps({'created_at': created.isoformat(), 'host': row[1], 'port': row[2],
                          'instance_uuid': row[3], 'console_type': row[4], 'expires': row[5]}))
`;

async function python(args: string[], stdin?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = execFile('python3', ['-c', NOVA_PY, ...args], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3 failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
    child.stdin!.end(stdin ?? '');
  });
}

describe('SQLite token store on a database Nova wrote', () => {
  let db: ReturnType<typeof freshDb>;
  let novaToken: string;
  const instance = '7a3c1d2e-9f8b-4a6c-b5d4-e3f2a1b0c9d8';

  before(async () => {
    assert.equal((await run('python3', ['-c', 'import sqlite3, hashlib'])).code, 0, 'python3 with sqlite3 is needed');
    db = freshDb();
    ({ token: novaToken } = (await python([db.path, instance, 'create'])) as { token: string });
  });
  after(() => db.cleanup());

  it('reads a token that Nova minted, without migrating anything', async () => {
    const stores = await openStores(db.url, { migrate: false });
    try {
      const found = await stores.tokens.lookup(novaToken);
      assert.equal(found.status, 'valid');
      assert.ok(found.status === 'valid');
      assert.equal(found.token.host, '192.0.2.21');
      assert.equal(found.token.port, 5900);
      assert.equal(found.token.instanceUuid, instance);
      assert.equal(found.token.consoleType, 'novnc');
      assert.equal(found.token.accessUrlBase, 'http://controller:6080/vnc_auto.html');
      assert.equal(found.token.internalAccessPath, null);
      assert.equal(found.token.tlsPort, null);
      assert.ok(found.token.expires > nowSeconds() + 500);
    } finally {
      await stores.close();
    }
    const tables = raw(db.path, (d) => (d.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name));
    assert.deepEqual(tables, ['console_auth_tokens', 'instances']);
  });

  it('writes tokens that Nova finds by hashing them the same way', async () => {
    const stores = await openStores(db.url, { migrate: false });
    let token: string;
    try {
      ({ token } = await stores.tokens.create(spec({ instanceUuid: instance, host: '192.0.2.21', port: 5901, accessUrlBase: 'http://controller:6080/vnc_auto.html' })));
    } finally {
      await stores.close();
    }
    const row = (await python([db.path, instance, 'lookup'], token)) as { host: string; port: number; instance_uuid: string; console_type: string; created_at: string } | null;
    assert.ok(row, 'Nova\'s query did not find the token Porthole wrote');
    assert.equal(row.host, '192.0.2.21');
    assert.equal(row.port, 5901);
    assert.equal(row.instance_uuid, instance);
    assert.equal(row.console_type, 'novnc');
    // created_at parsed as Nova's SQLAlchemy reads it: UTC, close to now
    assert.ok(Math.abs(Date.parse(`${row.created_at}Z`) - Date.now()) < 60_000, row.created_at);
  });

  it('sees a token revoked by Porthole as gone for Nova too', async () => {
    const stores = await openStores(db.url, { migrate: false });
    let token: string;
    try {
      ({ token } = await stores.tokens.create(spec({ instanceUuid: instance })));
      assert.equal(await stores.tokens.revoke(token), true);
    } finally {
      await stores.close();
    }
    assert.equal(await python([db.path, instance, 'lookup'], token), null);
  });
});
