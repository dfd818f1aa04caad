/**
 * The shared consoles' engine against a real TigerVNC Xvnc, through a real gateway with
 * `[porthole] shared_consoles`: RFB viewers over WebSockets (the test's client, and Porthole's
 * own decoder for ZRLE) see the same pixels as a direct connection to Xvnc; a late joiner gets
 * the current screen at once; the controller's keys reach the X server (`xinput test-xi2`), the
 * watchers' never do; control moves on request and when the controller leaves; Xvnc sees one
 * connection for 10 viewers (`ss -tn`), none once the last viewer left; a 16-bit viewer gets
 * right pixels; a viewer that never reads does not stall the others; a view-only token fails
 * closed without shared consoles, and a server that does not share is still dialled per viewer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { RfbDecoder } from '../../src/rfb/framebuffer/decoder.ts';
import { NOVNC_VIEW_ONLY } from '../../src/proxy/view-only.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionsTo, openDescriptors } from '../support/leak-meter.ts';
import { RfbClient, RGB888_LE, type PixelFormat } from '../support/rfb-client.ts';
import { paintRoot } from '../support/x11-paint.ts';
import { haveXvnc, keycodeOf, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER = '7d0c3b2a-1e4f-4a5b-8c6d-9e0f1a2b3c4d';
const PLAIN = '7d0c3b2a-1e4f-4a5b-8c6d-9e0f1a2b3c4e';
const RGB565: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: false, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };

const gradient = (x: number, y: number): [number, number, number] => [(x * 7) & 255, (y * 5) & 255, ((x + y) * 3) & 255];

describe('shared consoles engine (Xvnc, RFB viewers)', { skip: !haveXvnc && 'needs Xvnc', timeout: 240_000 }, () => {
  let xvnc: Xvnc;
  let plainXvnc: Xvnc;
  let gw: TestGateway;
  const open: WebSocket[] = [];

  before(async () => {
    xvnc = await startXvnc({ colour: '#204060' });
    plainXvnc = await startXvnc({ colour: '#602040' });
    await paintRoot(xvnc.display, { x: 0, y: 0, width: 640, height: 480 }, gradient);
    gw = await startGateway({ 'porthole.shared_consoles': 'true' });
    await gw.gateway.stores.inventory.put({ id: SERVER, name: 'shared', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    await gw.gateway.stores.inventory.put({ id: PLAIN, name: 'plain', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: plainXvnc.port }, sharedConsoles: false });
  });

  after(async () => {
    for (const ws of open) ws.terminate();
    await gw?.close();
    await xvnc?.stop();
    await plainXvnc?.stop();
  });

  async function viewerWs(opts: { server?: string; port?: number; consoleType?: string } = {}): Promise<WebSocket> {
    const { token } = await gw.gateway.stores.tokens.create({
      consoleType: opts.consoleType ?? 'novnc', host: '127.0.0.1', port: opts.port ?? xvnc.port, instanceUuid: opts.server ?? SERVER,
      accessUrlBase: gw.gateway.novnc!.baseUrl, ttl: 600, internalAccessPath: null,
    });
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/websockify?token=${token}&viewer=${crypto.randomUUID()}`, ['binary']);
    ws.on('error', () => {});
    open.push(ws);
    return ws;
  }

  async function viewer(opts: { server?: string; port?: number; consoleType?: string } = {}): Promise<RfbClient> {
    const c = RfbClient.overWebSocket(await viewerWs(opts));
    await c.handshake({ timeoutMs: 20_000 });
    return c;
  }

  function hub() {
    return gw.gateway.sharedConsoles!.kept.get(SERVER)!;
  }

  async function direct(format: PixelFormat = RGB888_LE) {
    const d = await RfbClient.overTcp('127.0.0.1', xvnc.port);
    await d.handshake();
    const fb = await d.requestFramebuffer(format, 20_000);
    const rgb = Uint8Array.from(d.rgb);
    d.close();
    return { fb, rgb };
  }

  it('three viewers see what a direct connection to Xvnc sees, pixel for pixel, through one backend connection', async () => {
    const want = await direct();
    await eventually('the direct connection gone', () => connectionsTo(xvnc.port) === 0, 10_000);
    const viewers = [await viewer(), await viewer(), await viewer()];
    for (const v of viewers) {
      await v.requestFramebuffer(RGB888_LE, 20_000);
      assert.equal(v.width, 640);
      assert.equal(Buffer.compare(Buffer.from(v.rgb), Buffer.from(want.rgb)), 0, 'the viewer\'s screen differs from the direct one');
    }
    assert.equal(connectionsTo(xvnc.port), 1, 'Xvnc sees one connection for three viewers');
    const state = hub().state();
    assert.equal(state.viewers.length, 3);
    assert.equal(state.controller, state.viewers[0]!.id, 'the first viewer has control');
    assert.deepEqual(state.viewers.map((v) => v.role), ['control', 'view', 'view']);
    for (const v of viewers) v.close();
  });

  it('gives a late joiner the current screen at once, and a 16-bit viewer right pixels', async () => {
    const first = await viewer();
    await first.requestFramebuffer(RGB888_LE, 20_000);
    // the screen changes while the first viewer watches
    await paintRoot(xvnc.display, { x: 100, y: 100, width: 50, height: 40 }, () => [250, 10, 20]);
    first.updateRequest(true);
    await eventually('the first viewer sees the change', async () => {
      await first.readUpdate(20_000);
      const i = (120 * 640 + 120) * 3;
      if (first.rgb[i] === 250) return true;
      first.updateRequest(true);
      return false;
    }, 20_000);
    const late = await viewer();
    const fb = await late.requestFramebuffer(RGB888_LE, 20_000);
    assert.deepEqual(fb.pixel(120, 120), [250, 10, 20]);
    assert.deepEqual(fb.pixel(10, 10), gradient(10, 10));
    const sixteen = await viewer();
    const fb16 = await sixteen.requestFramebuffer(RGB565, 20_000);
    for (const [x, y] of [[0, 0], [10, 10], [333, 222], [639, 479], [120, 120]] as const) {
      const want = fb.pixel(x, y);
      const got = fb16.pixel(x, y);
      // 5 and 6 bits a channel: within one step of the 8-bit value
      want.forEach((c, i) => assert.ok(Math.abs(c - got[i]!) <= (i === 1 ? 4 : 8), `pixel ${x},${y}: ${got} for ${want}`));
    }
    for (const v of [first, late, sixteen]) v.close();
  });

  it('encodes ZRLE that Porthole\'s own decoder turns into the same screen, each handshake message in its own WebSocket message', async () => {
    const want = await direct();
    const ws = await viewerWs();
    const messages: Buffer[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (d: Buffer) => {
      messages.push(d);
      wake?.();
    });
    const next = async (): Promise<Buffer> => {
      while (messages.length === 0) await new Promise<void>((r) => (wake = r));
      return messages.shift()!;
    };
    await new Promise((r) => ws.once('open', r));
    assert.equal((await next()).toString('latin1'), 'RFB 003.008\n');
    ws.send(Buffer.from('RFB 003.008\n'));
    assert.deepEqual([...(await next())], [1, 1]);
    ws.send(Buffer.from([1]));
    assert.deepEqual([...(await next())], [0, 0, 0, 0]);
    ws.send(Buffer.from([1]));
    const serverInit = await next();
    assert.equal(serverInit.readUInt16BE(0), 640);
    let covered = false;
    const decoder = new RfbDecoder(serverInit, { update: () => (covered = true) });
    const enc = Buffer.alloc(12);
    enc[0] = 2;
    enc.writeUInt16BE(2, 2);
    enc.writeInt32BE(16, 4);
    enc.writeInt32BE(-223, 8);
    ws.send(enc);
    ws.send(Buffer.from([3, 0, 0, 0, 0, 0, 2, 128, 1, 224]));
    await eventually('a ZRLE update', async () => {
      decoder.push(await next());
      return covered;
    }, 20_000);
    const fb = decoder.framebuffer;
    let differ = 0;
    for (let i = 0, p = 0; i < 640 * 480; i++, p += 4) {
      if (fb.pixels[p] !== want.rgb[i * 3] || fb.pixels[p + 1] !== want.rgb[i * 3 + 1] || fb.pixels[p + 2] !== want.rgb[i * 3 + 2]) differ++;
    }
    assert.equal(differ, 0, `${differ} pixels differ from the direct connection's`);
    ws.close();
  });

  it('lets only the controller type; control moves on request and when the controller leaves', async () => {
    await xvnc.watchKeys();
    const codeOf = (name: string) => keycodeOf(xvnc.display, name)!;
    const [a, b, c] = [await viewer(), await viewer(), await viewer()];
    const ids = hub().state().viewers.map((v) => v.id);
    const [ida, idb] = [ids.at(-3)!, ids.at(-2)!];
    assert.equal(hub().state().controller, ida);
    b.key(0x62); // b
    c.key(0x63); // c
    a.key(0x61); // a
    await eventually('the controller\'s key at X', () => xvnc.keycodes.includes(codeOf('a')), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!xvnc.keycodes.includes(codeOf('b')) && !xvnc.keycodes.includes(codeOf('c')), 'a watcher\'s key reached X');
    // b asks: a (just typed) is asked, and says yes
    assert.equal(hub().requestControl(idb), 'asked');
    assert.equal(hub().answerRequest(ida, idb, true), 'granted');
    assert.equal(hub().state().controller, idb);
    a.key(0x64); // d: dropped now
    b.key(0x65); // e
    await eventually('the new controller\'s key at X', () => xvnc.keycodes.includes(codeOf('e')), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!xvnc.keycodes.includes(codeOf('d')), 'the former controller\'s key reached X');
    // the controller leaves: the longest-present viewer that is not view-only (a) takes it
    b.close();
    await eventually('control back to a', () => hub().state().controller === ida, 10_000);
    a.key(0x66); // f
    await eventually('a\'s key at X again', () => xvnc.keycodes.includes(codeOf('f')), 10_000);
    a.close();
    c.close();
  });

  it('costs Xvnc one connection for 10 viewers, and none once the last viewer left', async () => {
    await eventually('the earlier viewers gone', () => !gw.gateway.sharedConsoles!.kept.has(SERVER) && connectionsTo(xvnc.port) === 0, 20_000);
    const fdsBefore = openDescriptors();
    const viewers: RfbClient[] = [];
    for (let i = 0; i < 10; i++) viewers.push(await viewer());
    await Promise.all(viewers.map((v) => v.requestFramebuffer(RGB888_LE, 30_000)));
    assert.equal(connectionsTo(xvnc.port), 1);
    assert.equal(hub().viewerCount, 10);
    for (const v of viewers) v.close();
    await eventually('the backend connection closed after the linger', () => connectionsTo(xvnc.port) === 0 && !gw.gateway.sharedConsoles!.kept.has(SERVER), 30_000);
    await eventually('descriptors back', () => openDescriptors() <= fdsBefore + 2, 10_000);
  });

  it('does not let a viewer that never reads stall the others', async () => {
    const stuck = await viewerWs();
    const stuckClient = RfbClient.overWebSocket(stuck);
    await stuckClient.handshake({ timeoutMs: 20_000 });
    stuckClient.updateRequest(false);
    // it stops reading: its socket is paused, the proxy's writes pile up at the kernel
    (stuck as unknown as { _socket: { pause(): void } })._socket.pause();
    const watcher = await viewer();
    await watcher.requestFramebuffer(RGB888_LE, 20_000);
    for (let round = 0; round < 12; round++) {
      const shade = 20 * round;
      await paintRoot(xvnc.display, { x: 0, y: 0, width: 640, height: 480 }, (x, y) => [(x + shade) & 255, (y + shade) & 255, shade]);
      stuckClient.updateRequest(false);
    }
    await eventually('the reading viewer sees the last screen', async () => {
      watcher.updateRequest(true);
      await watcher.readUpdate(20_000);
      const i = (5 * 640 + 7) * 3;
      return watcher.rgb[i] === ((7 + 220) & 255) && watcher.rgb[i + 2] === 220;
    }, 60_000);
    watcher.close();
    stuck.terminate();
  });

  it('refuses a view-only token for a server not in the inventory and for one that does not share (its viewers could not see who watches), and dials a plain console per viewer', async () => {
    const statusOf = async (server: string) => {
      const ws = await viewerWs({ server, port: plainXvnc.port, consoleType: NOVNC_VIEW_ONLY });
      return new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => (ws.close(), resolve(101)));
      });
    };
    assert.equal(await statusOf('7d0c3b2a-1e4f-4a5b-8c6d-9e0f1a2b3c40'), 403);
    assert.equal(await statusOf(PLAIN), 403);
    assert.equal(gw.gateway.sharedConsoles!.kept.has(PLAIN), false, 'a refused watcher opened no shared console');
    const one = await viewer({ server: PLAIN, port: plainXvnc.port });
    const two = await viewer({ server: PLAIN, port: plainXvnc.port });
    assert.equal(connectionsTo(plainXvnc.port), 2, 'a server that does not share is one backend connection per viewer');
    assert.equal(gw.gateway.sharedConsoles!.kept.has(PLAIN), false);
    for (const v of [one, two]) v.close();
  });
});
