/**
 * The security proxy's configuration: files checked at start with the option named when they
 * cannot be used, `[vnc] auth_schemes` limited to the schemes Porthole has, per-server settings
 * over the config's, and `porthole server add`'s backend auth options (the password stored,
 * never printed).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/errors.ts';
import { backendAuthSettings } from '../../src/proxy/upgrade.ts';
import { rfbProxyOptions } from '../../src/rfb/config.ts';
import { openStores } from '../../src/database/index.ts';
import { flags, tempDir } from '../support/gateway.ts';
import { makePki, type Pki } from '../support/pki.ts';
import { porthole } from '../support/process.ts';

function options(settings: Record<string, string>) {
  return rfbProxyOptions(loadConfig({ flags: flags(settings) }).config);
}

function configError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GatewayError, String(err));
    assert.equal(err.code, 'CONFIG_INVALID');
    for (const p of parts) assert.match(err.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
    return true;
  });
}

describe('security proxy configuration', () => {
  let pki: Pki;
  let dir: string;
  before(() => {
    pki = makePki();
    dir = tempDir();
  });
  after(() => {
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the VeNCrypt files and the global password', () => {
    const pw = join(dir, 'vnc-password');
    writeFileSync(pw, 'global-pw\n');
    const o = options({ 'vnc.auth_schemes': 'vencrypt,vnc', 'vnc.vencrypt_ca_certs': pki.caCert, 'vnc.vencrypt_client_cert': pki.clientCert, 'vnc.vencrypt_client_key': pki.clientKey, 'porthole.vnc_password_file': pw, 'porthole.rfb_handshake_timeout': '2.5' });
    assert.deepEqual(o.authSchemes, ['vencrypt', 'vnc']);
    assert.equal(o.password, 'global-pw');
    assert.equal(o.timeoutMs, 2500);
    assert.ok(o.tls?.context());
    assert.equal(o.verifyHostname, false, 'no name check by default, as Nova');
    assert.equal(o.allowInsecureTls, false);
  });

  it('refuses at start a VeNCrypt file it cannot read or use, naming the option', () => {
    configError(() => options({ 'vnc.vencrypt_ca_certs': join(dir, 'missing.pem') }), '[vnc] vencrypt_ca_certs', 'cannot read it');
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    configError(() => options({ 'vnc.vencrypt_ca_certs': garbage }), '[vnc] vencrypt_ca_certs', 'not a PEM certificate');
    configError(() => options({ 'vnc.vencrypt_ca_certs': pki.caCert, 'vnc.vencrypt_client_cert': pki.clientCert, 'vnc.vencrypt_client_key': join(dir, 'missing-key.pem') }), '[vnc] vencrypt_client_key', 'cannot read it');
    // a key that is not the certificate's
    configError(() => options({ 'vnc.vencrypt_ca_certs': pki.caCert, 'vnc.vencrypt_client_cert': pki.clientCert, 'vnc.vencrypt_client_key': pki.serverKey }), 'vencrypt_client_cert', 'vencrypt_client_key', 'not a usable certificate and key');
    // without vencrypt_client_key the key must be in the certificate's file
    configError(() => options({ 'vnc.vencrypt_ca_certs': pki.caCert, 'vnc.vencrypt_client_cert': pki.clientCert }), 'the key must be in this file');
    configError(() => options({ 'vnc.vencrypt_client_key': pki.clientKey }), '[vnc] vencrypt_client_key is set without [vnc] vencrypt_client_cert');
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    configError(() => options({ 'porthole.vnc_password_file': empty }), '[porthole] vnc_password_file', 'empty');
  });

  it('takes the client key from the certificate file when vencrypt_client_key is not set', () => {
    const both = join(dir, 'client-both.pem');
    writeFileSync(both, Buffer.concat([readFileSync(pki.clientCert), readFileSync(pki.clientKey)]));
    assert.ok(options({ 'vnc.vencrypt_ca_certs': pki.caCert, 'vnc.vencrypt_client_cert': both }).tls?.context());
  });

  it('accepts only the schemes it has in [vnc] auth_schemes, saying where the bad one came from', () => {
    configError(() => loadConfig({ flags: flags({ 'vnc.auth_schemes': 'vencrypt,sasl' }) }), 'test vnc.auth_schemes', '"sasl" is not one of none, vnc, vencrypt');
  });

  it('applies a server\'s own settings over the config\'s, and checks the host name only when asked', () => {
    const o = options({ 'vnc.auth_schemes': 'vencrypt,none' });
    const plain = backendAuthSettings(o, undefined, '10.0.0.12');
    assert.deepEqual(plain.schemes, ['vencrypt', 'none']);
    assert.equal(plain.tlsServerName, null);
    const server = { id: 'x', name: 'x', projectId: null, status: 'ACTIVE', vnc: null, backendAuth: { authSchemes: ['vnc'], vncUsername: 'alice', vncPassword: 'pw', tlsServerName: 'compute-1.example.com' } };
    const own = backendAuthSettings(o, server, '10.0.0.12');
    assert.deepEqual(own.schemes, ['vnc']);
    assert.equal(own.password, 'pw');
    assert.equal(own.username, 'alice');
    assert.equal(own.tlsServerName, 'compute-1.example.com');
    const checking = options({ 'porthole.vencrypt_verify_hostname': 'true' });
    assert.equal(backendAuthSettings(checking, undefined, '10.0.0.12').tlsServerName, '10.0.0.12');
  });

  it('stops `porthole novncproxy` with the option\'s name when a VeNCrypt file is missing', async () => {
    const r = await porthole(['novncproxy', '--vnc-novncproxy_port', '0', '--vnc-novncproxy_host', '127.0.0.1', '--database-connection', `sqlite:///${join(dir, 'n.db')}`, '--vnc-auth_schemes', 'vencrypt,none', '--vnc-vencrypt_ca_certs', join(dir, 'nope.pem')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[vnc\] vencrypt_ca_certs = .*nope\.pem: cannot read it/);
  });
});

describe('porthole server add: backend auth settings', () => {
  let dir: string;
  let db: string[];
  const ID = '7a1d9c5e-2b3f-4c6d-8e9f-0a1b2c3d4e5f';
  before(() => {
    dir = tempDir();
    db = ['--database-connection', `sqlite:///${join(dir, 'p.db')}`];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stores schemes, user, password and TLS name; prints whether a password is set, never the password', async () => {
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'Sup3r-secret\n');
    const added = await porthole(['server', 'add', '--id', ID, '--name', 'web-1', '--vnc', '10.0.0.12:5901', '--auth-schemes', 'vencrypt,vnc', '--vnc-password-file', pw, '--vnc-username', 'alice', '--tls-server-name', 'compute-1.example.com', '--json', ...db]);
    assert.equal(added.code, 0, added.stderr);
    const expected = { auth_schemes: ['vencrypt', 'vnc'], vnc_username: 'alice', vnc_password_set: true, tls_server_name: 'compute-1.example.com' };
    assert.deepEqual(JSON.parse(added.stdout).backend_auth, expected);
    assert.match(added.stderr, /only the first 8 bytes/);
    const listed = await porthole(['server', 'list', '--json', ...db]);
    assert.deepEqual(JSON.parse(listed.stdout)[0].backend_auth, expected);
    const table = await porthole(['server', 'list', ...db]);
    assert.match(table.stdout, /vencrypt,vnc user alice password set tls compute-1\.example\.com/);
    for (const out of [added.stdout, added.stderr, listed.stdout, table.stdout]) assert.ok(!out.includes('Sup3r-secret'));
    // the proxy reads it from the inventory
    const stores = await openStores(`sqlite:///${join(dir, 'p.db')}`, { migrate: false });
    try {
      const server = await stores.inventory.get(ID);
      assert.equal(server?.backendAuth?.vncPassword, 'Sup3r-secret');
    } finally {
      await stores.close();
    }
  });

  it('replaces the settings with the server, and refuses unknown schemes and unreadable password files', async () => {
    const again = await porthole(['server', 'add', '--id', ID, '--name', 'web-1', '--vnc', '10.0.0.12:5901', '--json', ...db]);
    assert.equal(JSON.parse(again.stdout).backend_auth, null);
    const bad = await porthole(['server', 'add', '--id', ID, '--name', 'web-1', '--vnc', '10.0.0.12:5901', '--auth-schemes', 'vencrypt,sasl', ...db]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--auth-schemes vencrypt,sasl: expected a comma-separated list of none, vnc, vencrypt/);
    const missing = await porthole(['server', 'add', '--id', ID, '--name', 'web-1', '--vnc', '10.0.0.12:5901', '--vnc-password-file', join(dir, 'nope'), ...db]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--vnc-password-file = .*nope: cannot read it/);
  });
});

describe('migration 0003 (backend auth columns)', () => {
  it('adds the columns, and is harmless on a table that already has some of them', async () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'pre.db');
      const raw = new BetterSqlite3(path);
      // a porthole_servers made by hand (or by a run that stopped halfway), with one new column already
      raw.exec("CREATE TABLE porthole_servers (id varchar(36) PRIMARY KEY NOT NULL, name varchar(255) NOT NULL, project_id varchar(255), status varchar(32) NOT NULL DEFAULT 'ACTIVE', vnc_host varchar(255), vnc_port integer, created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_at timestamp, vnc_password varchar(1024))");
      raw.close();
      const stores = await openStores(`sqlite:///${path}`, { migrate: true });
      try {
        await stores.inventory.put({ id: '7a1d9c5e-2b3f-4c6d-8e9f-0a1b2c3d4e5f', name: 'a', projectId: null, status: 'ACTIVE', vnc: { host: 'h', port: 5900 }, backendAuth: { authSchemes: ['vnc'], vncUsername: null, vncPassword: 'pw', tlsServerName: null } });
        const back = await stores.inventory.get('7a1d9c5e-2b3f-4c6d-8e9f-0a1b2c3d4e5f');
        assert.deepEqual(back?.backendAuth, { authSchemes: ['vnc'], vncUsername: null, vncPassword: 'pw', tlsServerName: null });
      } finally {
        await stores.close();
      }
      const cols = new BetterSqlite3(path);
      const names = (cols.prepare('PRAGMA table_info(porthole_servers)').all() as { name: string }[]).map((c) => c.name);
      cols.close();
      for (const c of ['auth_schemes', 'vnc_username', 'vnc_password', 'tls_server_name']) assert.ok(names.includes(c), c);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
