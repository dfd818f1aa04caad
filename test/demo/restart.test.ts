/**
 * Demo console URLs survive a restart of `npm start` until they expire: `porthole serve --demo`
 * (what `npm start` runs) on a temporary SQLite file hands out a URL, stops on SIGTERM, starts
 * again on the same file, and the old token still opens the demo console (RFB ServerInit with the
 * demo's desktop name) because the demo VNC server is back on the port the token names. The same
 * for the demo's serial console (its page URL's token opens it, banner read through Porthole's
 * serial WebSocket). When those ports are taken by then, the start says that older demo URLs
 * stopped working, and they are refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { WebSocket } from 'ws';
import { DEMO_SERVER_ID } from '../../src/gateway.ts';
import { openConsole, openRfbConsole } from '../support/backends.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, PROJECT_ROOT } from '../support/process.ts';
import { freePort } from '../support/xvnc.ts';

interface Started {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly token: string;
  /** The token of the demo serial console's page URL. */
  readonly serialToken: string;
}

const URL_PATTERN = /http:\/\/127\.0\.0\.1:\d+\/vnc_auto\.html\?path=%3Ftoken%3D([0-9a-f-]{36})/;

interface Ports { readonly consolePort: number; readonly serialPort: number; readonly apiPort: number }

async function serveDemo(db: string, { consolePort, serialPort, apiPort }: Ports): Promise<Started> {
  const child = spawn(process.execPath, [
    'bin/porthole.js', 'serve', '--demo', ...OTHER_CONSOLES_ON_LOOPBACK,
    '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(consolePort),
    '--serial_console-serialproxy_port', String(serialPort),
    '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(apiPort),
    '--database-connection', `sqlite:///${db}`,
  ], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const token = await eventually('the demo console URL on stdout', () => child.exitCode === null ? URL_PATTERN.exec(out)?.[1] : (() => { throw new Error(`porthole serve exited ${child.exitCode}: ${out}`); })(), 30_000);
  const serialPage = new RegExp(`Serial console: http://127\\.0\\.0\\.1:${serialPort}/serial\\.html\\?token=([0-9a-f-]{36})`);
  const serialToken = await eventually('the demo serial console URL on stdout', () => serialPage.exec(out)?.[1]);
  return { child, out: () => out, token, serialToken };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}

function demoPort(db: string, column: 'vnc_port' | 'serial_port' = 'vnc_port'): number {
  const conn = new BetterSqlite3(db, { readonly: true });
  try {
    return (conn.prepare(`SELECT ${column} AS port FROM porthole_servers WHERE id = ?`).get(DEMO_SERVER_ID) as { port: number }).port;
  } finally {
    conn.close();
  }
}

/**
 * Opens the serial console WebSocket that the page of `token` would open; resolves with what the
 * console sent up to its prompt, or with the HTTP status of a refusal.
 */
async function openSerial(serialPort: number, token: string): Promise<{ status?: number; text?: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${serialPort}/?token=${token}`, ['binary'], { perMessageDeflate: false });
  let out = '';
  ws.on('message', (d: Buffer) => (out += d.toString('utf8')));
  ws.on('error', () => {});
  try {
    const opened = await Promise.race([
      once(ws, 'open').then(() => undefined),
      once(ws, 'unexpected-response').then(([, res]) => (res as { statusCode: number }).statusCode),
    ]);
    if (opened !== undefined) return { status: opened };
    return { text: await eventually('the demo serial console\'s prompt', () => out.endsWith('demo$ ') && out) };
  } finally {
    ws.terminate();
  }
}

describe('demo console URLs across a restart of npm start', () => {
  const running: Started[] = [];
  const dirs: string[] = [];
  const squatters: Server[] = [];
  after(async () => {
    for (const s of running) await stop(s);
    for (const s of squatters) s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function restartCase(): Promise<{ db: string; ports: Ports; first: Started }> {
    const dir = tempDir();
    dirs.push(dir);
    const db = join(dir, 'porthole.db');
    const ports = { consolePort: await freePort(), serialPort: await freePort(), apiPort: await freePort() };
    const first = await serveDemo(db, ports);
    running.push(first);
    await openRfbConsole(`ws://127.0.0.1:${ports.consolePort}/?token=${first.token}`).then(({ ws }) => ws.close());
    assert.match((await openSerial(ports.serialPort, first.serialToken)).text ?? '', /Porthole demo serial console/);
    await stop(first);
    return { db, ports, first };
  }

  async function squat(port: number): Promise<void> {
    const squatter = createServer();
    squatters.push(squatter);
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
  }

  it('opens the demo console with a token handed out before the restart', async () => {
    const { db, ports, first } = await restartCase();
    const { consolePort } = ports;
    const port = demoPort(db);
    const serialPort = demoPort(db, 'serial_port');
    const second = await serveDemo(db, ports);
    running.push(second);
    assert.notEqual(second.token, first.token);
    assert.equal(demoPort(db), port, 'the demo VNC server is back on its port');
    assert.equal(demoPort(db, 'serial_port'), serialPort, 'the demo serial console is back on its port');
    assert.match((await openSerial(ports.serialPort, first.serialToken)).text ?? '', /Porthole demo serial console/);
    const { ws, messages } = await openRfbConsole(`ws://127.0.0.1:${consolePort}/?token=${first.token}`);
    ws.close();
    const serverInit = messages[messages.length - 1]!;
    assert.equal(serverInit.subarray(24).toString(), 'Porthole demo');
    assert.doesNotMatch(second.out(), /no longer work/);
    await stop(second);
  });

  it('says that older demo URLs stopped working when the demo ports are taken at the restart, and refuses them', async () => {
    const { db, ports, first } = await restartCase();
    const { consolePort } = ports;
    const port = demoPort(db);
    const serialPort = demoPort(db, 'serial_port');
    await squat(port);
    await squat(serialPort);
    const second = await serveDemo(db, ports);
    running.push(second);
    await eventually('the warning about older demo URLs', () => new RegExp(`port ${port} of the previous start is taken, listening on \\d+; demo console URLs handed out before this start no longer work`).test(second.out()));
    await eventually('the warning about older demo serial URLs', () => new RegExp(`demo serial console: port ${serialPort} of the previous start is taken, listening on \\d+; demo serial console URLs handed out before this start no longer work`).test(second.out()));
    assert.notEqual(demoPort(db), port);
    assert.notEqual(demoPort(db, 'serial_port'), serialPort);
    assert.deepEqual(await openConsole(`ws://127.0.0.1:${consolePort}/?token=${first.token}`), { status: 403 });
    await openRfbConsole(`ws://127.0.0.1:${consolePort}/?token=${second.token}`).then(({ ws }) => ws.close());
    assert.deepEqual(await openSerial(ports.serialPort, first.serialToken), { status: 403 });
    assert.match((await openSerial(ports.serialPort, second.serialToken)).text ?? '', /Porthole demo serial console/);
    await stop(second);
  });
});
