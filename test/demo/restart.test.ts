/**
 * Demo console URLs survive a restart of `npm start` until they expire: `porthole serve --demo`
 * (what `npm start` runs) on a temporary SQLite file hands out a URL, stops on SIGTERM, starts
 * again on the same file, and the old token still opens the demo console (RFB ServerInit with the
 * demo's desktop name) because the demo VNC server is back on the port the token names. When
 * that port is taken by then, the start says that older demo URLs stopped working, and they are
 * refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { DEMO_SERVER_ID } from '../../src/gateway.ts';
import { openConsole, openRfbConsole } from '../support/backends.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, PROJECT_ROOT } from '../support/process.ts';
import { freePort } from '../support/xvnc.ts';

interface Started {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly token: string;
}

const URL_PATTERN = /http:\/\/127\.0\.0\.1:\d+\/vnc_auto\.html\?path=%3Ftoken%3D([0-9a-f-]{36})/;

async function serveDemo(db: string, consolePort: number, apiPort: number): Promise<Started> {
  const child = spawn(process.execPath, [
    'bin/porthole.js', 'serve', '--demo', ...OTHER_CONSOLES_ON_LOOPBACK,
    '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(consolePort),
    '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(apiPort),
    '--database-connection', `sqlite:///${db}`,
  ], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const token = await eventually('the demo console URL on stdout', () => child.exitCode === null ? URL_PATTERN.exec(out)?.[1] : (() => { throw new Error(`porthole serve exited ${child.exitCode}: ${out}`); })(), 30_000);
  return { child, out: () => out, token };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}

function demoPort(db: string): number {
  const conn = new BetterSqlite3(db, { readonly: true });
  try {
    return (conn.prepare('SELECT vnc_port FROM porthole_servers WHERE id = ?').get(DEMO_SERVER_ID) as { vnc_port: number }).vnc_port;
  } finally {
    conn.close();
  }
}

describe('demo console URLs across a restart of npm start', () => {
  const running: Started[] = [];
  const dirs: string[] = [];
  let squatter: Server | undefined;
  after(async () => {
    for (const s of running) await stop(s);
    squatter?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function restartCase(): Promise<{ db: string; consolePort: number; apiPort: number; first: Started }> {
    const dir = tempDir();
    dirs.push(dir);
    const db = join(dir, 'porthole.db');
    const consolePort = await freePort();
    const apiPort = await freePort();
    const first = await serveDemo(db, consolePort, apiPort);
    running.push(first);
    await openRfbConsole(`ws://127.0.0.1:${consolePort}/?token=${first.token}`).then(({ ws }) => ws.close());
    await stop(first);
    return { db, consolePort, apiPort, first };
  }

  it('opens the demo console with a token handed out before the restart', async () => {
    const { db, consolePort, apiPort, first } = await restartCase();
    const port = demoPort(db);
    const second = await serveDemo(db, consolePort, apiPort);
    running.push(second);
    assert.notEqual(second.token, first.token);
    assert.equal(demoPort(db), port, 'the demo VNC server is back on its port');
    const { ws, messages } = await openRfbConsole(`ws://127.0.0.1:${consolePort}/?token=${first.token}`);
    ws.close();
    const serverInit = messages[messages.length - 1]!;
    assert.equal(serverInit.subarray(24).toString(), 'Porthole demo');
    assert.doesNotMatch(second.out(), /no longer work/);
    await stop(second);
  });

  it('says that older demo URLs stopped working when the demo port is taken at the restart, and refuses them', async () => {
    const { db, consolePort, apiPort, first } = await restartCase();
    const port = demoPort(db);
    squatter = createServer();
    await new Promise<void>((r) => squatter!.listen(port, '127.0.0.1', r));
    const second = await serveDemo(db, consolePort, apiPort);
    running.push(second);
    await eventually('the warning about older demo URLs', () => new RegExp(`port ${port} of the previous start is taken, listening on \\d+; demo console URLs handed out before this start no longer work`).test(second.out()));
    assert.notEqual(demoPort(db), port);
    assert.deepEqual(await openConsole(`ws://127.0.0.1:${consolePort}/?token=${first.token}`), { status: 403 });
    await openRfbConsole(`ws://127.0.0.1:${consolePort}/?token=${second.token}`).then(({ ws }) => ws.close());
    await stop(second);
  });
});
