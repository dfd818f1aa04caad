/**
 * ZRLE and Tight on synthetic streams from the spec-written encoders of `encoders.ts`: Tight's
 * fill, Copy, Palette (2 and 16 colours), Gradient and JPEG, its four zlib streams and their reset
 * bits; ZRLE's one stream going on across rectangles. Then what must fail: a stream used after a
 * reset without a new header, data that inflates to the wrong size, a palette index past the
 * palette.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../../src/errors.ts';
import { RfbDecoder } from '../../../src/rfb/framebuffer/decoder.ts';
import { CLIENT_PIXEL_FORMAT } from '../../../src/rfb/framebuffer/pixel-format.ts';
import { type Rgb, tightCopy, tightFill, tightGradient, tightJpeg, tightPalette, ZlibWriter, zrleRect } from './encoders.ts';
import { at, byteByByte, rect, serverInit, update } from './messages.ts';

const W = 80;
const H = 60;
const photo = (x: number, y: number): Rgb => [(x * 3 + y) & 255, (y * 5) & 255, (x * y) & 255];
const PALETTE16: Rgb[] = Array.from({ length: 16 }, (_, i) => [i * 16, 255 - i * 16, (i * 97) & 255]);

function decoder(): RfbDecoder {
  return new RfbDecoder(serverInit(W, H, CLIENT_PIXEL_FORMAT));
}

function expectArea(d: RfbDecoder, x0: number, y0: number, w: number, h: number, pixel: (x: number, y: number) => Rgb, tolerance = 0): void {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const got = at(d.framebuffer, x0 + x, y0 + y);
      const want = pixel(x, y);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(got[c]! - want[c]!) <= tolerance, `${x0 + x},${y0 + y}: ${got} vs ${want}`);
      assert.equal(got[3], 255);
    }
  }
}

describe('Tight', () => {
  it('decodes fill, Copy, Palette, Gradient and JPEG on its four streams, fed whole and byte by byte', () => {
    const z = [new ZlibWriter(), new ZlibWriter(), new ZlibWriter(), new ZlibWriter()];
    const stream = Buffer.concat([
      update([
        tightFill(0, 0, W, H, [10, 20, 30]),
        tightCopy(z[0]!, 0, 0, 0, 40, 30, photo),
        tightPalette(z[1]!, 1, 40, 0, 40, 30, [[255, 255, 255], [0, 0, 128]], (x, y) => (x + y) % 3 === 0 ? 1 : 0),
        tightPalette(z[2]!, 2, 0, 30, 40, 30, PALETTE16, (x, y) => (x * y) % 16),
        tightGradient(z[3]!, 3, 40, 30, 20, 30, photo),
        tightJpeg(60, 30, 20, 30, () => [200, 100, 50]),
      ]),
      // the streams go on in the next update
      update([tightCopy(z[0]!, 0, 0, 0, 40, 30, (x, y) => photo(y, x)), tightGradient(z[3]!, 3, 40, 30, 20, 30, (x, y) => photo(x + 1, y))]),
    ]);
    const whole = decoder();
    whole.push(stream);
    const bytes = decoder();
    byteByByte(stream, (b) => bytes.push(b));
    for (const d of [whole, bytes]) {
      expectArea(d, 0, 0, 40, 30, (x, y) => photo(y, x));
      expectArea(d, 40, 0, 40, 30, (x, y) => ((x + y) % 3 === 0 ? [0, 0, 128] : [255, 255, 255]));
      expectArea(d, 0, 30, 40, 30, (x, y) => PALETTE16[(x * y) % 16]!);
      expectArea(d, 40, 30, 20, 30, (x, y) => photo(x + 1, y));
      expectArea(d, 60, 30, 20, 30, () => [200, 100, 50], 3);
    }
  });

  it('starts a stream anew after its reset bit', () => {
    const d = decoder();
    const first = new ZlibWriter();
    d.push(update([tightCopy(first, 2, 0, 0, 10, 10, photo)]));
    // a new deflater for stream 2, announced by bit 2 of the control byte
    const second = new ZlibWriter();
    d.push(update([tightCopy(second, 2, 0, 0, 10, 10, (x, y) => photo(y, x), 1 << 2)]));
    expectArea(d, 0, 0, 10, 10, (x, y) => photo(y, x));
    // the same, without the reset bit: the new stream's header is garbage in the middle of the old one
    const third = new ZlibWriter();
    assert.throws(() => d.push(update([tightCopy(third, 2, 0, 0, 10, 10, photo)])), (e) => isGatewayError(e) && e.code === 'BACKEND_PROTOCOL');
  });

  it('refuses data that inflates to another size than the rectangle needs, and palette indices past the palette', () => {
    const z2 = new ZlibWriter();
    const part = z2.part(Buffer.alloc(50));
    const wrongSize = update([rect(0, 0, 10, 10, 7, Buffer.concat([Buffer.from([0x00, part.length]), part]))]);
    assert.throws(() => decoder().push(wrongSize), (e) => isGatewayError(e) && /inflated to 50 bytes, not 300/.test(e.message));
    const z3 = new ZlibWriter();
    const badIndex = update([tightPalette(z3, 0, 0, 0, 10, 10, [[1, 1, 1], [2, 2, 2], [3, 3, 3]], () => 7)]);
    assert.throws(() => decoder().push(badIndex), (e) => isGatewayError(e) && /palette index 7 of 3/.test(e.message));
  });
});

describe('ZRLE', () => {
  it('goes on with its one zlib stream across rectangles and updates', () => {
    const z = new ZlibWriter();
    const d = decoder();
    d.push(update([zrleRect(z, 0, 0, W, H, photo)]));
    d.push(update([zrleRect(z, 8, 4, 70, 50, (x, y) => photo(y, x))]));
    expectArea(d, 0, 0, W, 4, photo);
    expectArea(d, 8, 4, 70, 50, (x, y) => photo(y, x));
  });

  it('refuses a run past its tile and an unused subencoding', () => {
    const z = new ZlibWriter();
    const runTooLong = z.part(Buffer.from([128, 1, 2, 3, 255, 255, 255, 255, 10]));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(runTooLong.length);
    assert.throws(() => decoder().push(update([rect(0, 0, 16, 16, 16, Buffer.concat([len, runTooLong]))])), (e) => isGatewayError(e) && /run of \d+ pixels past its 16x16 tile/.test(e.message));
    const z2 = new ZlibWriter();
    const unused = z2.part(Buffer.from([100]));
    len.writeUInt32BE(unused.length);
    assert.throws(() => decoder().push(update([rect(0, 0, 16, 16, 16, Buffer.concat([len, unused]))])), (e) => isGatewayError(e) && /subencoding 100/.test(e.message));
  });
});
