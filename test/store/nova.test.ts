/**
 * Nova drop-in: `porthole novncproxy --config-file nova.conf` on a Nova cell database built and
 * written by Nova's own code (Debian's python3-nova 26: its schema migrations, then
 * `ConsoleAuthToken.authorize` as nova-compute mints, `clean_console_auths_for_instance` as Nova
 * revokes), in a MariaDB database of the test's own on the machine's MariaDB. Porthole opens the
 * console with Nova's token, refuses it once Nova revoked it, mints tokens that Nova's
 * `validate` accepts, and leaves Nova's schema exactly as it found it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bannerBackend, openConsole, openRfbConsole, TEST_DESKTOP_NAME, type TestBackend } from '../support/backends.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { cleanEnv, porthole, PROJECT_ROOT } from '../support/process.ts';
import { freshMariadb } from '../support/stores.ts';
import { NovaPeer } from '../support/nova.ts';
import { freePort } from '../support/xvnc.ts';

const INSTANCE = '3f1c2b9e-7d4a-4e6b-8c7d-9e0f1a2b3c4d';
const OTHER_INSTANCE = '4a2d3c0f-8e5b-4f7c-9d8e-0f1a2b3c4d5e';

describe('Nova drop-in: porthole novncproxy on a Nova cell database (python3-nova, MariaDB)', () => {
  let db: Awaited<ReturnType<typeof freshMariadb>>;
  let dir: string;
  let conf: string;
  let nova: NovaPeer;
  let backend: TestBackend;
  let proxy: ChildProcess | undefined;
  let proxyOut = '';
  let port: number;
  let schemaBefore: string;

  const schema = async () => {
    const tables = (await db.query<Record<string, string>>('SHOW TABLES')).map((r) => Object.values(r)[0]!).sort();
    const [ddl] = await db.query<{ 'Create Table': string }>('SHOW CREATE TABLE console_auth_tokens');
    return JSON.stringify({ tables, ddl: ddl!['Create Table'].replace(/ AUTO_INCREMENT=\d+/, '') });
  };
  const wsUrl = (token: string) => `ws://127.0.0.1:${port}/websockify?token=${token}`;

  before(async () => {
    assert.ok(existsSync('/usr/lib/python3/dist-packages/nova'), 'Debian\'s python3-nova is needed (.ci/run installs it)');
    // Nova's install guide: CREATE DATABASE nova_cell1 (utf8, as its tables are)
    db = await freshMariadb({ charset: 'utf8' });
    dir = tempDir('porthole-nova-');
    backend = await bannerBackend();
    port = await freePort();
    conf = join(dir, 'nova.conf');
    writeFileSync(conf, [
      '[DEFAULT]',
      'transport_url = rabbit://openstack:secret@controller',
      'my_ip = 192.0.2.5',
      `web = ${join(dir, 'no-web')}`,
      `cert = ${join(dir, 'no-cert.pem')}`,
      '',
      '[api]',
      'auth_strategy = keystone',
      '',
      '[api_database]',
      'connection = mysql+pymysql://nova:secret@controller/nova_api',
      '',
      '[vnc]',
      'enabled = true',
      'novncproxy_host = 127.0.0.1',
      `novncproxy_port = ${port}`,
      `novncproxy_base_url = http://127.0.0.1:${port}/vnc_auto.html`,
      '',
      '[database]',
      `connection = ${db.url}?charset=utf8`,
      '',
    ].join('\n'));
    nova = new NovaPeer(conf);
    await nova.call({ op: 'sync' });
    await nova.call({ op: 'instance', uuid: INSTANCE, project: 'p1' });
    await nova.call({ op: 'instance', uuid: OTHER_INSTANCE, project: 'p1' });
    schemaBefore = await schema();

    proxy = spawn(process.execPath, ['bin/porthole.js', 'novncproxy', '--config-file', conf], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    proxy.stdout!.on('data', (d: Buffer) => (proxyOut += d.toString()));
    proxy.stderr!.on('data', (d: Buffer) => (proxyOut += d.toString()));
    await eventually('porthole novncproxy to listen', () => /noVNC console proxy listening/.test(proxyOut) || proxy!.exitCode !== null, 20_000);
    assert.equal(proxy.exitCode, null, proxyOut);
  });

  after(async () => {
    if (proxy && proxy.exitCode === null) {
      const exited = new Promise((r) => proxy!.once('exit', r));
      proxy.kill('SIGTERM');
      await exited;
    }
    nova?.stop();
    await backend?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens a console with a token that Nova\'s ConsoleAuthToken.authorize minted', async () => {
    const minted = await nova.call({ op: 'authorize', instance: INSTANCE, host: '127.0.0.1', port: backend.port, ttl: 600, access_url_base: `http://127.0.0.1:${port}/vnc_auto.html` });
    assert.match(String(minted['access_url']), new RegExp(`^http://127\\.0\\.0\\.1:${port}/vnc_auto\\.html\\?path=%3Ftoken%3D`));
    const { ws, messages } = await openRfbConsole(wsUrl(String(minted['token'])));
    assert.ok(messages.at(-1)!.includes(Buffer.from(TEST_DESKTOP_NAME)), 'ServerInit from the backend');
    ws.close();
  });

  it('refuses a token once Nova revoked it (clean_console_auths_for_instance), and another instance\'s still works', async () => {
    const base = { host: '127.0.0.1', port: backend.port, ttl: 600, access_url_base: `http://127.0.0.1:${port}/vnc_auto.html` };
    const revoked = String((await nova.call({ op: 'authorize', instance: INSTANCE, ...base }))['token']);
    const kept = String((await nova.call({ op: 'authorize', instance: OTHER_INSTANCE, ...base }))['token']);
    await nova.call({ op: 'clean', instance: INSTANCE });
    assert.deepEqual(await openConsole(wsUrl(revoked)), { status: 403 });
    await eventually('the refusal in the log', () => /code=TOKEN_UNKNOWN/.test(proxyOut));
    const { ws } = await openRfbConsole(wsUrl(kept));
    ws.close();
  });

  it('mints, with porthole token create and the same nova.conf, tokens that Nova\'s validate accepts', async () => {
    const r = await porthole(['token', 'create', '--config-file', conf, '--instance-uuid', INSTANCE, '--host', '127.0.0.1', '--port', String(backend.port), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { token, url } = JSON.parse(r.stdout) as { token: string; url: string };
    assert.equal(url, `http://127.0.0.1:${port}/vnc_auto.html?path=%3Ftoken%3D${token}`);
    assert.deepEqual(await nova.call({ op: 'validate', token }), { valid: true, host: '127.0.0.1', port: backend.port, instance_uuid: INSTANCE });
    const revoke = await porthole(['token', 'revoke', '--config-file', conf, token]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.deepEqual(await nova.call({ op: 'validate', token }), { valid: false });
  });

  it('never migrates or alters Nova\'s database, and says the inventory is off', async () => {
    const migrate = await porthole(['db', 'migrate', '--config-file', conf, '--json']);
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.deepEqual(JSON.parse(migrate.stdout), { database: `mysql+pymysql://root@127.0.0.1:3306/${db.name}?charset=utf8`, applied: [], own: null, nova: true });
    const add = await porthole(['server', 'add', '--config-file', conf, '--id', INSTANCE, '--name', 'vm', '--vnc', `127.0.0.1:${backend.port}`]);
    assert.equal(add.code, 1);
    assert.match(add.stderr, /The inventory is off: \[database\] connection is a Nova database/);
    assert.equal(await schema(), schemaBefore);
    assert.match(proxyOut, /the inventory is off, so the console-port check \(CVE-2013-0335\) is skipped/);
  });

  it('refuses to start with single-use tokens and no database of Porthole\'s own', async () => {
    const r = await porthole(['novncproxy', '--config-file', conf, '--vnc-novncproxy_port', '0', '--porthole-single_use_tokens']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[porthole\] single_use_tokens needs a store of Porthole's own .* set \[porthole\] connection/);
  });
});
