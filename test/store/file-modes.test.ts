import assert from 'node:assert/strict';
import { chmodSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { openDatabase } from '../../src/database/sql/database.ts';
import { startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { porthole } from '../support/process.ts';

const SERVER = '5d2c1b0a-9e8f-4a7b-8c6d-5e4f3a2b1c0d';

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
}

/** Every file of `dir` with its permissions. */
function modes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, mode(join(dir, f))]));
}

describe('file modes', () => {
  // the umask a login shell has: without Porthole's own modes, files come out 0644
  let savedUmask: number;
  beforeEach(() => {
    savedUmask = process.umask(0o022);
  });
  afterEach(() => {
    process.umask(savedUmask);
  });

  describe('a fresh directory used by the gateway and the CLI', () => {
    let gw: TestGateway;
    let secrets: string;
    before(async () => {
      savedUmask = process.umask(0o022);
      gw = await startGateway();
      secrets = tempDir('porthole-secrets-');
    });
    after(async () => {
      await gw.close();
      rmSync(secrets, { recursive: true, force: true });
      process.umask(savedUmask);
    });

    it('creates the database, its -wal and -shm, and the API tokens file 0600', async () => {
      await gw.mint({ host: '127.0.0.1', port: 5900 });
      const db = ['--database-connection', `sqlite:///${gw.dbPath}`];
      const password = join(secrets, 'vnc-password');
      writeFileSync(password, 'secret\n', { mode: 0o600 });
      const added = await porthole(['server', 'add', '--id', SERVER, '--name', 'files', '--vnc', '127.0.0.1:5901', '--auth-schemes', 'vnc', '--vnc-password-file', password, ...db]);
      assert.equal(added.code, 0, added.stderr);
      const minted = await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5901', '--json', ...db]);
      assert.equal(minted.code, 0, minted.stderr);
      const apiToken = await porthole(['api-token', 'create', '--user', 'u', '--project', 'p', '--file', join(gw.dir, 'api-tokens'), '--json', ...db]);
      assert.equal(apiToken.code, 0, apiToken.stderr);

      // the gateway still holds the database open: the WAL files are there
      const found = modes(gw.dir);
      for (const f of ['porthole.db', 'porthole.db-wal', 'porthole.db-shm', 'api-tokens']) assert.ok(f in found, `${f} not created (found ${Object.keys(found).join(', ')})`);
      for (const [f, m] of Object.entries(found)) assert.equal(m, '0600', `${f} is ${m}`);
    });
  });

  describe('the SQLite store on its own', () => {
    let dir: string;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    beforeEach(() => {
      dir = tempDir('porthole-modes-');
      warnings.length = 0;
      process.on('warning', onWarning);
    });
    afterEach(() => {
      process.off('warning', onWarning);
      rmSync(dir, { recursive: true, force: true });
    });

    async function openAndWrite(path: string): Promise<Record<string, string>> {
      const database = await openDatabase(`sqlite:///${path}`);
      try {
        await database.db.schema.createTable('t').ifNotExists().addColumn('a', 'text').execute();
        await database.db.insertInto('t').values({ a: 'x' }).execute();
        return modes(dir);
      } finally {
        await database.close();
      }
    }

    it('creates 0600 files whatever the umask (0000 here)', async () => {
      process.umask(0);
      const found = await openAndWrite(join(dir, 'p.db'));
      assert.deepEqual(found, { 'p.db': '0600', 'p.db-wal': '0600', 'p.db-shm': '0600' });
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, []);
    });

    it('makes a world-readable database and its leftover -wal 0600, with one warning each', async () => {
      const path = join(dir, 'p.db');
      writeFileSync(path, '');
      writeFileSync(`${path}-wal`, '');
      chmodSync(path, 0o644);
      chmodSync(`${path}-wal`, 0o644);
      assert.equal(mode(path), '0644');
      const found = await openAndWrite(path);
      assert.deepEqual(found, { 'p.db': '0600', 'p.db-wal': '0600', 'p.db-shm': '0600' });
      // warnings are emitted on the next tick
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 2, warnings.map((w) => w.message).join('\n'));
      assert.match(warnings[0]!.message, /p\.db was mode 0644, readable by other users, and holds VNC passwords: made it 0600/);
      assert.match(warnings[1]!.message, /p\.db-wal was mode 0644/);
      assert.equal((warnings[0] as Error & { code?: string }).code, 'PORTHOLE_FILE_MODE');
      // a second open finds nothing to say
      await openAndWrite(path);
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 2);
    });

    it('leaves a group-shared database (0660) as the operator made it', async () => {
      const path = join(dir, 'p.db');
      writeFileSync(path, '');
      chmodSync(path, 0o660);
      const found = await openAndWrite(path);
      assert.deepEqual(found, { 'p.db': '0660', 'p.db-wal': '0660', 'p.db-shm': '0660' });
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, []);
    });
  });
});
