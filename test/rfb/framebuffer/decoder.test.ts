/**
 * The RFB decoder on synthetic streams: Raw in Porthole's own format (the fast path) and in other
 * true-colour formats, CopyRect (overlapping), DesktopSize, LastRect, the non-update messages,
 * the same framebuffer whatever the chunking (byte by byte), and garbage as a GatewayError.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../../src/errors.ts';
import { RfbDecoder } from '../../../src/rfb/framebuffer/decoder.ts';
import { CLIENT_PIXEL_FORMAT } from '../../../src/rfb/framebuffer/pixel-format.ts';
import { UNDECODABLE_CLIENT_MESSAGE } from '../../../src/rfb/framebuffer/screen.ts';
import type { PixelFormat, Rect } from '../../../src/rfb/framebuffer/types.ts';
import { at, byteByByte, pixel, rect, serverInit, update } from './messages.ts';

const RGB565_BE: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
const BGR888_BE: PixelFormat = { bitsPerPixel: 32, depth: 24, bigEndian: true, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 };
const RGB332: PixelFormat = { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };

function rawBody(pf: PixelFormat, w: number, h: number, colour: (x: number, y: number) => [number, number, number]): Buffer {
  const parts: Buffer[] = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) parts.push(pixel(pf, ...colour(x, y)));
  return Buffer.concat(parts);
}

const gradient = (x: number, y: number): [number, number, number] => [(x * 37) & 255, (y * 53) & 255, (x * y) & 255];

describe('RfbDecoder', () => {
  it('decodes Raw in its own format, with the update event naming the rectangle', () => {
    const updates: Rect[][] = [];
    const d = new RfbDecoder(serverInit(8, 6, CLIENT_PIXEL_FORMAT), { update: (dmg) => updates.push([...dmg]) });
    d.push(update([rect(2, 1, 4, 3, 0, rawBody(CLIENT_PIXEL_FORMAT, 4, 3, gradient))]));
    assert.deepEqual(updates, [[{ x: 2, y: 1, width: 4, height: 3 }]]);
    assert.deepEqual(at(d.framebuffer, 2, 1), [...gradient(0, 0), 255]);
    assert.deepEqual(at(d.framebuffer, 5, 3), [...gradient(3, 2), 255]);
    assert.deepEqual(at(d.framebuffer, 0, 0), [0, 0, 0, 255]);
    assert.equal(d.atMessageBoundary, true);
  });

  for (const [name, pf] of [['16-bit big-endian 565', RGB565_BE], ['32-bit big-endian BGR', BGR888_BE], ['8-bit 332', RGB332]] as const) {
    it(`converts Raw from ${name} to RGBA`, () => {
      const d = new RfbDecoder(serverInit(5, 4, pf));
      d.push(update([rect(0, 0, 5, 4, 0, rawBody(pf, 5, 4, gradient))]));
      for (const [x, y] of [[0, 0], [4, 3], [2, 1]] as const) {
        const want = gradient(x, y);
        const got = at(d.framebuffer, x, y);
        for (let c = 0; c < 3; c++) {
          const max = [pf.redMax, pf.greenMax, pf.blueMax][c]!;
          assert.ok(Math.abs(got[c]! - want[c]!) <= Math.ceil(255 / max / 2), `${name} ${x},${y} channel ${c}: ${got} vs ${want}`);
        }
      }
    });
  }

  it('decodes a colour-map 8-bit format through SetColourMapEntries', () => {
    const pf: PixelFormat = { ...RGB332, trueColour: false };
    const d = new RfbDecoder(serverInit(2, 1, pf));
    const entries = Buffer.alloc(6 + 12);
    entries[0] = 1;
    entries.writeUInt16BE(7, 2);
    entries.writeUInt16BE(2, 4);
    Buffer.from([0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x10, 0x00, 0x20, 0x00, 0x30, 0x00]).copy(entries, 6);
    d.push(Buffer.concat([entries, update([rect(0, 0, 2, 1, 0, Buffer.from([7, 8]))])]));
    assert.deepEqual(at(d.framebuffer, 0, 0), [255, 128, 0, 255]);
    assert.deepEqual(at(d.framebuffer, 1, 0), [0x10, 0x20, 0x30, 255]);
  });

  it('uses the format of SetPixelFormat for updates after it', () => {
    const d = new RfbDecoder(serverInit(2, 1, BGR888_BE));
    d.setPixelFormat(Buffer.concat([Buffer.alloc(4), serverInit(0, 0, RGB565_BE).subarray(4, 20)]));
    d.push(update([rect(0, 0, 2, 1, 0, rawBody(RGB565_BE, 2, 1, () => [255, 0, 255]))]));
    assert.deepEqual(at(d.framebuffer, 1, 0), [255, 0, 255, 255]);
  });

  it('copies overlapping CopyRects as the screen was before', () => {
    const d = new RfbDecoder(serverInit(6, 6, CLIENT_PIXEL_FORMAT));
    d.push(update([rect(0, 0, 6, 6, 0, rawBody(CLIENT_PIXEL_FORMAT, 6, 6, gradient))]));
    const src = Buffer.alloc(4);
    src.writeUInt16BE(0, 0);
    src.writeUInt16BE(0, 2);
    d.push(update([rect(1, 1, 4, 4, 1, src)]));
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) assert.deepEqual(at(d.framebuffer, x + 1, y + 1), [...gradient(x, y), 255]);
    src.writeUInt16BE(2, 0);
    src.writeUInt16BE(2, 2);
    const before = Buffer.from(d.framebuffer.pixels);
    d.push(update([rect(0, 0, 4, 4, 1, src)]));
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) assert.deepEqual(at(d.framebuffer, x, y), at({ width: 6, pixels: before }, x + 2, y + 2));
  });

  it('resizes on DesktopSize (keeping what both sizes share) and on ExtendedDesktopSize', () => {
    const sizes: string[] = [];
    const damage: Rect[][] = [];
    const d = new RfbDecoder(serverInit(4, 4, CLIENT_PIXEL_FORMAT), { resize: (w, h) => sizes.push(`${w}x${h}`), update: (r) => damage.push([...r]) });
    d.push(update([rect(0, 0, 4, 4, 0, rawBody(CLIENT_PIXEL_FORMAT, 4, 4, () => [9, 9, 9]))]));
    d.push(update([rect(0, 0, 6, 2, -223)]));
    assert.deepEqual([d.framebuffer.width, d.framebuffer.height], [6, 2]);
    assert.deepEqual(at(d.framebuffer, 3, 1), [9, 9, 9, 255]);
    assert.deepEqual(at(d.framebuffer, 5, 1), [0, 0, 0, 255]);
    assert.deepEqual(damage[1], [{ x: 0, y: 0, width: 6, height: 2 }]);
    const screens = Buffer.alloc(4 + 16);
    screens[0] = 1;
    d.push(update([rect(0, 0, 3, 3, -308, screens)]));
    // a refusal of the client's own request (reason 1, status 3) leaves the size
    d.push(update([rect(1, 3, 9, 9, -308, screens)]));
    assert.deepEqual(sizes, ['6x2', '3x3']);
  });

  it('ends an update at LastRect whatever its count said', () => {
    let updates = 0;
    const d = new RfbDecoder(serverInit(2, 2, CLIENT_PIXEL_FORMAT), { update: () => updates++ });
    d.push(update([rect(0, 0, 1, 1, 0, pixel(CLIENT_PIXEL_FORMAT, 1, 2, 3)), rect(0, 0, 0, 0, -224)], 0xffff));
    assert.equal(updates, 1);
    d.push(Buffer.from([2]));
    assert.equal(d.atMessageBoundary, true);
  });

  it('tells Bell, ServerCutText and the desktop name, and skips Fence and EndOfContinuousUpdates', () => {
    const seen: string[] = [];
    const d = new RfbDecoder(serverInit(2, 2, CLIENT_PIXEL_FORMAT, 'first'), { bell: () => seen.push('bell'), cutText: (t) => seen.push(`cut ${t}`), name: (n) => seen.push(`name ${n}`) });
    assert.equal(d.framebuffer.name, 'first');
    const cut = Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 5]), Buffer.from('hello')]);
    const fence = Buffer.from([248, 0, 0, 0, 0, 0, 0, 0, 2, 0xaa, 0xbb]);
    const name = Buffer.concat([Buffer.from([0, 0, 0, 6]), Buffer.from('second')]);
    d.push(Buffer.concat([Buffer.from([2]), cut, fence, Buffer.from([150]), update([rect(0, 0, 0, 0, -307, name)])]));
    assert.deepEqual(seen, ['bell', 'cut hello', 'name second']);
    assert.equal(d.framebuffer.name, 'second');
  });

  it('gives the same framebuffer and events fed byte by byte as in one chunk', () => {
    const stream = Buffer.concat([
      update([rect(0, 0, 7, 5, 0, rawBody(CLIENT_PIXEL_FORMAT, 7, 5, gradient))]),
      Buffer.from([2]),
      update([rect(0, 0, 3, 3, 1, Buffer.from([0, 2, 0, 1])), rect(4, 2, 3, 3, 0, rawBody(CLIENT_PIXEL_FORMAT, 3, 3, () => [1, 2, 3]))]),
      update([rect(0, 0, 9, 4, -223)]),
    ]);
    const log = (events: string[]) => ({ update: (r: readonly Rect[]) => events.push(JSON.stringify(r)), bell: () => events.push('bell'), resize: (w: number, h: number) => events.push(`${w}x${h}`) });
    const e1: string[] = [];
    const whole = new RfbDecoder(serverInit(7, 5, CLIENT_PIXEL_FORMAT), log(e1));
    whole.push(stream);
    const e2: string[] = [];
    const bytes = new RfbDecoder(serverInit(7, 5, CLIENT_PIXEL_FORMAT), log(e2));
    byteByByte(stream, (b) => bytes.push(b));
    assert.deepEqual(e2, e1);
    assert.deepEqual(Buffer.from(bytes.framebuffer.pixels), Buffer.from(whole.framebuffer.pixels));
    assert.equal(bytes.offset, stream.length);
  });

  for (const [name, bytes, words] of [
    ['an unknown message type', Buffer.from([77]), /unknown server message type 77/],
    ['a rectangle outside the screen', update([rect(3, 3, 4, 4, 0, Buffer.alloc(64))]), /outside the 4x4 screen/],
    ['an encoding never asked for', update([rect(0, 0, 1, 1, 99)]), /encoding 99/],
    ['a CopyRect from outside the screen', update([rect(0, 0, 2, 2, 1, Buffer.from([0, 3, 0, 3]))]), /CopyRect source/],
    ['a cut text over its bound', Buffer.from([3, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]), /ServerCutText of/],
    ['a screen over its bound', update([rect(0, 0, 60000, 60000, -223)]), /at most 16384/],
  ] as const) {
    it(`throws BACKEND_PROTOCOL on ${name}, and again on every later push`, () => {
      const d = new RfbDecoder(serverInit(4, 4, CLIENT_PIXEL_FORMAT));
      // the log has the detail; a client is told only that the update could not be decoded
      assert.throws(() => d.push(bytes), (e) => isGatewayError(e) && e.code === 'BACKEND_PROTOCOL' && words.test(e.message) && e.clientMessage === UNDECODABLE_CLIENT_MESSAGE);
      assert.throws(() => d.push(Buffer.from([2])), (e) => isGatewayError(e) && words.test(e.message));
    });
  }
});

describe('RfbDecoder callbacks', () => {
  it('fails INTERNAL, not BACKEND_PROTOCOL, when a DecoderEvents callback throws', () => {
    const d = new RfbDecoder(serverInit(2, 2, CLIENT_PIXEL_FORMAT), { bell: () => { throw new TypeError('consumer bug'); } });
    assert.throws(() => d.push(Buffer.from([2, 2])), (e) => isGatewayError(e) && e.code === 'INTERNAL' && /consumer bug/.test(e.message));
    assert.throws(() => d.push(Buffer.from([2])), (e) => isGatewayError(e) && e.code === 'INTERNAL');
  });
});
