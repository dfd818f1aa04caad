/**
 * The screenshot service (`src/proxy/screenshots.ts`) against real VNC servers, asking for each
 * encoding in turn: TigerVNC Xvnc with its root painted in known colours (a solid background by
 * `xsetroot -solid`, a smooth gradient and a red square by a tiny X11 client,
 * `support/x11-paint.ts`), and QEMU, whose own `screendump` (PPM, through its monitor) is the
 * truth. The PNG is decoded with pngjs and compared pixel by pixel (Tight with a JPEG quality
 * level: within a tolerance, and not exact, which shows JPEG was used). Also: concurrent callers
 * share one connection, a closed port is a clear 502, and a backend that hangs mid-update is a
 * 504 that leaves no socket behind (a scripted peer: no real VNC server can be stopped halfway
 * through an update on cue; a peer that accepts and never speaks covers the hang before the handshake).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.ts';
import type { Server } from '../../src/inventory/types.ts';
import { ScreenshotService, type ScreenshotOptions } from '../../src/proxy/screenshots.ts';
import type { RfbProxyOptions } from '../../src/rfb/types.ts';
import { tempDir } from '../support/gateway.ts';
import { connectionsTo, countingServer, leakMeter, openDescriptors, settled, stillOpen, type CountingServer } from '../support/leak-meter.ts';
import { haveQemu, startQemu, type Qemu } from '../support/qemu.ts';
import { BACKGROUND, compare, decodePng, GRADIENT, gradientAt, inside, painted, paintedXvnc } from '../support/painted-screen.ts';
import { RfbClient } from '../support/rfb-client.ts';
import { freePort, haveXvnc, type Xvnc } from '../support/xvnc.ts';

/** RFC 6143 §7.7 and the RFB registry. */
const ENC = { raw: 0, copyRect: 1, rre: 2, hextile: 5, tight: 7, zrle: 16 } as const;
/** Tight's JPEG quality level pseudo-encodings: -32 + level (0..9). */
const jpegQuality = (level: number) => -32 + level;

const RFB_DEFAULTS: RfbProxyOptions = { timeoutMs: 10_000, authSchemes: ['none', 'vnc'], password: null, username: null, tls: null, verifyHostname: false, allowInsecureTls: false };

const ENCODINGS: ReadonlyArray<{ name: string; list: number[]; jpeg?: boolean }> = [
  { name: 'Raw', list: [ENC.raw] },
  { name: 'CopyRect+Raw', list: [ENC.copyRect, ENC.raw] },
  { name: 'RRE', list: [ENC.rre, ENC.raw] },
  { name: 'Hextile', list: [ENC.hextile, ENC.raw] },
  { name: 'ZRLE', list: [ENC.zrle, ENC.raw] },
  { name: 'Tight', list: [ENC.tight, ENC.raw] },
  { name: 'Tight with JPEG quality 5', list: [ENC.tight, ENC.raw, jpegQuality(5)], jpeg: true },
];

function service(extra: Partial<ScreenshotOptions> = {}): ScreenshotService {
  return new ScreenshotService({ rfb: RFB_DEFAULTS, connectTimeoutMs: 5000, timeoutMs: 20_000, ...extra });
}

