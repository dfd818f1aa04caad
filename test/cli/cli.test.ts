import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { hashToken } from '../../src/store/types.ts';
import { tempDir } from '../support/gateway.ts';
import { porthole, type RunResult } from '../support/process.ts';

const SERVER = '3f1e2d4c-5b6a-4978-8a6b-5c4d3e2f1a0b';
const OTHER = '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d';
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A temp directory with its own SQLite file for one test. */
function scratch() {
  const dir = tempDir('porthole-cli-');
  const path = join(dir, 'p.db');
  return { dir, path, db: ['--database-connection', `sqlite:///${path}`], cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function json(r: RunResult): any {
  assert.equal(r.code, 0, `exit ${r.code}, stderr: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function tokenRows(path: string): { instance_uuid: string; host: string; port: number; expires: number }[] {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return db.prepare('SELECT instance_uuid, host, port, expires FROM console_auth_tokens').all() as { instance_uuid: string; host: string; port: number; expires: number }[];
  } finally {
    db.close();
  }
}

function assertUsageError(r: RunResult, message: RegExp): void {
  assert.equal(r.code, 2, `exit ${r.code}, stdout: ${r.stdout}, stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^porthole: /);
  assert.match(r.stderr, message);
}

/** Runs independent refusals side by side (each start of the CLI costs over a second). */
async function usageErrors(cases: [string[], RegExp][]): Promise<void> {
  const results = await Promise.all(cases.map(([args]) => porthole(args)));
  results.forEach((r, i) => assertUsageError(r, cases[i]![1]));
}

describe('porthole help', () => {
  it('lists every command on --help', async () => {
    const r = await porthole(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['serve', 'novncproxy', 'token create', 'token show', 'token revoke', 'server add', 'server list', 'server remove', 'db migrate']) {
      assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'), cmd);
    }
    assert.match(r.stdout, /--config-file/);
  });

  for (const [cmd, mentions] of [
    ['serve', ['--demo', '--config-file']],
    ['novncproxy', ['--vnc-novncproxy_port', '--config-file /etc/nova/nova.conf', 'nova.conf']],
    ['token create', ['--instance-uuid', '--host', '--port', '--ttl', '--json']],
    ['server add', ['--id UUID', '--name NAME', '--vnc HOST:PORT']],
  ] as const) {
    it(`prints the usage of ${cmd} on ${cmd} --help, without touching a database`, async () => {
      const s = scratch();
      try {
        const r = await porthole([...cmd.split(' '), '--help', ...s.db]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.startsWith(`usage: porthole ${cmd} `), r.stdout);
        for (const m of mentions) assert.ok(r.stdout.includes(m), `${cmd} --help does not mention ${m}`);
        assert.equal(r.stderr, '');
        assert.equal(existsSync(s.path), false);
      } finally {
        s.cleanup();
      }
    });
  }

  it('lists every option with its section and default on help options', async () => {
    const r = await porthole(['help', 'options']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\[vnc\]$/m);
    assert.match(r.stdout, /^ {2}novncproxy_port \(port, default 6080\)$/m);
    assert.match(r.stdout, /^ {2}token_ttl \(int, default 600\)$/m);
  });
});

describe('porthole db migrate', () => {
  it('creates the tables once and then reports them up to date', async () => {
    const s = scratch();
    try {
      const first = json(await porthole(['db', 'migrate', '--json', ...s.db]));
      assert.deepEqual(first, { database: `sqlite:${s.path}`, applied: ['0001_console_auth_tokens', '0002_porthole_servers', '0003_porthole_servers_backend_auth', '0004_porthole_token_uses', '0005_porthole_sessions', '0006_porthole_lookup_failures', '0007_porthole_servers_serial_spice', '0008_porthole_events', '0009_porthole_registry_scale', '0010_porthole_consoles_framebuffer', '0011_porthole_events_sqlite_indexes'] });
      const second = json(await porthole(['db', 'migrate', '--json', ...s.db]));
      assert.deepEqual(second, { database: `sqlite:${s.path}`, applied: [] });
      const text = await porthole(['db', 'migrate', ...s.db]);
      assert.equal(text.code, 0);
      assert.equal(text.stdout, `sqlite:${s.path} is up to date\n`);
    } finally {
      s.cleanup();
    }
  });

  it('succeeds in every one of several processes that migrate a new file at once', async () => {
    const s = scratch();
    try {
      const runs = await Promise.all([1, 2, 3, 4].map(() => porthole(['db', 'migrate', '--json', ...s.db])));
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const applied = runs.map((r) => (JSON.parse(r.stdout) as { applied: string[] }).applied).filter((a) => a.length > 0);
      assert.deepEqual(applied, [['0001_console_auth_tokens', '0002_porthole_servers', '0003_porthole_servers_backend_auth', '0004_porthole_token_uses', '0005_porthole_sessions', '0006_porthole_lookup_failures', '0007_porthole_servers_serial_spice', '0008_porthole_events', '0009_porthole_registry_scale', '0010_porthole_consoles_framebuffer', '0011_porthole_events_sqlite_indexes']]);
    } finally {
      s.cleanup();
    }
  });
});

describe('porthole server', () => {
  it('adds, lists and removes a server', async () => {
    const s = scratch();
    try {
      const added = json(await porthole(['server', 'add', '--id', SERVER.toUpperCase(), '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--json', ...s.db]));
      assert.deepEqual(added, { id: SERVER, name: 'web-1', project_id: null, status: 'ACTIVE', vnc: '127.0.0.1:5901', serial: null, spice: null, backend_auth: null, shared_consoles: null, record: null });
      json(await porthole(['server', 'add', '--id', OTHER, '--name', 'db-1', '--vnc', '[::1]:5902', '--project-id', 'p1', '--status', 'shutoff', '--json', ...s.db]));

      const listed = json(await porthole(['server', 'list', '--json', ...s.db]));
      assert.deepEqual(listed, [
        { id: OTHER, name: 'db-1', project_id: 'p1', status: 'SHUTOFF', vnc: '[::1]:5902', serial: null, spice: null, backend_auth: null, shared_consoles: null, record: null },
        { id: SERVER, name: 'web-1', project_id: null, status: 'ACTIVE', vnc: '127.0.0.1:5901', serial: null, spice: null, backend_auth: null, shared_consoles: null, record: null },
      ]);
      const table = await porthole(['server', 'list', ...s.db]);
      assert.equal(table.code, 0);
      assert.match(table.stdout, /^ID +NAME +PROJECT +STATUS +VNC +SERIAL +SPICE +AUTH +SHARED +RECORD$/m);
      assert.match(table.stdout, new RegExp(`^${SERVER} +web-1 +ACTIVE +127\\.0\\.0\\.1:5901$`, 'm'));

      const minted = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', ...s.db]));
      const removed = await porthole(['server', 'remove', SERVER, '--json', ...s.db]);
      assert.deepEqual(json(removed), { removed: true, revoked: 1 });
      // its tokens went with it, as with DELETE /porthole/v1/servers/{id}
      assert.equal((await porthole(['token', 'show', minted.token, '--json', ...s.db])).code, 1);
      assert.deepEqual(json(await porthole(['server', 'list', '--json', ...s.db])).map((x: { id: string }) => x.id), [OTHER]);

      const again = await porthole(['server', 'remove', SERVER, ...s.db]);
      assert.equal(again.code, 1);
      assert.equal(again.stdout, `no server ${SERVER}\n`);
    } finally {
      s.cleanup();
    }
  });

  it('replaces a server added again with the same id', async () => {
    const s = scratch();
    try {
      json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--json', ...s.db]));
      json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1b', '--vnc', '127.0.0.1:5911', '--json', ...s.db]));
      assert.deepEqual(json(await porthole(['server', 'list', '--json', ...s.db])), [{ id: SERVER, name: 'web-1b', project_id: null, status: 'ACTIVE', vnc: '127.0.0.1:5911', serial: null, spice: null, backend_auth: null, shared_consoles: null, record: null }]);
    } finally {
      s.cleanup();
    }
  });

  it('keeps serial and SPICE endpoints, shows them, and forgets them when the server is added again without', async () => {
    const s = scratch();
    try {
      const added = json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--serial', '127.0.0.1:4555', '--spice', '[::1]:5930,tls=5931', '--json', ...s.db]));
      assert.deepEqual(added, { id: SERVER, name: 'web-1', project_id: null, status: 'ACTIVE', vnc: '127.0.0.1:5901', serial: '127.0.0.1:4555', spice: '[::1]:5930,tls=5931', backend_auth: null, shared_consoles: null, record: null });
      // a serial console and nothing else: a server without a display
      const serialOnly = await porthole(['server', 'add', '--id', OTHER, '--name', 'db-1', '--serial', 'compute-2:4556', ...s.db]);
      assert.equal(serialOnly.code, 0, serialOnly.stderr);
      assert.equal(serialOnly.stdout, `server ${OTHER} (db-1): serial compute-2:4556\n`);

      assert.deepEqual(json(await porthole(['server', 'list', '--json', ...s.db])), [
        { id: OTHER, name: 'db-1', project_id: null, status: 'ACTIVE', vnc: null, serial: 'compute-2:4556', spice: null, backend_auth: null, shared_consoles: null, record: null },
        added,
      ]);
      const table = await porthole(['server', 'list', ...s.db]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, new RegExp(`^${SERVER} +web-1 +ACTIVE +127\\.0\\.0\\.1:5901 +127\\.0\\.0\\.1:4555 +\\[::1\\]:5930,tls=5931$`, 'm'));
      // the VNC column is empty for the serial-only server: the serial endpoint sits under SERIAL
      const header = table.stdout.split('\n')[0]!;
      const row = table.stdout.split('\n').find((l) => l.startsWith(OTHER))!;
      assert.equal(row.indexOf('compute-2:4556'), header.indexOf('SERIAL'));

      // a token for the serial-only server's missing VNC console is refused, nothing is minted
      const noVnc = await porthole(['token', 'create', '--instance-uuid', OTHER, ...s.db]);
      assert.notEqual(noVnc.code, 0);
      assert.match(noVnc.stderr, /has no VNC console endpoint/);

      const plain = json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--spice', '127.0.0.1:5930', '--json', ...s.db]));
      assert.deepEqual(plain, { id: SERVER, name: 'web-1', project_id: null, status: 'ACTIVE', vnc: null, serial: null, spice: '127.0.0.1:5930', backend_auth: null, shared_consoles: null, record: null });
      assert.deepEqual(json(await porthole(['server', 'list', '--json', ...s.db]))[1], plain, 'replaced whole: no VNC, no serial, no TLS port');
    } finally {
      s.cleanup();
    }
  });

  it('refuses a bad id or endpoint with a usage error', async () => {
    const s = scratch();
    try {
      await usageErrors([
        [['server', 'add', '--id', 'web-1', '--name', 'web-1', '--vnc', '127.0.0.1:5901', ...s.db], /--id web-1: expected a UUID/],
        [['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1', ...s.db], /--vnc 127\.0\.0\.1: expected HOST:PORT/],
        [['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:70000', ...s.db], /--vnc 127\.0\.0\.1:70000: expected HOST:PORT/],
        [['server', 'add', '--id', SERVER, '--vnc', '127.0.0.1:5901', ...s.db], /--name is required/],
        [['server', 'remove', ...s.db], /expected exactly one UUID/],
      ]);
      // a second batch: nine CLI starts at once on a busy 2-CPU machine outlast the 30 s limit
      await usageErrors([
        [['server', 'add', '--id', SERVER, '--name', 'web-1', ...s.db], /--vnc, --serial or --spice is required/],
        [['server', 'add', '--id', SERVER, '--name', 'web-1', '--serial', '127.0.0.1:0', ...s.db], /--serial 127\.0\.0\.1:0: expected HOST:PORT/],
        [['server', 'add', '--id', SERVER, '--name', 'web-1', '--spice', '127.0.0.1:5930,tls=70000', ...s.db], /--spice 127\.0\.0\.1:5930,tls=70000: expected HOST:PORT or HOST:PORT,tls=PORT/],
        [['server', 'add', '--id', SERVER, '--name', 'web-1', '--spice', '127.0.0.1:5930,tls', ...s.db], /--spice 127\.0\.0\.1:5930,tls: expected/],
      ]);
    } finally {
      s.cleanup();
    }
  });
});

describe('porthole token', () => {
  let s: ReturnType<typeof scratch>;

  before(async () => {
    s = scratch();
    json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--json', ...s.db]));
  });
  after(() => s.cleanup());

  it('prints exactly token, url and expires_at, with Nova\'s default console URL', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', OTHER, '--host', '192.0.2.5', '--port', '5905', '--json', ...s.db]));
    assert.deepEqual(Object.keys(out).sort(), ['expires_at', 'token', 'url']);
    assert.match(out.token, UUID4);
    assert.equal(out.url, `http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D${out.token}`);
    const expiresIn = Date.parse(out.expires_at) - Date.now();
    assert.ok(expiresIn > 540_000 && expiresIn <= 600_000, `expires in ${expiresIn} ms`);
    assert.match(out.expires_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);
    const row = tokenRows(s.path).find((r) => r.instance_uuid === OTHER && r.port === 5905);
    assert.ok(row);
    assert.equal(row.host, '192.0.2.5');
  });

  it('builds the URL from --vnc-novncproxy_base_url', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', '--vnc-novncproxy_base_url', 'https://console.example.com/vnc_lite.html', ...s.db]));
    assert.equal(out.url, `https://console.example.com/vnc_lite.html?path=%3Ftoken%3D${out.token}`);
  });

  it('builds the URL from --vnc-novncproxy_port when the base URL is left at its default', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', '--vnc-novncproxy_port', '6090', ...s.db]));
    assert.equal(out.url, `http://127.0.0.1:6090/vnc_auto.html?path=%3Ftoken%3D${out.token}`);
  });

  it('sets expires_at --ttl seconds ahead', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--ttl', '30', '--json', ...s.db]));
    const expiresIn = Date.parse(out.expires_at) - Date.now();
    assert.ok(expiresIn > 15_000 && expiresIn <= 30_000, `expires in ${expiresIn} ms`);
  });

  it('takes [consoleauth] token_ttl as the default lifetime', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--consoleauth-token_ttl', '120', '--json', ...s.db]));
    const expiresIn = Date.parse(out.expires_at) - Date.now();
    assert.ok(expiresIn > 100_000 && expiresIn <= 120_000, `expires in ${expiresIn} ms`);
  });

  it('uses a registered server\'s endpoint when given only --instance-uuid', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', ...s.db]));
    const shown = json(await porthole(['token', 'show', out.token, '--json', ...s.db]));
    assert.equal(shown.host, '127.0.0.1');
    assert.equal(shown.port, 5901);
    assert.equal(shown.instance_uuid, SERVER);
  });

  it('accepts --host and --port that match the registered endpoint', async () => {
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5901', '--json', ...s.db]));
    assert.match(out.token, UUID4);
  });

  it('refuses a host:port that is not the registered server\'s, and mints nothing', async () => {
    const before = tokenRows(s.path).length;
    await usageErrors([
      [['token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5999', '--json', ...s.db], /has its VNC console at 127\.0\.0\.1:5901, not 127\.0\.0\.1:5999/],
      [['token', 'create', '--instance-uuid', SERVER, '--host', '10.0.0.9', '--json', ...s.db], /not 10\.0\.0\.9:5901/],
    ]);
    assert.equal(tokenRows(s.path).length, before);
  });

  it('shows a token: what it opens, and that it is valid', async () => {
    const { token } = json(await porthole(['token', 'create', '--instance-uuid', OTHER, '--host', '192.0.2.6', '--port', '5906', '--internal-access-path', 'abc', '--json', ...s.db]));
    const shown = json(await porthole(['token', 'show', token, '--json', ...s.db]));
    assert.deepEqual({ ...shown, expires_at: undefined }, {
      state: 'valid',
      console_type: 'novnc',
      instance_uuid: OTHER,
      host: '192.0.2.6',
      port: 5906,
      internal_access_path: 'abc',
      access_url_base: 'http://127.0.0.1:6080/vnc_auto.html',
      expires_at: undefined,
    });
  });

  it('shows an expired token as expired, with exit status 1', async () => {
    const { token } = json(await porthole(['token', 'create', '--instance-uuid', OTHER, '--host', '192.0.2.7', '--port', '5907', '--json', ...s.db]));
    const db = new BetterSqlite3(s.path);
    db.prepare('UPDATE console_auth_tokens SET expires = 1 WHERE token_hash = ?').run(hashToken(token));
    db.close();
    const r = await porthole(['token', 'show', token, '--json', ...s.db]);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).state, 'expired');
  });

  it('revokes a token, after which show says unknown with exit status 1', async () => {
    const { token } = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', ...s.db]));
    assert.deepEqual(json(await porthole(['token', 'revoke', token, '--json', ...s.db])), { revoked: 1 });
    const shown = await porthole(['token', 'show', token, '--json', ...s.db]);
    assert.equal(shown.code, 1);
    assert.deepEqual(JSON.parse(shown.stdout), { state: 'unknown' });
    const text = await porthole(['token', 'show', token, ...s.db]);
    assert.equal(text.code, 1);
    assert.equal(text.stdout, 'unknown or revoked token\n');
    const again = await porthole(['token', 'revoke', token, ...s.db]);
    assert.equal(again.code, 1);
    assert.equal(again.stdout, 'no such token\n');
  });

  it('revokes every token of a server with --instance-uuid, and no other', async () => {
    const instance = '0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
    const mine = [];
    for (const port of ['5911', '5912']) mine.push(json(await porthole(['token', 'create', '--instance-uuid', instance, '--host', '192.0.2.9', '--port', port, '--json', ...s.db])).token);
    const theirs = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', ...s.db])).token;
    assert.deepEqual(json(await porthole(['token', 'revoke', '--instance-uuid', instance, '--json', ...s.db])), { revoked: 2 });
    for (const t of mine) assert.equal((await porthole(['token', 'show', t, ...s.db])).code, 1);
    assert.equal((await porthole(['token', 'show', theirs, ...s.db])).code, 0);
    const text = await porthole(['token', 'revoke', '--instance-uuid', instance, ...s.db]);
    assert.equal(text.code, 0);
    assert.equal(text.stdout, `revoked 0 token(s) of ${instance}\n`);
  });

  it('prints the token, URL and expiry as text without --json', async () => {
    const r = await porthole(['token', 'create', '--instance-uuid', SERVER, ...s.db]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^token: +[0-9a-f-]{36}\nurl: +http:\/\/127\.0\.0\.1:6080\/vnc_auto\.html\?path=%3Ftoken%3D[0-9a-f-]{36}\nexpires at: +\S+Z\n$/);
  });
});

