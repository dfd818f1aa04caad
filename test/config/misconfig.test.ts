import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { describeConnection } from '../../src/config/startup.ts';
import { absoluteSqlite, stateDirectory } from '../../src/config/state-dir.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, PROJECT_ROOT, run, type RunResult } from '../support/process.ts';

/** Each misconfiguration an operator meets first: the exact line Porthole prints and its exit status. */

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'porthole-misconfig-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const UUID = '00000000-0000-4000-8000-0000000000c1';

function porthole(args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [join(PROJECT_ROOT, 'bin/porthole.js'), ...args], { env: cleanEnv(opts.env), cwd: opts.cwd ?? PROJECT_ROOT });
}

function conf(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The last stderr line, without the `porthole: ` prefix. */
function lastLine(r: RunResult): string {
  const lines = r.stderr.trim().split('\n');
  return lines[lines.length - 1]!.replace(/^porthole: /, '');
}

const serveFlags = (db: string, vncPort = 0, apiPort = 0) => ['serve', ...OTHER_CONSOLES_ON_LOOPBACK, '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(vncPort), '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(apiPort), '--database-connection', db];

describe('typos in the config', () => {
  const typo = () => conf('typo.conf', '[DEFAULT]\ntransport_url = rabbit://nova:pw@controller\nuse_neutron = true\n\n[vnc]\nnovncproxy_prot = 6081\nserver_listen = 0.0.0.0\n\n[databse]\nconnection = postgresql://nova:pw@db/nova\n\n[glance]\napi_servers = http://glance:9292\n');

  it('warns once per unknown option or section, with file:line and the closest name, and goes on', async () => {
    const f = typo();
    const r = await porthole(['db', 'migrate', '--config-file', f, '--database-connection', `sqlite:///${join(dir, 'typo.db')}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `porthole: warning: ${f}:6: [vnc] novncproxy_prot is not an option of [vnc]; did you mean novncproxy_port?`,
      `porthole: warning: ${f}:9: section [databse] is unknown; did you mean [database]?`,
    ]);
  });

  it('stops with status 1 and the same lines under [porthole] strict_config', async () => {
    const f = typo();
    const r = await porthole(['db', 'migrate', '--config-file', f, '--porthole-strict_config', '--database-connection', `sqlite:///${join(dir, 'strict.db')}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `porthole: ${f}:6: [vnc] novncproxy_prot is not an option of [vnc]; did you mean novncproxy_port?\n${f}:9: section [databse] is unknown; did you mean [database]?\n([porthole] strict_config = true makes these fatal)\n`);
  });

  it('is silent on Nova options Porthole does not use, of this release or an older one', () => {
    const f = conf('nova.conf', '[DEFAULT]\nmy_ip = 10.0.0.1\nverbose = true\nfirewall_driver = nova.virt.firewall.NoopFirewallDriver\n[vnc]\nserver_proxyclient_address = 10.0.0.1\n[database]\nmax_pool_size = 5\n[libvirt]\nvirt_type = kvm\n[keystone_authtoken]\nmemcache_pool_maxsize = 10\nauth_section = keystone\n');
    assert.deepEqual(loadConfig({ files: [f], env: {} }).warnings, []);
  });

  it('warns about a PORTHOLE_<SECTION>_<OPTION> variable that names no option', () => {
    const { warnings } = loadConfig({ env: { PORTHOLE_VNC_NOVNCPROXY_PROT: '6081', PORTHOLE_FUZZ_INPUTS: '10' } });
    assert.deepEqual(warnings, ['environment PORTHOLE_VNC_NOVNCPROXY_PROT: [vnc] novncproxy_prot is not an option of [vnc]; did you mean novncproxy_port?']);
  });

  it('reads a deprecated Nova name as its option, saying so, and the current name wins', () => {
    const f = conf('old.conf', '[vnc]\nnovncproxy_port = 6090\n[DEFAULT]\nnovncproxy_port = 6091\n');
    const { config, warnings } = loadConfig({ files: [f], env: {} });
    assert.equal(config.vnc.novncproxy_port, 6090);
    assert.deepEqual(warnings, [`${f}:4: [DEFAULT] novncproxy_port is a deprecated name of [vnc] novncproxy_port, read as that`]);
    assert.equal(loadConfig({ files: [conf('older.conf', '[DEFAULT]\nnovncproxy_port = 6091\n')], env: {} }).config.vnc.novncproxy_port, 6091);
  });
});

describe('a database that cannot be reached', () => {
  const cases: Array<[string, (port: number) => string, RegExp | string]> = [
    ['PostgreSQL on a closed port', (p) => `postgresql://nova:secret@127.0.0.1:${p}/nova`, 'cannot use the database postgresql://nova:***@127.0.0.1:PORT/nova ([database] connection): connection refused by 127.0.0.1:PORT (is the database running, and on that port?)'],
    ['Redis on a closed port', (p) => `redis://127.0.0.1:${p}/0`, 'cannot use the database redis://127.0.0.1:PORT/0 ([database] connection): connection refused by 127.0.0.1:PORT (is the database running, and on that port?)'],
    ['MariaDB without that database', () => 'mysql+pymysql://root@127.0.0.1:3306/doesnotexist', "cannot use the database mysql+pymysql://root@127.0.0.1:3306/doesnotexist ([database] connection): Unknown database 'doesnotexist'"],
    ['PostgreSQL without that database', () => 'postgresql://postgres@127.0.0.1:5432/porthole_doesnotexist', 'cannot use the database postgresql://postgres@127.0.0.1:5432/porthole_doesnotexist ([database] connection): database "porthole_doesnotexist" does not exist'],
    ['PostgreSQL refusing the login', () => 'postgresql://porthole_nobody:wrong@127.0.0.1:5432/x', 'cannot use the database postgresql://porthole_nobody:***@127.0.0.1:5432/x ([database] connection): login refused: role "porthole_nobody" does not exist'],
    ['a host name that does not resolve', () => 'postgresql://nova@db.invalid/nova', 'cannot use the database postgresql://nova@db.invalid/nova ([database] connection): host name db.invalid not found'],
  ];
  for (const [what, url, expected] of cases) {
    it(`${what}: one line naming the URL, the cause and the option; status 1`, async () => {
      const port = await freePort();
      const r = await porthole(['token', 'create', '--instance-uuid', UUID, '--host', '127.0.0.1', '--port', '5900', '--database-connection', url(port)]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `porthole: ${(expected as string).replaceAll('PORT', String(port))}\n`);
    });
  }

  it('a server that never answers: the connect timeout, named', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    try {
      const r = await porthole(['db', 'migrate', '--porthole-store_connect_timeout', '0.5', '--database-connection', `postgresql://nova:pw@127.0.0.1:${port}/nova`]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `porthole: cannot use the database postgresql://nova:***@127.0.0.1:${port}/nova ([database] connection): no answer within 0.5 s ([porthole] store_connect_timeout)\n`);
    } finally {
      silent.close();
    }
  });

  it('Porthole\'s own store is named by [porthole] connection', async () => {
    const port = await freePort();
    const r = await porthole(['db', 'migrate', '--database-connection', `sqlite:///${join(dir, 'tokens.db')}`, '--porthole-connection', `redis://127.0.0.1:${port}/0`]);
    assert.equal(r.code, 1);
    assert.equal(lastLine(r), `cannot use the database redis://127.0.0.1:${port}/0 ([porthole] connection): connection refused by 127.0.0.1:${port} (is the database running, and on that port?)`);
  });

  it('the daemon says the same, with no stack trace', async () => {
    const port = await freePort();
    const r = await porthole(serveFlags(`postgresql://127.0.0.1:${port}/x`));
    assert.equal(r.code, 1);
    assert.equal(lastLine(r), `cannot use the database postgresql://127.0.0.1:${port}/x ([database] connection): connection refused by 127.0.0.1:${port} (is the database running, and on that port?)`);
    assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at /);
  });
});

describe('a listener that cannot listen', () => {
  it('a port in use: the address, the option, what to do; status 1', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as AddressInfo;
    try {
      const vnc = await porthole(serveFlags(`sqlite:///${join(dir, 'inuse.db')}`, port));
      assert.equal(vnc.code, 1);
      assert.equal(lastLine(vnc), `cannot listen on 127.0.0.1:${port} ([vnc] novncproxy_port): address already in use; change [vnc] novncproxy_port or stop the process using it`);
      assert.doesNotMatch(vnc.stderr, /\n\s+at /);
      const api = await porthole(serveFlags(`sqlite:///${join(dir, 'inuse.db')}`, 0, port));
      assert.equal(api.code, 1);
      assert.equal(lastLine(api), `cannot listen on 127.0.0.1:${port} ([DEFAULT] osapi_compute_listen_port): address already in use; change [DEFAULT] osapi_compute_listen_port or stop the process using it`);
    } finally {
      taken.close();
    }
  });

  it('an address that is not this host\'s names the host option', async () => {
    const r = await porthole([...serveFlags(`sqlite:///${join(dir, 'addr.db')}`), '--vnc-novncproxy_host', '192.0.2.1']);
    assert.equal(r.code, 1);
    assert.equal(lastLine(r), 'cannot listen on 192.0.2.1:0 ([vnc] novncproxy_host): address not available on this host; change [vnc] novncproxy_host to one of its addresses, or 0.0.0.0 for all');
  });
});