function serverAt(port: number, extra: Partial<Server> = {}): Server {
  return { id: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', name: 'shot', projectId: 'p', status: 'ACTIVE', vnc: { host: '127.0.0.1', port }, ...extra };
}

describe('screenshots from TigerVNC Xvnc, each encoding in turn', { skip: !haveXvnc && 'no Xvnc' }, () => {
  let xvnc: Xvnc;
  before(async () => {
    xvnc = await paintedXvnc();
  });
  after(async () => {
    await xvnc?.stop();
  });

  for (const enc of ENCODINGS) {
    it(`gives the painted pixels with ${enc.name}`, async (t) => {
      const shot = await service({ encodings: enc.list }).takeScreenshot(serverAt(xvnc.port), {});
      assert.equal(shot.source, 'connection');
      assert.deepEqual([shot.width, shot.height], [640, 480]);
      const png = decodePng(shot.png);
      assert.deepEqual([png.width, png.height], [640, 480]);
      const c = compare(png, painted);
      if (!enc.jpeg) {
        assert.equal(c.differing, 0, `${c.differing} pixels differ; first: ${c.first}`);
        return;
      }
      // JPEG is lossy: close to the painting, and not exact (so JPEG was used for the gradient)
      assert.ok(c.meanError < 3, `mean channel error ${c.meanError.toFixed(2)}`);
      assert.ok(c.maxError < 64, `largest channel error ${c.maxError}`);
      assert.ok(c.differing > 0, 'every pixel exact: the server sent no JPEG');
      // and each region keeps its colour (the edges of the square ring a little, as JPEG does)
      const i = (x: number, y: number) => [...png.data.subarray((y * 640 + x) * 4, (y * 640 + x) * 4 + 3)];
      for (const [x, y] of [[5, 5], [630, 470], [500, 350], [200, 120]] as const) {
        const e = painted(x, y);
        assert.ok(i(x, y).every((v, c) => Math.abs(v - e[c]!) <= 8), `(${x},${y}) is ${i(x, y)}, painted ${e}`);
      }
      t.diagnostic(`${enc.name}: ${c.differing} pixels differ, mean channel error ${c.meanError.toFixed(2)}, largest ${c.maxError}`);
    });
  }

  it('scales to a width, averaging: the background and the square keep their colours', async () => {
    const shot = await service().takeScreenshot(serverAt(xvnc.port), { width: 320 });
    assert.deepEqual([shot.width, shot.height], [320, 240]);
    const png = decodePng(shot.png);
    assert.deepEqual([png.width, png.height], [320, 240]);
    const at = (x: number, y: number) => [...png.data.subarray((y * 320 + x) * 4, (y * 320 + x) * 4 + 3)];
    assert.deepEqual(at(5, 5), BACKGROUND);
    assert.deepEqual(at(250, 175), [0xe0, 0x10, 0x10]);
    // a gradient pixel is the mean of the four it covers
    const [gx, gy] = [100, 60];
    const four = [gradientAt(2 * gx, 2 * gy), gradientAt(2 * gx + 1, 2 * gy), gradientAt(2 * gx, 2 * gy + 1), gradientAt(2 * gx + 1, 2 * gy + 1)];
    const mean = [0, 1, 2].map((c) => Math.round(four.reduce((s, p) => s + p[c]!, 0) / 4));
    assert.deepEqual(at(gx, gy), mean);
  });

  it('lets concurrent callers of one server share one connection', async () => {
    // a counting forwarder in front of Xvnc: how many connections the backend was asked for
    const front = await countingServer((client) => {
      const backend = connect(xvnc.port, '127.0.0.1');
      backend.on('error', () => client.destroy());
      client.on('close', () => backend.destroy());
      backend.on('close', () => client.destroy());
      client.pipe(backend).pipe(client);
    });
    try {
      const s = service();
      const shots = await Promise.all([s.takeScreenshot(serverAt(front.port), {}), s.takeScreenshot(serverAt(front.port), { width: 64 }), s.takeScreenshot(serverAt(front.port), {})]);
      assert.deepEqual(shots.map((x) => x.width), [640, 64, 640]);
      assert.equal(front.accepted(), 1, 'connections for three concurrent screenshots of one server');
      // the next one, after those finished, is a new capture (a fresh screen)
      await s.takeScreenshot(serverAt(front.port), {});
      assert.equal(front.accepted(), 2);
    } finally {
      await front.close();
    }
  });
});

describe('screenshots from QEMU, against its own screendump', { skip: !haveQemu && 'no QEMU' }, () => {
  let qemu: Qemu;
  let dir: string;
  let truth: { width: number; height: number; rgb: Buffer };
  before(async () => {
    qemu = await startQemu({ vga: true });
    dir = tempDir('porthole-qemu-shot-');
    const file = join(dir, 'screen.ppm');
    const out = await qemu.monitor(`screendump ${file}`);
    assert.equal(out, '', `screendump: ${out}`);
    truth = readPpm(readFileSync(file));
  });
  after(async () => {
    await qemu?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const enc of ENCODINGS) {
    it(`gives the screendump's pixels with ${enc.name}`, async () => {
      const shot = await service({ encodings: enc.list }).takeScreenshot(serverAt(qemu.port), {});
      const png = decodePng(shot.png);
      assert.deepEqual([png.width, png.height], [truth.width, truth.height]);
      const c = compare(png, (x, y) => [...truth.rgb.subarray((y * truth.width + x) * 3, (y * truth.width + x) * 3 + 3)]);
      // QEMU's placeholder is grey text on black: JPEG (if QEMU chose it at all) rings around glyphs
      if (enc.jpeg) assert.ok(c.meanError < 3 && c.maxError < 128, `mean ${c.meanError.toFixed(2)}, max ${c.maxError}`);
      else assert.equal(c.differing, 0, `${c.differing} pixels differ; first: ${c.first}`);
    });
  }
});

describe('a screenshot never disconnects the person at the console', { skip: !haveQemu && 'no QEMU' }, () => {
  // QEMU honours ClientInit's shared flag (share=allow-exclusive, its default): an exclusive
  // client disconnects the others; Xvnc in the tests runs -AlwaysShared, so QEMU is the witness
  let qemu: Qemu;
  before(async () => {
    qemu = await startQemu({ vga: true });
  });
  after(async () => {
    await qemu?.stop();
  });

  it('asks for a shared session: a viewer already connected to QEMU stays connected', async () => {
    const viewer = await RfbClient.overTcp('127.0.0.1', qemu.port);
    try {
      await viewer.handshake({ shared: true, timeoutMs: 10_000 });
      await viewer.requestFramebuffer(undefined, 10_000);
      const shot = await service().takeScreenshot(serverAt(qemu.port), {});
      assert.equal(shot.width, viewer.width);
      // still there: it gets a whole screen again
      const again = await viewer.requestFramebuffer(undefined, 10_000);
      assert.equal(again.width, shot.width);
    } finally {
      viewer.close();
    }
  });
});

/** A binary PPM (P6, maxval 255), as QEMU's `screendump` writes it. */
function readPpm(b: Buffer): { width: number; height: number; rgb: Buffer } {
  const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(b.subarray(0, 64).toString('latin1'));
  if (!m) throw new Error(`not a P6 PPM: ${JSON.stringify(b.subarray(0, 20).toString('latin1'))}`);
  const width = Number(m[1]);
  const height = Number(m[2]);
  return { width, height, rgb: b.subarray(m[0].length, m[0].length + width * height * 3) };
}

describe('screenshot failures', () => {
  it('says clearly that a closed port cannot be reached: 502, no host or port in its words', async () => {
    const port = await freePort();
    await assert.rejects(service().takeScreenshot(serverAt(port), {}), (e: unknown) => {
      assert.ok(isGatewayError(e));
      assert.equal(e.status, 502);
      assert.equal(e.code, 'BACKEND_UNREACHABLE');
      assert.match(e.clientMessage, /^No screenshot of server aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee: the console is not reachable$/);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
  });

  it('is a 409 for a server with no VNC console', async () => {
    await assert.rejects(service().takeScreenshot(serverAt(1, { vnc: null, serial: { host: '127.0.0.1', port: 1 } }), {}), (e: unknown) => isGatewayError(e) && e.status === 409 && /no VNC console/.test(e.clientMessage));
  });

  describe('a backend that hangs mid-update', () => {
    let hanging: CountingServer;
    before(async () => {
      hanging = await countingServer(hangMidUpdate);
    });
    after(async () => {
      await hanging?.close();
    });

    it('is a 504 within screenshot_timeout and leaves no descriptor or connection behind', async () => {
      const meter = leakMeter({ descriptors: () => openDescriptors(), 'connections to the backend': () => connectionsTo(hanging.port), 'backend sockets open': () => hanging.open() });
      const baseline = await meter.read();
      const s = service({ timeoutMs: 1500 });
      for (let i = 0; i < 5; i++) {
        await assert.rejects(s.takeScreenshot(serverAt(hanging.port), {}), (e: unknown) => {
          assert.ok(isGatewayError(e), String(e));
          assert.equal(e.status, 504, e.message);
          assert.match(e.clientMessage, /did not send its screen within 1\.5 s/);
          return true;
        });
      }
      assert.equal(hanging.accepted(), 5);
      // the peer saw its half of the update requested before it hung: this was mid-update
      assert.ok(updateRequests >= 5, `update requests seen: ${updateRequests}`);
      await settled(meter, baseline, 5000);
      assert.equal(stillOpen(hanging.sockets), 0);
    });
  });

  it('is a 504 for a backend that accepts and never speaks, and closes its connection', async () => {
    const silent = await countingServer(() => {});
    try {
      await assert.rejects(service({ timeoutMs: 1000 }).takeScreenshot(serverAt(silent.port), {}), (e: unknown) => isGatewayError(e) && e.status === 504);
      await settled(leakMeter({ 'backend sockets open': () => silent.open() }), { 'backend sockets open': 0 }, 5000);
    } finally {
      await silent.close();
    }
  });
});

let updateRequests = 0;

/** A VNC server that does the handshake (3.8, None, ServerInit 640x480) and sends half a Raw rectangle when asked for an update, then nothing. */
function hangMidUpdate(socket: Socket): void {
  let stage = 0;
  let buffered = Buffer.alloc(0);
  socket.write('RFB 003.008\n');
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    for (;;) {
      if (stage === 0 && buffered.length >= 12) {
        buffered = buffered.subarray(12);
        socket.write(Buffer.from([1, 1]));
        stage = 1;
      } else if (stage === 1 && buffered.length >= 1) {
        buffered = buffered.subarray(1);
        socket.write(Buffer.from([0, 0, 0, 0]));
        stage = 2;
      } else if (stage === 2 && buffered.length >= 1) {
        buffered = buffered.subarray(1);
        const init = Buffer.alloc(24 + 4);
        init.writeUInt16BE(640, 0);
        init.writeUInt16BE(480, 2);
        Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]).copy(init, 4);
        init.writeUInt32BE(4, 20);
        init.write('hang', 24, 'latin1');
        socket.write(init);
        stage = 3;
      } else if (stage === 3 && buffered.length >= 1) {
        // client messages: SetPixelFormat (20), SetEncodings (4 + 4n), FramebufferUpdateRequest (10)
        const type = buffered[0]!;
        const size = type === 0 ? 20 : type === 2 ? (buffered.length >= 4 ? 4 + 4 * buffered.readUInt16BE(2) : Infinity) : type === 3 ? 10 : type === 4 ? 8 : type === 5 ? 6 : 1;
        if (buffered.length < size) return;
        buffered = buffered.subarray(size);
        if (type === 3) {
          updateRequests++;
          // FramebufferUpdate, one Raw rectangle of the whole screen, and only a part of its pixels
          const rect = Buffer.alloc(12);
          rect.writeUInt16BE(640, 4);
          rect.writeUInt16BE(480, 6);
          rect.writeInt32BE(ENC.raw, 8);
          socket.write(Buffer.concat([Buffer.from([0, 0, 0, 1]), rect, Buffer.alloc(640 * 4 * 100)]));
          stage = 4;
        }
      } else return;
    }
  });
}
