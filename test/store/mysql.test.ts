/**
 * The MariaDB/MySQL store on the machine's MariaDB (127.0.0.1:3306), in a database of its own
 * created for the run and dropped after: the store contract, Nova's schema as Porthole creates
 * it there (AUTO_INCREMENT id, DATETIME), and a Nova-shaped database that Porthole uses without
 * creating a table in it, its own tables kept in `[porthole] connection`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { openStores } from '../../src/database/index.ts';
import { tempDir } from '../support/gateway.ts';
import { freshMariadb, type FreshStore } from '../support/stores.ts';
import { spec, storeContract } from './contract.ts';

storeContract('MariaDB', async () => {
  const db = await freshMariadb();
  return {
    open: () => openStores(db.url, { migrate: true }),
    async setExpires(record, expires) {
      await db.query('UPDATE console_auth_tokens SET expires = ? WHERE id = ?', [expires, record.id]);
    },
    async dump() {
      return JSON.stringify([await db.query('SELECT * FROM console_auth_tokens'), await db.query('SELECT * FROM porthole_token_uses')]);
    },
    expiresByItself: false,
    cleanup: () => db.drop(),
  };
});

describe('MariaDB schema', () => {
  let db: FreshStore;
  before(async () => {
    db = await freshMariadb();
  });
  after(() => db?.drop());

  it('creates console_auth_tokens with Nova\'s column types: an AUTO_INCREMENT id, DATETIME timestamps', async () => {
    const stores = await openStores(db.url, { migrate: true });
    try {
      const a = await stores.tokens.create(spec());
      const b = await stores.tokens.create(spec());
      assert.equal(b.record.id, a.record.id + 1);
      const [row] = await db.query<{ created_at: Date; updated_at: unknown }>('SELECT created_at, updated_at FROM console_auth_tokens WHERE id = ?', [a.record.id]);
      // mysql2's default reads DATETIME as local time; this machine's zone is the test's business
      assert.ok(row!.created_at instanceof Date);
      assert.equal(row!.updated_at, null);
    } finally {
      await stores.close();
    }
    const [ddl] = await db.query<{ 'Create Table': string }>('SHOW CREATE TABLE console_auth_tokens');
    const text = ddl!['Create Table'];
    assert.match(text, /`id` int\(11\) NOT NULL AUTO_INCREMENT/);
    assert.match(text, /`created_at` datetime DEFAULT NULL/);
    assert.match(text, /`expires` int\(11\) NOT NULL/);
    assert.match(text, /UNIQUE KEY `uniq_console_auth_tokens0token_hash` \(`token_hash`\)/);
    assert.match(text, /KEY `console_auth_tokens_host_expires_idx` \(`host`,`expires`\)/);
    const [utc] = await db.query<{ utc: string }>("SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s') AS utc FROM console_auth_tokens ORDER BY id LIMIT 1");
    assert.ok(Math.abs(Date.parse(`${utc!.utc}Z`) - Date.now()) < 60_000, `created_at ${utc!.utc} is not UTC now`);
  });
});

describe('a Nova-shaped MariaDB database with [porthole] connection elsewhere', () => {
  let nova: FreshStore;
  let dir: string;
  before(async () => {
    nova = await freshMariadb();
    dir = tempDir('porthole-own-');
    // the two tables of Nova 26 that matter here, as its migrations create them
    await nova.query('CREATE TABLE instances (id int(11) NOT NULL AUTO_INCREMENT, uuid varchar(36) NOT NULL, deleted int(11), PRIMARY KEY (id))');
    await nova.query(`CREATE TABLE console_auth_tokens (
      created_at datetime DEFAULT NULL, updated_at datetime DEFAULT NULL, id int(11) NOT NULL AUTO_INCREMENT,
      token_hash varchar(255) NOT NULL, console_type varchar(255) NOT NULL, host varchar(255) NOT NULL, port int(11) NOT NULL,
      internal_access_path varchar(255) DEFAULT NULL, instance_uuid varchar(36) NOT NULL, expires int(11) NOT NULL,
      access_url_base varchar(255) DEFAULT NULL, PRIMARY KEY (id), UNIQUE KEY uniq_console_auth_tokens0token_hash (token_hash))`);
  });
  after(async () => {
    await nova?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads and writes its tokens, keeps the inventory and token uses in its own database, and creates nothing in Nova\'s', async () => {
    const before = await nova.query('SHOW TABLES');
    const own = `sqlite:///${join(dir, 'own.db')}`;
    const stores = await openStores(nova.url, { migrate: true, ownConnection: own });
    try {
      assert.equal(stores.nova, true);
      assert.equal(stores.ownDescription, `sqlite:${join(dir, 'own.db')}`);
      const { token, record } = await stores.tokens.create(spec());
      const found = await stores.tokens.lookup(token);
      assert.ok(found.status === 'valid');
      assert.equal(found.token.tlsPort, null, 'no tls_port column in Nova 26');
      assert.deepEqual(found.token, record);
      assert.equal(await stores.tokens.consume(record, '192.0.2.1', 30), 'first');
      await stores.inventory.put({ id: spec().instanceUuid, name: 'n', projectId: null, status: 'ACTIVE', vnc: { host: '192.0.2.10', port: 5901 } });
      assert.equal((await stores.inventory.get(spec().instanceUuid))?.name, 'n');
      assert.deepEqual(await stores.migrate(), []);
    } finally {
      await stores.close();
    }
    assert.deepEqual(await nova.query('SHOW TABLES'), before);
  });

  it('turns the inventory off without [porthole] connection, and says so when a server is registered', async () => {
    const stores = await openStores(nova.url, { migrate: true });
    try {
      assert.equal(stores.nova, true);
      assert.equal(stores.ownDescription, null);
      assert.deepEqual(await stores.inventory.list(), []);
      await assert.rejects(stores.inventory.put({ id: spec().instanceUuid, name: 'n', projectId: null, status: 'ACTIVE', vnc: null }), /The inventory is off: \[database\] connection is a Nova database/);
      const { record } = await stores.tokens.create(spec());
      await assert.rejects(stores.tokens.consume(record, '192.0.2.1', 30), /single-use tokens need a store of Porthole's own/);
    } finally {
      await stores.close();
    }
    assert.deepEqual((await nova.query<Record<string, string>>('SHOW TABLES')).map((r) => Object.values(r)[0]).sort(), ['console_auth_tokens', 'instances']);
  });
});