describe('a certificate that cannot be used', () => {
  it('a key file that cannot be read: the option and the OS error', async () => {
    const cert = conf('cert.pem', 'not a certificate\n');
    const r = await porthole([...serveFlags(`sqlite:///${join(dir, 'tls.db')}`), '--cert', cert, '--key', join(dir, 'missing.key')]);
    assert.equal(r.code, 1);
    assert.equal(lastLine(r), `[DEFAULT] key = ${join(dir, 'missing.key')}: cannot read it: ENOENT: no such file or directory, open '${join(dir, 'missing.key')}'`);
  });

  it('a file that is no PEM certificate: the option and OpenSSL\'s words', async () => {
    const cert = conf('garbage.pem', 'not a certificate\n');
    const r = await porthole([...serveFlags(`sqlite:///${join(dir, 'tls.db')}`), '--cert', cert]);
    assert.equal(r.code, 1);
    assert.match(lastLine(r), new RegExp(`^\\[DEFAULT\\] cert = ${cert} \\(with its key, \\[DEFAULT\\] key unset\\): not a usable PEM certificate and private key: .*no start line`));
  });
});

describe('start-up lines', () => {
  it('name the config files, the database, the API\'s auth strategy and each listener with its TLS', async () => {
    const f = conf('start.conf', `[database]\nconnection = sqlite:///start.db\n[api]\nauth_strategy = noauth2\n`);
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/porthole.js'), 'serve', ...OTHER_CONSOLES_ON_LOOPBACK, '--config-file', f, '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', '0', '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', '0'], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const check = () => /compute API listening on/.test(out) && resolve();
        child.stdout.on('data', check);
        child.once('exit', () => reject(new Error(`exited before listening:\n${out}`)));
      });
      assert.match(out, new RegExp(`config files: ${f}`));
      // the relative path is the config file's directory's, not the current directory's
      assert.match(out, new RegExp(`database \\(\\[database\\] connection from ${f}:2\\): SQLite ${join(dir, 'start.db')}`));
      assert.match(out, /compute API: HTTP, no TLS; callers authenticate by \[api\] auth_strategy = noauth2/);
      assert.match(out, /noVNC console proxy listening on 127\.0\.0\.1:\d+ \(HTTP, no TLS\)/);
      const order = ['config files:', 'database (', 'noVNC console proxy listening'].map((s) => out.indexOf(s));
      assert.deepEqual([...order].sort((a, b) => a - b), order);
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('mask a database password', () => {
    assert.equal(describeConnection('postgresql://nova:s3cret@db/nova'), 'postgresql://nova:***@db/nova');
    assert.equal(describeConnection('sqlite:////var/lib/porthole/porthole.db'), 'SQLite /var/lib/porthole/porthole.db');
  });
});