describe('porthole usage errors', () => {
  let s: ReturnType<typeof scratch>;
  before(() => {
    s = scratch();
  });
  after(() => s.cleanup());

  it('exits 2 naming an unknown command', async () => {
    assertUsageError(await porthole(['frobnicate']), /unknown command "frobnicate"/);
  });

  it('exits 2 with the group\'s usage for an incomplete command', async () => {
    assertUsageError(await porthole(['token', ...s.db]), /usage: porthole token create[\s\S]*porthole token show[\s\S]*porthole token revoke/);
  });

  it('exits 2 naming an unknown option', async () => {
    await usageErrors([
      [['token', 'create', '--instance-uuid', SERVER, '--bogus', 'x', ...s.db], /unknown option --bogus/],
      [['server', 'list', '--vnc-server_listen', '1.2.3.4', ...s.db], /unknown option --vnc-server_listen/],
    ]);
  });

  it('exits 2 when an option lacks its value', async () => {
    assertUsageError(await porthole(['token', 'create', ...s.db, '--instance-uuid']), /--instance-uuid needs a value/);
  });

  it('exits 2 on missing or malformed token create arguments', async () => {
    await usageErrors([
      [['token', 'create', '--host', 'h', '--port', '1', ...s.db], /--instance-uuid is required/],
      [['token', 'create', '--instance-uuid', 'nope', '--host', 'h', '--port', '1', ...s.db], /--instance-uuid nope: expected a UUID/],
      [['token', 'create', '--instance-uuid', OTHER, ...s.db], /--host and --port are needed/],
      [['token', 'create', '--instance-uuid', OTHER, '--host', 'h', ...s.db], /--port is required/],
      [['token', 'create', '--instance-uuid', OTHER, '--host', 'h', '--port', '0', ...s.db], /--port 0: expected a port number/],
      [['token', 'create', '--instance-uuid', OTHER, '--host', 'h', '--port', 'x', ...s.db], /--port x: expected a port number/],
      [['token', 'create', '--instance-uuid', OTHER, '--host', 'h', '--port', '1', '--ttl', '0', ...s.db], /--ttl 0: expected a whole number of seconds/],
      [['token', 'create', '--instance-uuid', OTHER, '--host', 'h', '--port', '1', '--ttl', '2.5', ...s.db], /--ttl 2\.5/],
      [['token', 'create', '--instance-uuid', OTHER, '--host', 'h', '--port', '1', '--console-type', 'rdp-html5', ...s.db], /--console-type rdp-html5/],
    ]);
  });

  it('exits 2 when token show or revoke gets no token or too much', async () => {
    await usageErrors([
      [['token', 'show', ...s.db], /expected exactly one TOKEN/],
      [['token', 'show', 'a', 'b', ...s.db], /expected exactly one TOKEN/],
      [['token', 'revoke', 'a', '--instance-uuid', SERVER, ...s.db], /either a TOKEN or --instance-uuid, not both/],
    ]);
  });
});

