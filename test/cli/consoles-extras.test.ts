/**
 * The CLI's surfaces of issue 18: `server add --[no-]shared-consoles --[no-]record` (kept in the
 * inventory, shown by `server list` and `server show`, text and `--json`), and `token create
 * --label --control --record --view-only` (the token's extras in Porthole's own store beside
 * the token, its minter `cli:<user>`; `--view-only` a noVNC watcher's token, `novnc-view-only`).
 * With a Nova database and no `[porthole] connection` there is no store for a label: nothing is
 * minted. Each run of the CLI is a process of its own on an SQLite file of the test's.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { hashToken } from '../../src/store/types.ts';
import { tempDir } from '../support/gateway.ts';
import { porthole, type RunResult } from '../support/process.ts';

const SERVER = '3f1e2d4c-5b6a-4978-8a6b-5c4d3e2f1a0b';

function scratch() {
  const dir = tempDir('porthole-cli-extras-');
  const path = join(dir, 'p.db');
  return { path, db: ['--database-connection', `sqlite:///${path}`], cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function json(r: RunResult): any {
  assert.equal(r.code, 0, `exit ${r.code}, stderr: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function rows<T>(path: string, query: string, ...args: unknown[]): T[] {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return db.prepare(query).all(...args) as T[];
  } finally {
    db.close();
  }
}

function usage(r: RunResult, message: RegExp): void {
  assert.equal(r.code, 2, `exit ${r.code}, stdout: ${r.stdout}, stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
}

describe('porthole server: shared consoles and recording', () => {
  it('keeps a server\'s choices, shows them in list and show, and leaves them to the config when not given', async () => {
    const s = scratch();
    try {
      const added = json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--shared-consoles', '--no-record', '--json', ...s.db]));
      assert.deepEqual([added.shared_consoles, added.record], [true, false]);
      assert.deepEqual(rows(s.path, 'SELECT shared_consoles, record FROM porthole_servers'), [{ shared_consoles: 1, record: 0 }]);
      const [listed, table, shown, shownText] = await Promise.all([
        porthole(['server', 'list', '--json', ...s.db]),
        porthole(['server', 'list', ...s.db]),
        porthole(['server', 'show', SERVER, '--json', ...s.db]),
        porthole(['server', 'show', SERVER, ...s.db]),
      ]);
      assert.deepEqual(json(listed), [added]);
      assert.deepEqual(json(shown), added);
      assert.match(table.stdout, /^ID +NAME +PROJECT +STATUS +VNC +SERIAL +SPICE +AUTH +SHARED +RECORD$/m);
      assert.match(table.stdout, new RegExp(`^${SERVER} +web-1 +ACTIVE +127\\.0\\.0\\.1:5901 +yes +no$`, 'm'));
      assert.match(shownText.stdout, /^shared_consoles +yes$/m);
      assert.match(shownText.stdout, /^record +no$/m);

      const again = await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--record', ...s.db]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, `server ${SERVER} (web-1): vnc 127.0.0.1:5901, recorded\n`);
      const text = await porthole(['server', 'show', SERVER, ...s.db]);
      assert.match(text.stdout, /^shared_consoles +default \(\[porthole\] shared_consoles\)$/m, 'replaced whole: the shared choice is the config\'s again');
      assert.match(text.stdout, /^record +yes$/m);

      const missing = await porthole(['server', 'show', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d', ...s.db]);
      assert.equal(missing.code, 1);
      usage(await porthole(['server', 'add', '--id', SERVER, '--name', 'x', '--vnc', '127.0.0.1:5901', '--record', '--no-record', ...s.db]), /--record and --no-record: give one of them/);
    } finally {
      s.cleanup();
    }
  });
});

describe('porthole token create: label, control, record, view-only', () => {
  it('keeps the token\'s extras beside it in Porthole\'s own store, its minter the user who ran it', async () => {
    const s = scratch();
    try {
      json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--json', ...s.db]));
      const labelled = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--label', '  Ops on call  ', '--control', '--record', '--json', ...s.db]));
      assert.deepEqual([labelled.label, labelled.control, labelled.record], ['Ops on call', true, true]);
      const plain = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--json', ...s.db]));
      assert.equal(plain.label, undefined);
      const extras = (token: string) => rows<{ label: string | null; minted_by: string; control: number; record: number; expires: number }>(s.path, 'SELECT label, minted_by, control, record, expires FROM porthole_token_extras WHERE token_hash = ?', hashToken(token))[0];
      const me = `cli:${userInfo().username}`;
      assert.deepEqual({ ...extras(labelled.token), expires: undefined }, { label: 'Ops on call', minted_by: me, control: 1, record: 1, expires: undefined });
      assert.equal(extras(labelled.token)!.expires, Math.floor(Date.parse(labelled.expires_at) / 1000), 'kept until the token expires');
      assert.deepEqual({ ...extras(plain.token), expires: undefined }, { label: null, minted_by: me, control: 0, record: 0, expires: undefined });
      // never in Nova's table, and never the token itself
      assert.deepEqual(rows(s.path, "SELECT name FROM pragma_table_info('console_auth_tokens') WHERE name IN ('label', 'minted_by', 'control', 'record')"), []);
      assert.equal(JSON.stringify(rows(s.path, 'SELECT * FROM porthole_token_extras')).includes(labelled.token), false);

      const text = await porthole(['token', 'create', '--instance-uuid', SERVER, '--label', 'Ann', ...s.db]);
      assert.match(text.stdout, /^label: +Ann$/m);
    } finally {
      s.cleanup();
    }
  });

  it('mints a noVNC watcher\'s token with --view-only, a serial one with --console-type serial', async () => {
    const s = scratch();
    try {
      json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--serial', '127.0.0.1:4555', '--json', ...s.db]));
      const [watcher, serial] = await Promise.all([
        porthole(['token', 'create', '--instance-uuid', SERVER, '--view-only', '--json', ...s.db]),
        porthole(['token', 'create', '--instance-uuid', SERVER, '--view-only', '--console-type', 'serial', '--json', ...s.db]),
      ]);
      const types = rows<{ token_hash: string; console_type: string }>(s.path, 'SELECT token_hash, console_type FROM console_auth_tokens');
      const typeOf = (token: string) => types.find((t) => t.token_hash === hashToken(token))?.console_type;
      assert.equal(typeOf(json(watcher).token), 'novnc-view-only');
      assert.equal(typeOf(json(serial).token), 'serial-view-only');
    } finally {
      s.cleanup();
    }
  });

  it('refuses a label that is too long or not printable, and control for a watcher, minting nothing', async () => {
    const s = scratch();
    try {
      json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--json', ...s.db]));
      const results = await Promise.all([
        porthole(['token', 'create', '--instance-uuid', SERVER, '--label', 'x'.repeat(65), ...s.db]),
        porthole(['token', 'create', '--instance-uuid', SERVER, '--label', 'a\u001b[31mb', ...s.db]),
        porthole(['token', 'create', '--instance-uuid', SERVER, '--label', '', ...s.db]),
        porthole(['token', 'create', '--instance-uuid', SERVER, '--view-only', '--control', ...s.db]),
        porthole(['token', 'create', '--instance-uuid', SERVER, '--view-only', '--console-type', 'spice-html5', ...s.db]),
      ]);
      for (const r of results.slice(0, 2)) usage(r, /--label: expected 1 to 64 printable characters/);
      assert.notEqual(results[2]!.code, 0);
      usage(results[3]!, /a view-only viewer cannot take control/);
      usage(results[4]!, /only noVNC and serial consoles have a view-only kind/);
      assert.deepEqual(rows(s.path, 'SELECT token_hash FROM console_auth_tokens'), []);
    } finally {
      s.cleanup();
    }
  });

  it('mints nothing with a label on a Nova database without [porthole] connection, and a plain token still', async () => {
    const s = scratch();
    try {
      // the tables made first by an ordinary run; then the same file taken as a Nova cell database
      json(await porthole(['server', 'add', '--id', SERVER, '--name', 'web-1', '--vnc', '127.0.0.1:5901', '--json', ...s.db]));
      const nova = [...s.db, '--porthole-nova_database', 'true'];
      const refused = await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5901', '--label', 'Ann', ...nova]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /\[porthole\] connection is not set/);
      assert.deepEqual(rows(s.path, 'SELECT token_hash FROM console_auth_tokens'), []);
      const plain = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5901', '--json', ...nova]));
      assert.equal(rows(s.path, 'SELECT token_hash FROM porthole_token_extras WHERE token_hash = ?', hashToken(plain.token)).length, 0, 'no extras where there is no store for them');
    } finally {
      s.cleanup();
    }
  });
});
