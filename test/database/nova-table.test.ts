/**
 * A database that holds Nova's `console_auth_tokens` table and nothing else of a Nova cell
 * database (an operator who made the table with Nova's DDL for Porthole, or kept it from a cell
 * database): the table is made by Debian's python3-nova (`test/support/nova_table.py`: Nova's
 * model, indexes and unique constraint as its initial migration creates them) in a fresh SQLite
 * file, PostgreSQL database and MariaDB database. Porthole starts on it, adopts the table (one log
 * line, the migration recorded, Nova's table left as it was), and serves a console through the
 * gateway with a token that Nova's own `ConsoleAuthToken.authorize` wrote into it. And a table
 * made by hand: what it lacks is created, a table without Nova's columns is refused.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openStores } from '../../src/database/index.ts';
import { bannerBackend, openRfbConsole, TEST_DESKTOP_NAME, type TestBackend } from '../support/backends.ts';
import { startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { cleanEnv, PROJECT_ROOT, run } from '../support/process.ts';
import { freshMariadb, freshPostgres, type FreshStore } from '../support/stores.ts';

const INSTANCE = '3f1c2b9e-7d4a-4e6b-8c7d-9e0f1a2b3c4d';

interface Place {
  readonly url: string;
  /** The URL as Nova's SQLAlchemy takes it. */
  readonly novaUrl: string;
  query(text: string): Promise<Array<Record<string, unknown>>>;
  drop(): Promise<void>;
}

/** Runs `test/support/nova_table.py` with a nova.conf naming `novaUrl`. */
async function nova(dir: string, novaUrl: string, ...args: string[]): Promise<Record<string, unknown>> {
  const conf = join(dir, 'nova.conf');
  writeFileSync(conf, `[DEFAULT]\ntransport_url = rabbit://openstack:secret@controller\n\n[database]\nconnection = ${novaUrl}\n`);
  const r = await run('/usr/bin/python3', [join(PROJECT_ROOT, 'test/support/nova_table.py'), conf, ...args], { env: cleanEnv(), timeoutMs: 60_000 });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  const out = (line.startsWith('{') ? JSON.parse(line) : { error: `no answer: ${r.stderr}` }) as Record<string, unknown>;
  if (out['error']) throw new Error(`Nova: ${String(out['error'])}`);
  return out;
}

