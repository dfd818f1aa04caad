/**
 * Late joiners of a shared console in pixel formats other than the server's, through ZRLE, against
 * a real TigerVNC Xvnc through a real gateway with `[porthole] shared_consoles`: a viewer that
 * joins while another watches asks for RGB565, BGR233 (8 bits), big-endian RGB565, big-endian
 * BGR888 or 32 bits with the colours in the top bytes (ZRLE's 3-byte CPIXEL from the low and
 * from the high bytes of the value), then ZRLE only, then the whole screen; its
 * stream, decoded by Porthole's own RFB decoder (`RfbDecoder`) in that format, equals a direct
 * connection's screen quantised to the format, pixel for pixel, and the backend's cursor shape
 * comes with it in that format; a change painted afterwards comes
 * as an incremental update on the same zlib stream; a viewer that switches format mid-stream (the
 * zlib stream goes on) gets the whole screen right in the new one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { encodePixelFormat } from '../../src/rfb/framebuffer/pixel-format.ts';
import { RfbDecoder } from '../../src/rfb/framebuffer/decoder.ts';
import type { PixelFormat } from '../../src/rfb/framebuffer/types.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { RfbClient, RGB888_LE } from '../support/rfb-client.ts';
import { paintRoot } from '../support/x11-paint.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER = '6f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a10';
const W = 640;
const H = 480;
/** Where the watcher leaves X's pointer: a direct connection (no Cursor pseudo-encoding) has the cursor drawn in its pixels around it, the shared console's viewers get it as a shape. */
const POINTER = { x: 600, y: 440 };

const RGB565: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: false, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
const BGR233: PixelFormat = { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };
const RGB565_BE: PixelFormat = { ...RGB565, bigEndian: true };
const BGR888_BE: PixelFormat = { bitsPerPixel: 32, depth: 24, bigEndian: true, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 };
/** The colours in the top three bytes of the value: ZRLE's CPIXEL is those three bytes. */
const RGBX_HIGH: PixelFormat = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 24, greenShift: 16, blueShift: 8 };

/** Many colours (ZRLE's raw and RLE tiles), flat areas (solid and palette tiles), edges off the 64-pixel grid. */
const picture = (x: number, y: number): [number, number, number] => {
  if (x > 400 && y > 300) return [200, 30, 90];
  if (x < 100 && y < 90) return (x >> 3) % 2 === (y >> 3) % 2 ? [250, 250, 250] : [5, 5, 5];
  if (y > 420) return [(x * 37) & 255, 120, (x * 11) & 255];
  return [(x * 7) & 255, (y * 5) & 255, ((x + y) * 3) & 255];
};

const quantise = (c: number, max: number) => Math.round((c * max) / 255);

