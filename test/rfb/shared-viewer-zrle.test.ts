/**
 * The server role toward one viewer (`rfb/shared/viewer-stream.ts`) with ZRLE, whose deflate runs
 * asynchronously on the viewer's zlib stream: the updates decode (Porthole's `RfbDecoder`) to the
 * host's screen as it was when each was read, damage arriving while one is deflated waits for
 * the next (one update in flight, none lost), and a viewer that goes away or a backend that ends
 * while an update is being deflated leaves no error and pushes nothing after its end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RfbDecoder } from '../../src/rfb/framebuffer/decoder.ts';
import type { Framebuffer } from '../../src/rfb/framebuffer/types.ts';
import { ViewerStream, type ScreenHost } from '../../src/rfb/shared/viewer-stream.ts';

const W = 200;
const H = 130;

function screen(): Framebuffer & { pixels: Uint8Array } {
  const pixels = new Uint8Array(W * H * 4);
  paint(pixels, { x: 0, y: 0, width: W, height: H }, (x, y) => [(x * 7) & 255, (y * 3) & 255, (x ^ y) & 255]);
  return { width: W, height: H, pixels, name: 'zrle test' };
}

function paint(pixels: Uint8Array, r: { x: number; y: number; width: number; height: number }, f: (x: number, y: number) => [number, number, number]): void {
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) {
      const [red, green, blue] = f(x, y);
      pixels.set([red, green, blue, 255], (y * W + x) * 4);
    }
  }
}

/** A viewer stream on a fake host, past its handshake, asking for ZRLE; its output fed to a decoder. */
async function zrleViewer(fb: Framebuffer) {
  const host: ScreenHost = { screen: () => fb, cursor: () => null, input: () => {}, wants: () => {}, detach: () => {} };
  const v = new ViewerStream(host, { handshakeTimeoutMs: 5000 });
  const out: Buffer[] = [];
  let errors = 0;
  v.on('data', (d: Buffer) => out.push(d));
  v.on('error', () => errors++);
  v.write(Buffer.from('RFB 003.008\n'));
  v.write(Buffer.from([1]));
  v.write(Buffer.from([1]));
  await new Promise((r) => setImmediate(r));
  // version, security types, SecurityResult, ServerInit
  assert.equal(out.length, 4);
  let updates = 0;
  const decoder = new RfbDecoder(out[3]!, { update: () => updates++ });
  out.length = 0;
  const enc = Buffer.alloc(8);
  enc[0] = 2;
  enc.writeUInt16BE(1, 2);
  enc.writeInt32BE(16, 4);
  v.write(enc);
  const request = (incremental: boolean) => v.write(Buffer.from([3, incremental ? 1 : 0, 0, 0, 0, 0, 0, W, 0, H]));
  const drain = () => {
    for (const d of out.splice(0)) decoder.push(d);
  };
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(ok(), what);
  };
  return { v, out, decoder, request, drain, until, updates: () => updates, errors: () => errors };
}

const same = (a: Uint8Array, b: Uint8Array) => {
  for (let i = 0; i < a.length; i += 4) if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) return false;
  return true;
};

describe('shared console viewer stream, ZRLE deflated asynchronously', () => {
  it('decodes to the screen; damage while an update is deflated comes in the next one', async () => {
    const fb = screen();
    const t = await zrleViewer(fb);
    t.request(false);
    await t.until('the first update', () => t.out.length > 0);
    t.drain();
    assert.equal(t.updates(), 1);
    assert.ok(same(t.decoder.framebuffer.pixels, fb.pixels), 'the first update differs from the screen');
    // an update in flight, and the screen changes twice while it is being deflated
    paint(fb.pixels, { x: 10, y: 10, width: 70, height: 40 }, () => [250, 0, 0]);
    t.request(true);
    t.v.damage([{ x: 10, y: 10, width: 70, height: 40 }]);
    paint(fb.pixels, { x: 100, y: 60, width: 90, height: 60 }, () => [0, 0, 250]);
    t.v.damage([{ x: 100, y: 60, width: 90, height: 60 }]);
    paint(fb.pixels, { x: 0, y: 120, width: W, height: 10 }, () => [0, 250, 0]);
    t.v.damage([{ x: 0, y: 120, width: W, height: 10 }]);
    // a browser that asks again before the answer (pipelined requests): the next update waits for this one
    t.request(true);
    await t.until('the screen as it is', () => {
      t.drain();
      return same(t.decoder.framebuffer.pixels, fb.pixels);
    });
    assert.equal(t.errors(), 0);
    assert.equal(t.updates(), 3, 'one update for the first change, one for what changed while it was deflated');
    t.v.destroy();
  });

  it('pushes nothing and fails nothing when the viewer goes or the backend ends while an update is deflated', async () => {
    for (const how of ['destroyed', 'backend ended'] as const) {
      const fb = screen();
      const t = await zrleViewer(fb);
      let ended = false;
      let closed = false;
      t.v.on('end', () => (ended = true));
      t.v.on('close', () => (closed = true));
      t.request(false);
      // the update is being deflated now (its tiles were read at the request)
      if (how === 'destroyed') t.v.destroy();
      else t.v.backendEnded();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(t.out.length, 0, `${how}: an update was pushed after the end`);
      assert.equal(t.errors(), 0, `${how}: an error`);
      if (how === 'backend ended') {
        t.v.resume();
        await t.until('the stream ended', () => ended);
        t.v.destroy();
      }
      await t.until(`${how}: closed`, () => closed);
    }
  });
});
