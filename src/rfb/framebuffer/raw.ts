/**
 * @module rfb/framebuffer/raw
 * Raw (encoding 0, RFC 6143 §7.7.1): `width * height` pixels of the format in force, row by row.
 * Decoded in runs of whole rows as they arrive, so a large rectangle never waits whole in memory;
 * in Porthole's own pixel format a row is a copy with the alpha byte set.
 */
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';

export class RawDecoder implements RectDecoder {
  done = true;
  private x = 0;
  private y = 0;
  private width = 0;
  private rowsLeft = 0;

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.ctx.screen.check(rect.x, rect.y, rect.width, rect.height, 'Raw');
    this.x = rect.x;
    this.y = rect.y;
    this.width = rect.width;
    this.rowsLeft = rect.width === 0 ? 0 : rect.height;
    this.done = this.rowsLeft === 0;
  }

  decode(b: Buffer, at: number, end: number): number {
    const { screen, pixel } = this.ctx;
    const rowBytes = this.width * pixel.bytes;
    const rows = Math.min(this.rowsLeft, Math.floor((end - at) / rowBytes));
    if (rows === 0) return -rowBytes;
    const dst = screen.pixels;
    const stride = screen.width * 4;
    for (let i = 0, src = at; i < rows; i++, src += rowBytes) {
      pixel.toRgba(b, src, this.width, dst, this.y * stride + this.x * 4);
      this.y++;
    }
    this.rowsLeft -= rows;
    this.done = this.rowsLeft === 0;
    return rows * rowBytes;
  }
}
