/**
 * `[porthole] serial_keep_attached` against a real QEMU (Debian `qemu-system-x86`, `-machine
 * none`): its HMP monitor on a TCP chardev (`-chardev socket,server=on,wait=off`), which takes one
 * client at a time, as a serial port does. Through Porthole's serial listener: what QEMU printed
 * while nobody watched (its banner, the answer to a command typed by a viewer who then left) is
 * the next viewer's first bytes; two viewers see the same output over the one backend connection;
 * a view-only viewer's keys do not reach QEMU; revocation closes one viewer, not the backend
 * connection; the log survives a restart with serial_log_dir;
 * the serial-log API; viewers coming and going leave no descriptor, session or backend connection,
 * and the gateway's close closes the kept connection.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Server } from '../../src/inventory/types.ts';
import { call } from '../support/api.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionsTo, leakMeter, liveSessions, openDescriptors, settled } from '../support/leak-meter.ts';
import { haveQemu, QEMU } from '../support/qemu.ts';

const SERVER_ID = '5e71a1c0-4b1e-4c3a-9f00-00000000c0de';

interface MonitorQemu {
  readonly port: number;
  readonly name: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** QEMU with its HMP monitor on a TCP chardev at a free port (one client at a time). */
async function startMonitorQemu(): Promise<MonitorQemu> {
  const port = await freePort();
  const name = `keep-${Math.random().toString(16).slice(2, 10)}`;
  const proc: ChildProcess = spawn(QEMU, ['-nodefaults', '-machine', 'none', '-display', 'none', '-name', name, '-chardev', `socket,id=mon0,host=127.0.0.1,port=${port},server=on,wait=off`, '-mon', 'chardev=mon0,mode=readline'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // listening once the port is taken
  await eventually(`QEMU listening on ${port} (${stderr})`, async () => !(await portFree(port)) || proc.exitCode !== null, 10_000);
  if (proc.exitCode !== null) throw new Error(`QEMU exited: ${stderr}`);
  return {
    port,
    name,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

interface Viewer {
  readonly ws: WebSocket;
  /** Everything received, as latin1 text. */
  text(): string;
  /** The first message received. */
  first(): string | undefined;
  send(text: string): void;
  close(): Promise<void>;
}

/** A viewer on the serial listener (subprotocol `binary`, as websockify clients ask). */
async function viewer(gw: TestGateway, token: string): Promise<Viewer> {
  const port = gw.gateway.proxies.get('serial')!.port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${encodeURIComponent(token)}`, ['binary']);
  const messages: string[] = [];
  ws.on('message', (d: Buffer) => messages.push(d.toString('latin1')));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: HTTP ${res.statusCode}`)));
  });
  return {
    ws,
    text: () => messages.join(''),
    first: () => messages[0],
    send: (text) => ws.send(Buffer.from(text, 'latin1')),
    close: () =>
      new Promise((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.close();
      }),
  };
}

async function mint(gw: TestGateway, qemuPort: number, consoleType = 'serial'): Promise<string> {
  const { token } = await gw.gateway.stores.tokens.create({ consoleType, host: '127.0.0.1', port: qemuPort, instanceUuid: SERVER_ID, accessUrlBase: gw.gateway.proxies.get('serial')!.baseUrl, ttl: 600 });
  return token;
}

async function keptGateway(qemu: MonitorQemu, logDir?: string): Promise<TestGateway> {
  const gw = await startGateway({ 'porthole.serial_keep_attached': 'true', ...(logDir ? { 'porthole.serial_log_dir': logDir } : {}) });
  const server: Server = { id: SERVER_ID, name: 'kept-vm', projectId: null, status: 'ACTIVE', vnc: null, serial: { host: '127.0.0.1', port: qemu.port } };
  await gw.gateway.stores.inventory.put(server);
  // the hub's poll has not seen it yet: its next sync takes it in (a viewer would too)
  await gw.gateway.serialHub!.sync();
  await eventually('the hub attached to QEMU', () => gw.gateway.serialHub!.kept.get(SERVER_ID)?.state === 'attached');
  return gw;
}

