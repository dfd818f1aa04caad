/**
 * @module rfb/framebuffer/rre
 * RRE (encoding 2, RFC 6143 §7.7.3): a U32 count of subrectangles, a background pixel filling
 * the rectangle, then per subrectangle a pixel and its x, y, width, height (U16 each, relative to
 * the rectangle). Subrectangles are decoded in runs as they arrive; each is checked against the
 * rectangle, so none paints outside what the header announced.
 */
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';
import { protocolError } from './screen.ts';

export class RreDecoder implements RectDecoder {
  done = true;
  private rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 2 };
  private left = -1;

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.ctx.screen.check(rect.x, rect.y, rect.width, rect.height, 'RRE');
    this.rect = rect;
    this.left = -1;
    this.done = false;
  }

  decode(b: Buffer, at: number, end: number): number {
    const { screen, pixel } = this.ctx;
    const bpp = pixel.bytes;
    const start = at;
    if (this.left < 0) {
      if (end - at < 4 + bpp) return -(4 + bpp);
      this.left = b.readUInt32BE(at);
      const { x, y, width, height } = this.rect;
      // §7.7.3 allows any count; more subrectangles than pixels is not an encoding of anything
      if (this.left > width * height) throw protocolError(`RRE with ${this.left} subrectangles in ${width}x${height}`);
      screen.fill(x, y, width, height, pixel.rgba32(b, at + 4));
      at += 4 + bpp;
    }
    const size = bpp + 8;
    const { x: rx, y: ry, width: rw, height: rh } = this.rect;
    while (this.left > 0 && end - at >= size) {
      const colour = pixel.rgba32(b, at);
      const sx = b.readUInt16BE(at + bpp);
      const sy = b.readUInt16BE(at + bpp + 2);
      const sw = b.readUInt16BE(at + bpp + 4);
      const sh = b.readUInt16BE(at + bpp + 6);
      if (sx + sw > rw || sy + sh > rh) throw protocolError(`RRE subrectangle ${sw}x${sh} at ${sx},${sy} outside its ${rw}x${rh} rectangle`);
      screen.fill(rx + sx, ry + sy, sw, sh, colour);
      at += size;
      this.left--;
    }
    this.done = this.left === 0;
    if (at === start) return -size;
    return at - start;
  }
}
