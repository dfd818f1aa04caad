/**
 * `porthole server screenshot ID|NAME -o FILE.png [--width N] [--json]`, run as a real command
 * against a real TigerVNC Xvnc painted in known colours (one with a VNC password given by
 * `server add --vnc-password-file`): the file is written 0600 (also over a file that was
 * readable by others) with the painted pixels, `-o -` writes the PNG to standard output, `--json`
 * says what was written, an unknown server or a closed port is a clear failure, and the audit
 * trail records it with the operating-system user as actor.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../support/gateway.ts';
import { compare, decodePng, painted, paintedXvnc } from '../support/painted-screen.ts';
import { cleanEnv, porthole, PROJECT_ROOT } from '../support/process.ts';
import { freePort, haveXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER = 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f';
const LOCKED = 'd2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a';
const CLOSED = 'e3f4a5b6-c7d8-4e9f-8a1b-2c3d4e5f6a7b';
const PASSWORD = 'cli-pw-7';

describe('porthole server screenshot', { skip: !haveXvnc && 'no Xvnc' }, () => {
  let dir: string;
  let db: string[];
  let open: Xvnc;
  let locked: Xvnc;

  before(async () => {
    dir = tempDir('porthole-cli-shot-');
    db = ['--database-connection', `sqlite:///${join(dir, 'p.db')}`];
    open = await paintedXvnc();
    locked = await paintedXvnc({ password: PASSWORD });
    const pwFile = join(dir, 'vnc-password');
    writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
    const adds = await Promise.all([
      porthole(['server', 'add', '--id', SERVER, '--name', 'painted', '--vnc', `127.0.0.1:${open.port}`, ...db]),
      porthole(['server', 'add', '--id', LOCKED, '--name', 'locked', '--vnc', `127.0.0.1:${locked.port}`, '--auth-schemes', 'vnc', '--vnc-password-file', pwFile, ...db]),
    ]);
    for (const r of adds) assert.equal(r.code, 0, r.stderr);
    const r = await porthole(['server', 'add', '--id', CLOSED, '--name', 'closed', '--vnc', `127.0.0.1:${await freePort()}`, ...db]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await open?.stop();
    await locked?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes the PNG of the painted screen to a file of mode 0600, by name, and --json says what it wrote', async () => {
    const file = join(dir, 'by-name.png');
    // a file that was there, readable by everyone: it is made private as it is written
    writeFileSync(file, 'old', { mode: 0o644 });
    const r = await porthole(['server', 'screenshot', 'painted', '-o', file, '--json', ...db]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const bytes = readFileSync(file);
    assert.deepEqual(out, { file, width: 640, height: 480, bytes: bytes.length });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const c = compare(decodePng(bytes), painted);
    assert.equal(c.differing, 0, `${c.differing} pixels differ; first ${c.first}`);
  });

  it('takes the id, scales with --width, and authenticates with the server\'s VNC password', async () => {
    const file = join(dir, 'locked.png');
    const r = await porthole(['server', 'screenshot', LOCKED, '--output', file, '--width', '160', ...db]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /160x120 PNG of server/);
    const png = decodePng(readFileSync(file));
    assert.deepEqual([png.width, png.height], [160, 120]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD));
  });

  it('writes the PNG to standard output with -o -', async () => {
    const stdout = await new Promise<Buffer>((resolve, reject) => {
      execFile(process.execPath, ['bin/porthole.js', 'server', 'screenshot', SERVER, '-o', '-', ...db], { cwd: PROJECT_ROOT, env: cleanEnv(), encoding: 'buffer', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}: ${errOut.toString()}`)) : resolve(out)));
    });
    assert.equal(compare(decodePng(stdout), painted).differing, 0);
  });

  it('fails clearly for an unknown server, a closed port, a bad width', async () => {
    const [unknown, closed, narrow, noOutput] = await Promise.all([
      porthole(['server', 'screenshot', 'nosuch', '-o', join(dir, 'x.png'), ...db]),
      porthole(['server', 'screenshot', 'closed', '-o', join(dir, 'closed.png'), ...db]),
      porthole(['server', 'screenshot', 'painted', '-o', join(dir, 'n.png'), '--width', '8', ...db]),
      porthole(['server', 'screenshot', 'painted', ...db]),
    ]);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /no server nosuch in the inventory/);
    assert.equal(closed.code, 1, closed.stderr);
    assert.match(closed.stderr, /ECONNREFUSED/);
    assert.equal(narrow.code, 2, narrow.stderr);
    assert.match(narrow.stderr, /--width 8: expected a whole number of at least 16/);
    assert.equal(noOutput.code, 2);
    assert.match(noOutput.stderr, /--output is required/);
  });

  it('records screenshot.taken in the audit trail with the user who ran it', async () => {
    const r = await porthole(['events', 'list', '--event', 'screenshot.taken', '--server', SERVER, '--json', ...db]);
    assert.equal(r.code, 0, r.stderr);
    const events = JSON.parse(r.stdout);
    const list = Array.isArray(events) ? events : events.events;
    assert.ok(list.length >= 2, r.stdout);
    assert.ok(list.every((e: { event: string; actor: { cli?: string } }) => e.event === 'screenshot.taken' && typeof e.actor.cli === 'string'), r.stdout);
  });
});