/** A viewer over a raw WebSocket that speaks its own pixel format and ZRLE, decoded by Porthole's RfbDecoder. */
class FormatViewer {
  private readonly messages: Buffer[] = [];
  private wake: (() => void) | undefined;
  decoder!: RfbDecoder;
  updates = 0;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.messages.push(d);
      this.wake?.();
    });
  }

  async next(ms = 20_000): Promise<Buffer> {
    const until = Date.now() + ms;
    while (this.messages.length === 0) {
      if (Date.now() > until) throw new Error('no message from the proxy');
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 200);
      });
    }
    return this.messages.shift()!;
  }

  async handshake(): Promise<void> {
    await new Promise((r) => this.ws.once('open', r));
    assert.equal((await this.next()).toString('latin1'), 'RFB 003.008\n');
    this.ws.send(Buffer.from('RFB 003.008\n'));
    assert.deepEqual([...(await this.next())], [1, 1]);
    this.ws.send(Buffer.from([1]));
    assert.deepEqual([...(await this.next())], [0, 0, 0, 0]);
    this.ws.send(Buffer.from([1]));
    this.decoder = new RfbDecoder(await this.next(), { update: () => this.updates++ });
  }

  /** SetPixelFormat, told to the decoder first: what comes after it is in that format. */
  setFormat(pf: PixelFormat): void {
    const m = Buffer.alloc(20);
    encodePixelFormat(pf).copy(m, 4);
    this.decoder.setPixelFormat(m);
    this.ws.send(m);
  }

  /** SetEncodings: ZRLE and the Cursor pseudo-encoding, nothing else. */
  zrleOnly(): void {
    const m = Buffer.alloc(12);
    m[0] = 2;
    m.writeUInt16BE(2, 2);
    m.writeInt32BE(16, 4);
    m.writeInt32BE(-239, 8);
    this.ws.send(m);
  }

  request(incremental: boolean): void {
    const m = Buffer.from([3, incremental ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    m.writeUInt16BE(W, 6);
    m.writeUInt16BE(H, 8);
    this.ws.send(m);
  }

  /** Feeds the decoder until one more update has ended. */
  async update(): Promise<void> {
    const had = this.updates;
    while (this.updates === had) this.decoder.push(await this.next());
  }
}

describe('shared consoles: late joiners in other pixel formats through ZRLE (Xvnc)', { skip: !haveXvnc && 'needs Xvnc', timeout: 240_000 }, () => {
  let xvnc: Xvnc;
  let gw: TestGateway;
  let watcher: RfbClient;
  const sockets: WebSocket[] = [];

  before(async () => {
    xvnc = await startXvnc({ colour: '#000000' });
    await paintRoot(xvnc.display, { x: 0, y: 0, width: W, height: H }, picture);
    // a cursor of the X cursor font on the root window (Xvnc's own is empty): the viewers get its shape
    const cursor = spawnSync('xsetroot', ['-cursor_name', 'left_ptr'], { env: { ...process.env, DISPLAY: xvnc.display }, encoding: 'utf8' });
    assert.equal(cursor.status, 0, `xsetroot -cursor_name: ${cursor.stderr}`);
    gw = await startGateway({ 'porthole.shared_consoles': 'true' });
    await gw.gateway.stores.inventory.put({ id: SERVER, name: 'formats', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    // someone already watches: the formats' viewers are late joiners of a console that is up
    watcher = RfbClient.overWebSocket(await ws());
    await watcher.handshake({ timeoutMs: 20_000 });
    await watcher.requestFramebuffer(RGB888_LE, 20_000);
    // the watcher is in control: its pointer moving makes X show the root cursor, which Xvnc then sends
    await eventually('a cursor shape at the shared console', () => {
      watcher.pointer(POINTER.x, POINTER.y);
      return (gw.gateway.sharedConsoles!.kept.get(SERVER)!.cursor()?.width ?? 0) > 0;
    }, 20_000);
  });

  after(async () => {
    for (const s of sockets) s.terminate();
    watcher?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  async function ws(): Promise<WebSocket> {
    const { token } = await gw.gateway.stores.tokens.create({
      consoleType: 'novnc', host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER,
      accessUrlBase: gw.gateway.novnc!.baseUrl, ttl: 600, internalAccessPath: null,
    });
    const s = new WebSocket(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`, ['binary']);
    s.on('error', () => {});
    sockets.push(s);
    return s;
  }

  /** The screen as a direct connection to Xvnc sees it (RGB, 3 bytes a pixel). */
  async function direct(): Promise<Uint8Array> {
    const d = await RfbClient.overTcp('127.0.0.1', xvnc.port);
    await d.handshake();
    await d.requestFramebuffer(RGB888_LE, 20_000);
    const rgb = Uint8Array.from(d.rgb);
    d.close();
    return rgb;
  }

  /** Pixels where the viewer's decoded screen is not the direct one quantised to `pf`. */
  function differences(v: FormatViewer, pf: PixelFormat, want: Uint8Array): string[] {
    const fb = v.decoder.framebuffer;
    const out: string[] = [];
    const max = [pf.redMax, pf.greenMax, pf.blueMax];
    for (let i = 0; i < W * H && out.length < 5; i++) {
      if (Math.abs((i % W) - POINTER.x) < 40 && Math.abs(Math.floor(i / W) - POINTER.y) < 40) continue;
      for (let c = 0; c < 3; c++) {
        if (quantise(fb.pixels[i * 4 + c]!, max[c]!) !== quantise(want[i * 3 + c]!, max[c]!)) {
          out.push(`(${i % W},${Math.floor(i / W)}): ${[...fb.pixels.subarray(i * 4, i * 4 + 3)]} for ${[...want.subarray(i * 3, i * 3 + 3)]}`);
          break;
        }
      }
    }
    return out;
  }

  for (const [name, pf] of [['RGB565', RGB565], ['BGR233', BGR233], ['big-endian RGB565', RGB565_BE], ['big-endian BGR888 (3-byte CPIXEL: its last three bytes)', BGR888_BE], ['RGB in the high bytes (3-byte CPIXEL: the top three bytes)', RGBX_HIGH]] as const) {
    it(`gives a late joiner asking for ${name} and ZRLE the current screen, then a change, in its format`, async () => {
      const want = await direct();
      const v = new FormatViewer(await ws());
      await v.handshake();
      v.setFormat(pf);
      v.zrleOnly();
      v.request(false);
      await v.update();
      assert.deepEqual(differences(v, pf, want), [], `${name}: the late joiner's screen differs from the direct one`);
      // the backend's cursor came with it, in its format: the shown pixels equal the hub's, quantised
      const shape = gw.gateway.sharedConsoles!.kept.get(SERVER)!.cursor();
      assert.ok(shape, 'Xvnc gave the shared console a cursor');
      const got = v.decoder.cursor;
      assert.ok(got, `${name}: no cursor came with the first update`);
      assert.deepEqual([got.width, got.height, got.hotX, got.hotY], [shape.width, shape.height, shape.hotX, shape.hotY]);
      const max = [pf.redMax, pf.greenMax, pf.blueMax];
      for (let i = 0; i < shape.width * shape.height; i++) {
        const shown: boolean = shape.rgba[i * 4 + 3]! >= 128;
        assert.equal(got.rgba[i * 4 + 3]! >= 128, shown, `${name}: cursor mask at ${i}`);
        if (shown) for (let c = 0; c < 3; c++) assert.equal(quantise(got.rgba[i * 4 + c]!, max[c]!), quantise(shape.rgba[i * 4 + c]!, max[c]!), `${name}: cursor pixel ${i}`);
      }
      // a change while it watches: an incremental update on the same zlib stream
      const patch = { x: 70, y: 50, width: 150, height: 99 };
      await paintRoot(xvnc.display, patch, (x, y) => [(x * 3) & 255, 255 - ((y * 2) & 255), 77]);
      await eventually(`${name}: the change seen`, async () => {
        v.request(true);
        await v.update();
        const fb = v.decoder.framebuffer;
        const i = (100 * W + 100) * 4;
        return quantise(fb.pixels[i + 2]!, pf.blueMax) === quantise(77, pf.blueMax) && quantise(fb.pixels[i + 1]!, pf.greenMax) === quantise(255 - 200, pf.greenMax);
      }, 20_000);
      assert.deepEqual(differences(v, pf, await direct()), [], `${name}: the screen after the change differs from the direct one`);
      // back as it was for the next case
      await paintRoot(xvnc.display, patch, picture);
      v.ws.close();
    });
  }

  it('serves a viewer that switches pixel format mid-stream, the zlib stream going on', async () => {
    const want = await direct();
    const v = new FormatViewer(await ws());
    await v.handshake();
    v.setFormat(RGB565);
    v.zrleOnly();
    v.request(false);
    await v.update();
    assert.deepEqual(differences(v, RGB565, want), []);
    v.setFormat(BGR233);
    v.request(false);
    await v.update();
    assert.deepEqual(differences(v, BGR233, want), [], 'after switching to BGR233');
    v.setFormat(BGR888_BE);
    v.request(false);
    await v.update();
    assert.deepEqual(differences(v, BGR888_BE, want), [], 'after switching to big-endian BGR888');
    v.ws.close();
  });
});