describe('porthole configuration', () => {
  let s: ReturnType<typeof scratch>;
  before(() => {
    s = scratch();
  });
  after(() => s.cleanup());

  it('exits 1 naming the option, value and expectation of a bad flag value', async () => {
    const r = await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', 'h', '--port', '1', '--consoleauth-token_ttl', 'soon', ...s.db]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^porthole: flag --consoleauth-token_ttl: \[consoleauth\] token_ttl = "soon": expected an integer\n$/);
  });

  it('exits 1 naming the file and line of a bad value in --config-file', async () => {
    const conf = join(s.dir, 'bad.conf');
    writeFileSync(conf, '[DEFAULT]\ndebug = false\n[vnc]\nnovncproxy_port = abc\n');
    const r = await porthole(['server', 'list', '--config-file', conf, ...s.db]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${conf}:4: [vnc] novncproxy_port = "abc": expected a port number`), r.stderr);
  });

  it('exits 1 naming an unreadable --config-file', async () => {
    const r = await porthole(['server', 'list', '--config-file', join(s.dir, 'missing.conf'), ...s.db]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read config file .*missing\.conf/);
  });

  it('exits 1 when the database scheme is not one it can open', async () => {
    const r = await porthole(['server', 'list', '--database-connection', 'oracle://db/nova']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown database scheme "oracle"/);
  });

  it('takes [database] connection from a nova.conf given with --config-file', async () => {
    const dbPath = join(s.dir, 'from-conf.db');
    const conf = join(s.dir, 'nova.conf');
    writeFileSync(conf, `[DEFAULT]\ntransport_url = rabbit://openstack:pw@controller\nmy_ip = 10.0.0.11\n\n[api_database]\nconnection = sqlite:////nonexistent/nova_api.db\n\n[database]\n# the cell database holds console_auth_tokens\nconnection = sqlite:///${dbPath}\n\n[vnc]\nserver_listen = $my_ip\nnovncproxy_base_url = http://controller:6080/vnc_auto.html\n\n[keystone_authtoken]\npassword = secret\n`);
    const migrated = json(await porthole(['db', 'migrate', '--json', '--config-file', conf]));
    assert.deepEqual(migrated, { database: `sqlite:${dbPath}`, applied: ['0001_console_auth_tokens', '0002_porthole_servers', '0003_porthole_servers_backend_auth', '0004_porthole_token_uses', '0005_porthole_sessions', '0006_porthole_lookup_failures', '0007_porthole_servers_serial_spice', '0008_porthole_events', '0009_porthole_registry_scale', '0010_porthole_consoles_framebuffer', '0011_porthole_events_sqlite_indexes'] });
    const out = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', '192.0.2.1', '--port', '5900', '--json', '--config-file', conf]));
    assert.equal(out.url, `http://controller:6080/vnc_auto.html?path=%3Ftoken%3D${out.token}`);
    assert.equal(tokenRows(dbPath).length, 1);
  });

  it('lets a flag override the file\'s [database] connection', async () => {
    const conf = join(s.dir, 'other.conf');
    writeFileSync(conf, `[database]\nconnection = sqlite:///${join(s.dir, 'not-this.db')}\n`);
    const r = json(await porthole(['db', 'migrate', '--json', '--config-file', conf, ...s.db]));
    assert.equal(r.database, `sqlite:${s.path}`);
    assert.equal(existsSync(join(s.dir, 'not-this.db')), false);
  });

  it('takes [database] connection from PORTHOLE_DATABASE_CONNECTION', async () => {
    const dbPath = join(s.dir, 'from-env.db');
    const r = json(await porthole(['db', 'migrate', '--json'], { PORTHOLE_DATABASE_CONNECTION: `sqlite:///${dbPath}` }));
    assert.equal(r.database, `sqlite:${dbPath}`);
    assert.ok(existsSync(dbPath));
  });
});