/** QEMU's answer to `info version` (its version line), as the monitor prints it. */
const VERSION = /\r\n\d+\.\d+\.\d+[^\r\n]*\r\n\(qemu\) /;

describe('serial console kept attached (QEMU)', { skip: !haveQemu && `${QEMU} not installed` }, () => {
  let qemu: MonitorQemu;
  let logDir: string;
  before(async () => {
    qemu = await startMonitorQemu();
    logDir = mkdtempSync(join(tmpdir(), 'porthole-serial-logs-'));
  });
  after(async () => {
    await qemu?.stop();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('shows the next viewer what QEMU printed while nobody watched, then the live stream', async () => {
    const gw = await keptGateway(qemu, logDir);
    try {
      // QEMU greeted the hub before any viewer came: the first viewer's first bytes
      const v1 = await viewer(gw, await mint(gw, qemu.port));
      await eventually('the banner as scrollback', () => v1.text().includes('QEMU') && v1.text().includes('monitor - type'));
      assert.match(v1.first()!, /^QEMU \d+\.\d+\.\d+ monitor - type 'help' for more information\r\n\(qemu\) /);
      v1.send('info version\r');
      await eventually('QEMU answered the first viewer', () => VERSION.test(v1.text()));
      await v1.close();

      const v2 = await viewer(gw, await mint(gw, qemu.port));
      await eventually('the second viewer\'s scrollback', () => VERSION.test(v2.text()));
      // all of it in the first message: the scrollback, before anything live
      assert.match(v2.first()!, /monitor - type 'help'[\s\S]*info version[\s\S]*\r\n\d+\.\d+\.\d+/);
      v2.send('info name\r');
      await eventually('live answer', () => v2.text().includes(qemu.name));
      await v2.close();
    } finally {
      await gw.close();
    }
  });

  it('lets two viewers share the one backend connection: both see the output, either types', async () => {
    const gw = await keptGateway(qemu);
    try {
      const a = await viewer(gw, await mint(gw, qemu.port));
      const b = await viewer(gw, await mint(gw, qemu.port));
      const before = { a: a.text().length, b: b.text().length };
      await eventually('both have the scrollback', () => a.text().includes('(qemu) ') && b.text().includes('(qemu) '));
      a.send('info name\r');
      await eventually('both see the answer to a\'s command', () => a.text().slice(before.a).includes(qemu.name) && b.text().slice(before.b).includes(qemu.name));
      b.send('info version\r');
      await eventually('both see the answer to b\'s command', () => VERSION.test(a.text()) && VERSION.test(b.text()));
      // one connection from Porthole to QEMU, however many viewers
      assert.equal(connectionsTo(qemu.port), 1);
      await a.close();
      await b.close();
    } finally {
      await gw.close();
    }
  });

  it('does not let a view-only viewer type', async () => {
    const gw = await keptGateway(qemu);
    try {
      const ro = await viewer(gw, await mint(gw, qemu.port, 'serial-view-only'));
      const rw = await viewer(gw, await mint(gw, qemu.port));
      ro.send('info status\r');
      rw.send('info name\r');
      await eventually('the typing viewer\'s command answered, seen by both', () => rw.text().includes(qemu.name) && ro.text().includes(qemu.name));
      // QEMU's readline echoes what it gets: nothing of the view-only viewer's keys came back
      assert.doesNotMatch(rw.text(), /info status|VM status/);
      assert.doesNotMatch(ro.text(), /info status|VM status/);
      await ro.close();
      await rw.close();
    } finally {
      await gw.close();
    }
  });

  it('closes a viewer whose token is revoked, and keeps the backend connection for the others', async () => {
    const gw = await keptGateway(qemu);
    try {
      const token = await mint(gw, qemu.port);
      const revoked = await viewer(gw, token);
      const other = await viewer(gw, await mint(gw, qemu.port));
      const closed = new Promise<number>((r) => revoked.ws.once('close', (code) => r(code)));
      await gw.gateway.stores.tokens.revoke(token);
      assert.equal(await closed, 1008);
      other.send('info name\r');
      await eventually('the other viewer still works', () => other.text().includes(`${qemu.name}\r\n`));
      assert.equal(connectionsTo(qemu.port), 1);
      await other.close();
    } finally {
      await gw.close();
    }
  });

  it('refuses a view-only token where serial_keep_attached is off (fail closed)', async () => {
    const gw = await startGateway();
    try {
      await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'kept-vm', projectId: null, status: 'ACTIVE', vnc: null, serial: { host: '127.0.0.1', port: qemu.port } });
      await assert.rejects(viewer(gw, await mint(gw, qemu.port, 'serial-view-only')), /HTTP 403/);
      assert.equal(connectionsTo(qemu.port), 0);
    } finally {
      await gw.close();
    }
  });

  it('keeps the log across a restart with serial_log_dir, and serves it at /porthole/v1/servers/{id}/serial-log', async () => {
    const marker = `info name`;
    let gw = await keptGateway(qemu, logDir);
    try {
      const v = await viewer(gw, await mint(gw, qemu.port));
      v.send(`${marker}\r`);
      await eventually('answered', () => v.text().includes(`${qemu.name}\r\n`));
      await v.close();
      const r = await call(gw.gateway.api!.port, 'GET', `/porthole/v1/servers/${SERVER_ID}/serial-log`, { token: 'admin' });
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      assert.ok(r.text.includes(`${qemu.name}\r\n`), r.text);
      const unknown = await call(gw.gateway.api!.port, 'GET', '/porthole/v1/servers/6e71a1c0-4b1e-4c3a-9f00-00000000beef/serial-log', { token: 'admin' });
      assert.equal(unknown.status, 404);
    } finally {
      await gw.close();
    }
    const file = join(logDir, `${SERVER_ID}.log`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // a new process, another database: the same directory brings the log back
    gw = await keptGateway(qemu, logDir);
    try {
      const v = await viewer(gw, await mint(gw, qemu.port));
      await eventually('the earlier answer in the scrollback', () => v.text().includes(`${qemu.name}\r\n`));
      assert.ok(v.first()!.includes(`${qemu.name}\r\n`), 'in the first message, before the live stream');
      await v.close();
    } finally {
      await gw.close();
    }
    // where nothing is kept: 409, not an empty log
    const plain = await startGateway();
    try {
      await plain.gateway.stores.inventory.put({ id: SERVER_ID, name: 'kept-vm', projectId: null, status: 'ACTIVE', vnc: null, serial: { host: '127.0.0.1', port: qemu.port } });
      const r = await call(plain.gateway.api!.port, 'GET', `/porthole/v1/servers/${SERVER_ID}/serial-log`, { token: 'admin' });
      assert.equal(r.status, 409, r.text);
    } finally {
      await plain.close();
    }
  });

  it('leaves no descriptor, session or backend connection when viewers come and go, and closes the kept one with the gateway', async () => {
    const gw = await keptGateway(qemu);
    try {
      const kept = gw.gateway.serialHub!.kept.get(SERVER_ID)!;
      const meter = leakMeter({
        descriptors: () => openDescriptors(),
        backendConnections: () => connectionsTo(qemu.port),
        sessions: () => liveSessions(gw.gateway),
        viewers: () => kept.viewerCount,
      });
      // one viewer first, so that what is opened once per process (the ws client's parts) is in the baseline
      const warm = await viewer(gw, await mint(gw, qemu.port));
      await warm.close();
      const baseline = await settled(meter, await meter.read(), 5000);
      assert.equal(baseline.backendConnections, 1);
      for (let round = 0; round < 5; round++) {
        const vs = await Promise.all([0, 1, 2, 3].map(async () => viewer(gw, await mint(gw, qemu.port))));
        assert.equal(kept.viewerCount, 4);
        vs[round % 4]!.send('info name\r');
        await eventually('every viewer saw the answer', () => vs.every((v) => v.text().includes(`${qemu.name}\r\n`)));
        // some leave cleanly, some drop their TCP connection
        await Promise.all(vs.map((v, i) => (i % 2 === 0 ? v.close() : (v.ws.terminate(), Promise.resolve()))));
      }
      await settled(meter, baseline, 5000);
      assert.equal(connectionsTo(qemu.port), 1);
    } finally {
      await gw.close();
    }
    await eventually('the kept connection closed with the gateway', () => connectionsTo(qemu.port) === 0);
  });
});
