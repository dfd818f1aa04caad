/**
 * @module test/demo/server
 * The built-in demo VNC server, driven over real sockets by the test RFB client and by real
 * viewers when installed (noVNC in Chromium, vncsnapshot): handshakes per protocol version, the
 * picture in several pixel formats, input reaching the server, misbehaving clients closed one at
 * a time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { WebSocket, WebSocketServer } from 'ws';
import { DEMO_MARKER_RGB, startDemoServer, type DemoServer } from '../../src/demo/server.ts';
import { RfbClient, type PixelFormat } from '../support/rfb-client.ts';

const VNCSNAPSHOT = '/usr/bin/vncsnapshot';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The package exports only `core/rfb.js` (not `package.json`), so walk up from it. */
const NOVNC_DIR = dirname(dirname(createRequire(import.meta.url).resolve('@novnc/novnc')));

interface Listening { port: number; close(): Promise<void> }

function portOf(s: net.Server | WebSocketServer): number {
  const address = s.address();
  assert.ok(address && typeof address === 'object');
  return address.port;
}

/** A bare WebSocket-to-TCP relay to the demo server: the gateway's job, minus everything else. */
async function startWsBridge(target: DemoServer): Promise<Listening> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    const tcp = net.connect(target.port, target.host);
    tcp.on('data', (b) => ws.send(b));
    tcp.on('close', () => ws.close());
    tcp.on('error', () => tcp.destroy());
    ws.on('message', (b: Buffer) => tcp.write(b));
    ws.on('close', () => tcp.destroy());
  });
  return {
    port: portOf(wss),
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

/** Serves noVNC's ES modules and a page that connects to `wsPort` at once. */
async function startNoVncPage(wsPort: number): Promise<Listening> {
  const page = `<!doctype html><div id="screen" style="width:800px;height:600px"></div>
<script type="module">
import RFB from '/novnc/core/rfb.js';
window.rfb = new RFB(document.getElementById('screen'), 'ws://127.0.0.1:${wsPort}/');
</script>`;
  const http = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      return;
    }
    const file = join(NOVNC_DIR, path.slice('/novnc/'.length));
    if (!path.startsWith('/novnc/') || !file.startsWith(NOVNC_DIR + '/') || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then((body) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
      () => res.writeHead(500).end());
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    port: portOf(http),
    close: async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

type Rgb = readonly [number, number, number];

/** Rounding a channel to `max` levels and back loses at most half a level. */
function assertColourNear(actual: Rgb, expected: Rgb, maxes: Rgb): void {
  for (const i of [0, 1, 2] as const) {
    const tolerance = Math.ceil(255 / maxes[i] / 2);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance,
      `channel ${i}: got ${actual[i]}, expected ${expected[i]} ± ${tolerance} (pixel ${actual}, want ${expected})`);
  }
}

describe('demo server', () => {
  let server: DemoServer;
  const clients: RfbClient[] = [];

  async function connect(): Promise<RfbClient> {
    const client = await RfbClient.overTcp(server.host, server.port);
    clients.push(client);
    return client;
  }

  /** The reason of the next client the server closes for misbehaving. */
  function nextClientError(timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (reason: string): void => {
        clearTimeout(timer);
        server.off('client-error', onError);
        resolve(reason);
      };
      const timer = setTimeout(() => {
        server.off('client-error', onError);
        reject(new Error(`no client-error within ${timeoutMs} ms`));
      }, timeoutMs);
      server.on('client-error', onError);
    });
  }

  async function connected(): Promise<RfbClient> {
    const client = await connect();
    await client.handshake();
    return client;
  }

  before(async () => {
    server = await startDemoServer();
  });

  // Closed after each test, so no half-done handshake times out later inside another test.
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  after(async () => {
    await server.close();
  });

  describe('handshake', () => {
    it('announces RFB 003.008', async () => {
      const client = await connect();
      assert.equal(await client.readVersion(), 'RFB 003.008\n');
    });

    it('completes a 3.8 handshake with security type None and a SecurityResult', async () => {
      const info = await (await connect()).handshake({ version: '3.8' });
      assert.deepEqual(info, {
        version: 'RFB 003.008\n', securityTypes: [1], width: 800, height: 600, name: 'Porthole demo',
      });
    });

    it('completes a 3.7 handshake without a SecurityResult', async () => {
      const info = await (await connect()).handshake({ version: '3.7' });
      assert.deepEqual(info.securityTypes, [1]);
      assert.equal(info.name, 'Porthole demo');
    });

    it('completes a 3.3 handshake with the security type as a U32', async () => {
      const info = await (await connect()).handshake({ version: '3.3' });
      assert.deepEqual(info.securityTypes, [1]);
      assert.equal(info.width, 800);
      assert.equal(info.name, 'Porthole demo');
    });

    it('closes a client that answers with something other than a ProtocolVersion', async () => {
      const client = await connect();
      await client.readVersion();
      const reason = nextClientError();
      client.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
      await client.waitForClose();
      assert.match(await reason, /ProtocolVersion/);
    });

    it('drops a client that does not finish the handshake in time', async () => {
      const slow = await startDemoServer({ handshakeTimeoutMs: 200 });
      const client = await RfbClient.overTcp(slow.host, slow.port);
      try {
        await client.readVersion();
        await client.waitForClose(2000);
      } finally {
        client.close();
        await slow.close();
      }
    });
  });

  describe('picture', () => {
    it('shows the marker colour at (10,10) to a 32-bpp client', async () => {
      const fb = await (await connected()).requestFramebuffer();
      assert.equal(fb.width, 800);
      assert.equal(fb.height, 600);
      assert.deepEqual(fb.pixel(10, 10), [...DEMO_MARKER_RGB]);
      assert.deepEqual(fb.pixel(63, 63), [...DEMO_MARKER_RGB]);
    });

    const formats: Array<[string, PixelFormat]> = [
      ['16-bpp RGB565 little-endian', { bitsPerPixel: 16, depth: 16, bigEndian: false,
        redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 }],
      ['16-bpp BGR555 big-endian', { bitsPerPixel: 16, depth: 15, bigEndian: true,
        redMax: 31, greenMax: 31, blueMax: 31, redShift: 0, greenShift: 5, blueShift: 10 }],
      ['8-bpp BGR233', { bitsPerPixel: 8, depth: 8, bigEndian: false,
        redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 }],
      ['32-bpp big-endian with shifts 0/8/16', { bitsPerPixel: 32, depth: 24, bigEndian: true,
        redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 }],
    ];
    for (const [label, format] of formats) {
      it(`converts to a ${label} pixel format`, async () => {
        const fb = await (await connected()).requestFramebuffer(format);
        const maxes: Rgb = [format.redMax, format.greenMax, format.blueMax];
        assertColourNear(fb.pixel(10, 10), DEMO_MARKER_RGB, maxes);
        // Colour bars start at y 80: the first is white, the sixth red.
        assertColourNear(fb.pixel(10, 120), [255, 255, 255], maxes);
        assertColourNear(fb.pixel(5 * 100 + 10, 120), [255, 0, 0], maxes);
      });
    }

    it('closes a client that asks for a colour-map pixel format', async () => {
      const client = await connected();
      const msg = Buffer.alloc(20);
      msg[4] = 8; msg[5] = 8; msg[7] = 0; // true-colour flag off
      const reason = nextClientError();
      client.send(msg);
      await client.waitForClose();
      assert.match(await reason, /colour-map/);
    });

    it('holds an incremental request until that area changes, then sends it', async () => {
      const client = await connected();
      await client.requestFramebuffer();
      const area = { x: 300, y: 450, w: 100, h: 100 };
      client.updateRequest(true, area);
      // The clock ticks elsewhere meanwhile; nothing in this area changes, so nothing is sent.
      await assert.rejects(client.read(1, 'an early update', 1300), /timed out/);
      client.pointer(350, 500);
      const rects = await client.readUpdate(2000);
      assert.equal(rects.length, 1);
      const [r] = rects;
      assert.ok(r);
      assert.ok(r.x <= 350 && r.x + r.w > 350 && r.y <= 500 && r.y + r.h > 500, JSON.stringify(r));
      assert.ok(r.x >= area.x && r.y >= area.y && r.x + r.w <= area.x + area.w && r.y + r.h <= area.y + area.h);
    });

    it('redraws the clock every second', async () => {
      const client = await connected();
      await client.requestFramebuffer();
      client.updateRequest(true);
      const rects = await client.readUpdate(2500);
      assert.ok(rects.length > 0);
    });

    it('serves many clients at once', async () => {
      const all = await Promise.all(Array.from({ length: 8 }, () => connected()));
      const fbs = await Promise.all(all.map((c) => c.requestFramebuffer()));
      for (const fb of fbs) assert.deepEqual(fb.pixel(10, 10), [...DEMO_MARKER_RGB]);
    });
  });

  describe('input', () => {
    it('reports key events to the server', async () => {
      const client = await connected();
      const seen: Array<[number, boolean]> = [];
      const onKey = (keysym: number, down: boolean): void => { seen.push([keysym, down]); };
      server.on('key', onKey);
      try {
        client.key(0x61);
        await client.requestFramebuffer(); // a round trip: the key events were handled before it
        assert.deepEqual(seen, [[0x61, true], [0x61, false]]);
        assert.equal(server.lastKeysym, 0x61);
      } finally {
        server.off('key', onKey);
      }
    });

    it('reports pointer events to the server', async () => {
      const client = await connected();
      const seen: Array<[number, number, number]> = [];
      const onPointer = (x: number, y: number, buttons: number): void => { seen.push([x, y, buttons]); };
      server.on('pointer', onPointer);
      try {
        client.pointer(400, 500, 1);
        client.pointer(401, 501, 0);
        await client.requestFramebuffer();
        assert.deepEqual(seen, [[400, 500, 1], [401, 501, 0]]);
      } finally {
        server.off('pointer', onPointer);
      }
    });
  });

  describe('misbehaving clients', () => {
    it('closes only the client that sends an unknown message type', async () => {
      const bad = await connected();
      const good = await connected();
      await good.requestFramebuffer();
      good.updateRequest(true);
      const reason = nextClientError();
      bad.send([0xff, 0, 0, 0]);
      await bad.waitForClose();
      assert.equal(await reason, 'unknown message type 255');
      const rects = await good.readUpdate(2500); // the next clock tick
      assert.ok(rects.length > 0);
      const fb = await good.requestFramebuffer();
      assert.deepEqual(fb.pixel(10, 10), [...DEMO_MARKER_RGB]);
    });

    it('accepts a short ClientCutText', async () => {
      const client = await connected();
      const text = Buffer.from('hello');
      client.send(Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(text.length), text]));
      const fb = await client.requestFramebuffer();
      assert.deepEqual(fb.pixel(10, 10), [...DEMO_MARKER_RGB]);
    });

    it('closes a client whose ClientCutText is longer than 1 MiB', async () => {
      const client = await connected();
      const reason = nextClientError();
      // Only the header: the server must refuse on the length, before any text arrives.
      client.send(Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(1024 * 1024 + 1)]));
      await client.waitForClose();
      assert.equal(await reason, 'ClientCutText of 1048577 bytes');
    });
  });

  describe('transports', () => {
    it('works through a WebSocket-to-TCP bridge', async () => {
      const bridge = await startWsBridge(server);
      const client = RfbClient.overWebSocket(new WebSocket(`ws://127.0.0.1:${bridge.port}/`));
      try {
        await client.handshake();
        const fb = await client.requestFramebuffer();
        assert.deepEqual(fb.pixel(10, 10), [...DEMO_MARKER_RGB]);
      } finally {
        client.close();
        await bridge.close();
      }
    });

    it('shows a live console in noVNC in Chromium, and its keys reach the server',
      { skip: !existsSync(CHROMIUM) && `${CHROMIUM} not installed`, timeout: 30_000 }, async () => {
        const bridge = await startWsBridge(server);
        const web = await startNoVncPage(bridge.port);
        const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
        const keys: number[] = [];
        const onKey = (keysym: number, down: boolean): void => { if (down) keys.push(keysym); };
        server.on('key', onKey);
        try {
          const page = await browser.newPage();
          await page.goto(`http://127.0.0.1:${web.port}/`);
          const marker = await page.waitForFunction(() => {
            const canvas = document.querySelector('#screen canvas');
            if (!(canvas instanceof HTMLCanvasElement) || canvas.width < 64) return null;
            const d = canvas.getContext('2d')?.getImageData(10, 10, 1, 1).data;
            return d && d[0] !== 0 ? [d[0], d[1], d[2]] : null;
          }, undefined, { timeout: 10_000 });
          assert.deepEqual(await marker.jsonValue(), [...DEMO_MARKER_RGB]);
          // noVNC keeps one incremental request outstanding; the clock must still reach the canvas.
          const before = await page.evaluate(() => document.querySelector('canvas')?.toDataURL());
          await page.waitForFunction((was) => document.querySelector('canvas')?.toDataURL() !== was, before,
            { timeout: 5000 });
          await page.click('#screen canvas');
          await page.keyboard.press('q');
          await waitFor(() => keys.includes(0x71), 5000, 'the q key to reach the server');
        } finally {
          server.off('key', onKey);
          await browser.close();
          await web.close();
          await bridge.close();
        }
      });

    it('serves a real viewer (vncsnapshot)', { skip: !existsSync(VNCSNAPSHOT) && `${VNCSNAPSHOT} not installed` },
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'porthole-demo-'));
        try {
          const out = join(dir, 'shot.jpg');
          await new Promise<void>((resolve, reject) => {
            execFile(VNCSNAPSHOT, ['-quiet', `${server.host}::${server.port}`, out], { timeout: 15_000 },
              (err) => (err ? reject(err) : resolve()));
          });
          assert.ok((await stat(out)).size > 0);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
  });
});