function novaTableOn(name: string, open: (dir: string) => Promise<Place>, tables: (p: Place) => Promise<string[]>, indexes: (p: Place) => Promise<string[]>): void {
  describe(`Nova's console_auth_tokens alone, on ${name}`, () => {
    let dir: string;
    let place: Place;
    let backend: TestBackend;
    let gw: TestGateway | undefined;
    let novaIndexes: string[];

    before(async () => {
      dir = tempDir('porthole-nova-table-');
      place = await open(dir);
      backend = await bannerBackend();
      await nova(dir, place.novaUrl, 'table');
      assert.deepEqual(await tables(place), ['console_auth_tokens']);
      novaIndexes = await indexes(place);
      gw = await startGateway({ 'database.connection': place.url });
    });

    after(async () => {
      await gw?.close();
      await backend?.close();
      await place?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('starts, adopts the table once in the log, and records the migration as applied', async () => {
      const adopted = gw!.logs.filter((l) => l.event === 'table_adopted');
      assert.equal(adopted.length, 1, JSON.stringify(gw!.logs.filter((l) => l.level >= 40)));
      assert.match(adopted[0]!.msg, /adopted the existing console_auth_tokens table/);
      // Nova's DDL has every index and the uniqueness Porthole wants: nothing to add
      assert.deepEqual(adopted[0]!['created'], []);
      const recorded = (await place.query('SELECT name FROM porthole_migration')).map((r) => String(r['name']));
      assert.ok(recorded.includes('0001_console_auth_tokens'), recorded.join());
      // Nova's indexes are all still there, and Porthole's are there too
      const now = await indexes(place);
      for (const i of novaIndexes) assert.ok(now.includes(i), `${i} in ${now.join()}`);
      for (const i of ['console_auth_tokens_instance_uuid_idx', 'console_auth_tokens_host_expires_idx', 'console_auth_tokens_token_hash_instance_uuid_idx']) assert.ok(now.includes(i), i);
    });

    it('serves a console with a token that Nova\'s ConsoleAuthToken.authorize wrote into the table', async () => {
      const base = `http://127.0.0.1:${gw!.port}/vnc_auto.html`;
      const minted = await nova(dir, place.novaUrl, 'authorize', INSTANCE, '127.0.0.1', String(backend.port), '600', base);
      assert.match(String(minted['access_url']), new RegExp(`^http://127\\.0\\.0\\.1:${gw!.port}/vnc_auto\\.html\\?path=%3Ftoken%3D`));
      const { ws, messages } = await openRfbConsole(`ws://127.0.0.1:${gw!.port}/websockify?token=${String(minted['token'])}`);
      assert.ok(messages.at(-1)!.includes(Buffer.from(TEST_DESKTOP_NAME)), 'ServerInit from the backend');
      ws.close();
    });

    it('adopts nothing a second time: a restart on the same database logs no adoption', async () => {
      await gw!.close();
      gw = await startGateway({ 'database.connection': place.url });
      assert.equal(gw.logs.filter((l) => l.event === 'table_adopted').length, 0);
    });
  });
}

function sqlPlace(store: FreshStore, novaUrl: string): Place {
  return { url: store.url, novaUrl, query: (t) => store.query(t), drop: () => store.drop() };
}

novaTableOn(
  'SQLite',
  async (dir) => {
    const path = join(dir, 'tokens.db');
    const { default: BetterSqlite3 } = await import('better-sqlite3');
    const query = async (text: string) => {
      const db = new BetterSqlite3(path, { readonly: true });
      try {
        return db.prepare(text).all() as Array<Record<string, unknown>>;
      } finally {
        db.close();
      }
    };
    return { url: `sqlite:///${path}`, novaUrl: `sqlite:///${path}`, query, drop: async () => {} };
  },
  async (p) => (await p.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")).map((r) => String(r['name'])),
  async (p) => (await p.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'console_auth_tokens' ORDER BY name")).map((r) => String(r['name'])),
);

novaTableOn(
  'PostgreSQL',
  async () => {
    const s = await freshPostgres();
    return sqlPlace(s, s.url);
  },
  async (p) => (await p.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name")).map((r) => String(r['name'])),
  async (p) => (await p.query("SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'console_auth_tokens' ORDER BY indexname")).map((r) => String(r['name'])),
);

novaTableOn(
  'MariaDB',
  async () => {
    // Nova's install guide: CREATE DATABASE nova_cell1 (utf8, as its tables are)
    const s = await freshMariadb({ charset: 'utf8' });
    return sqlPlace(s, `${s.url}?charset=utf8`);
  },
  async (p) => (await p.query('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name')).map((r) => String(r['name'])),
  async (p) => (await p.query("SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'console_auth_tokens' ORDER BY index_name")).map((r) => String(r['name'])),
);

describe('adopting a console_auth_tokens made by hand (SQLite)', () => {
  let dir: string;
  before(() => {
    dir = tempDir('porthole-adopt-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const captured = () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()) }));
    return { lines, log };
  };
  const make = async (path: string, ddl: string) => {
    const { default: BetterSqlite3 } = await import('better-sqlite3');
    const db = new BetterSqlite3(path);
    db.exec(ddl);
    db.close();
  };

  it('creates only the indexes and the uniqueness a table with Nova\'s columns lacks, and says which', async () => {
    const path = join(dir, 'bare.db');
    await make(path, 'CREATE TABLE console_auth_tokens (created_at DATETIME, updated_at DATETIME, id INTEGER NOT NULL PRIMARY KEY, token_hash VARCHAR(255) NOT NULL, console_type VARCHAR(255) NOT NULL, host VARCHAR(255) NOT NULL, port INTEGER NOT NULL, internal_access_path VARCHAR(255), instance_uuid VARCHAR(36) NOT NULL, expires INTEGER NOT NULL, access_url_base VARCHAR(255)); CREATE INDEX my_instance_idx ON console_auth_tokens (instance_uuid)');
    const { lines, log } = captured();
    const stores = await openStores(`sqlite:///${path}`, { migrate: true, log });
    try {
      const adopted = lines.filter((l) => l['event'] === 'table_adopted');
      assert.equal(adopted.length, 1);
      // the index on instance_uuid is there under another name: not made twice
      assert.deepEqual(adopted[0]!['created'], ['uniq_console_auth_tokens0token_hash', 'console_auth_tokens_host_expires_idx', 'console_auth_tokens_token_hash_instance_uuid_idx']);
      const { token } = await stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port: 5900, instanceUuid: INSTANCE, accessUrlBase: null, ttl: 60 });
      assert.equal((await stores.tokens.lookup(token)).status, 'valid');
    } finally {
      await stores.close();
    }
  });

  it('refuses a console_auth_tokens that is not Nova\'s, naming the missing columns', async () => {
    const path = join(dir, 'other.db');
    await make(path, 'CREATE TABLE console_auth_tokens (id INTEGER PRIMARY KEY, token TEXT)');
    await assert.rejects(openStores(`sqlite:///${path}`, { migrate: true }), /console_auth_tokens is there but is not Nova's table \(no column created_at, updated_at, token_hash, console_type, host, port, internal_access_path, instance_uuid, expires, access_url_base\)/);
  });
});