describe('the default database', () => {
  it('is one file for the daemon and the CLI, wherever each is started', async () => {
    const state = join(dir, 'state');
    const a = join(dir, 'cwd-a');
    const b = join(dir, 'cwd-b');
    mkdirSync(a);
    mkdirSync(b);
    // systemd's StateDirectory= sets STATE_DIRECTORY; as root without it, /var/lib/porthole
    const env = { STATE_DIRECTORY: state };
    const added = await porthole(['server', 'add', '--id', UUID, '--name', 'from-a', '--vnc', '127.0.0.1:5901'], { env, cwd: a });
    assert.equal(added.code, 0, added.stderr);
    const listed = await porthole(['server', 'list', '--json'], { env, cwd: b });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /from-a/);
    assert.equal(statSync(state).mode & 0o777, 0o700);
    assert.ok(statSync(join(state, 'porthole.db')).isFile());
  });

  it('follows the rule: STATE_DIRECTORY, /var/lib/porthole for root or who can write it, else XDG state', () => {
    const system = join(dir, 'no-such-var-lib');
    assert.equal(stateDirectory({ env: { STATE_DIRECTORY: '/srv/p:/srv/q' }, uid: 1000, system }), '/srv/p');
    assert.equal(stateDirectory({ env: {}, uid: 0, system }), system);
    assert.equal(stateDirectory({ env: { XDG_STATE_HOME: '/home/u/.st', HOME: '/home/u' }, uid: 1000, system }), '/home/u/.st/porthole');
    assert.equal(stateDirectory({ env: { XDG_STATE_HOME: 'relative', HOME: '/home/u' }, uid: 1000, system }), '/home/u/.local/state/porthole');
    assert.equal(stateDirectory({ env: { HOME: '/home/u' }, uid: 1000, system: dir }), dir);
    assert.equal(loadConfig({ env: {}, state: { env: { HOME: '/home/u' }, uid: 1000, system } }).config.database.connection, 'sqlite:////home/u/.local/state/porthole/porthole.db');
  });

  it('reads a relative sqlite:/// path against its config file, a flag\'s against the current directory', () => {
    assert.equal(absoluteSqlite('sqlite:///x.db', '/etc/porthole'), 'sqlite:////etc/porthole/x.db');
    assert.equal(absoluteSqlite('sqlite:////abs/x.db', '/etc/porthole'), 'sqlite:////abs/x.db');
    assert.equal(absoluteSqlite('sqlite://', '/etc'), 'sqlite://');
    const f = conf('rel.conf', '[database]\nconnection = sqlite:///rel.db\n');
    assert.equal(loadConfig({ files: [f], env: {} }).config.database.connection, `sqlite:///${join(dir, 'rel.db')}`);
    const flag = loadConfig({ env: {}, cwd: '/work', flags: [{ section: 'database', name: 'connection', raw: 'sqlite:///f.db', source: 'flag --database-connection' }] });
    assert.equal(flag.config.database.connection, 'sqlite:////work/f.db');
  });
});
