/**
 * @module rfb/framebuffer/copy-rect
 * CopyRect (encoding 1, RFC 6143 §7.7.2): the rectangle is a copy of another part of the screen
 * as it was before this rectangle (source and destination may overlap). Both are checked against
 * the screen.
 */
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';

export class CopyRectDecoder implements RectDecoder {
  done = true;
  private rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 1 };

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.ctx.screen.check(rect.x, rect.y, rect.width, rect.height, 'CopyRect');
    this.rect = rect;
    this.done = false;
  }

  decode(b: Buffer, at: number, end: number): number {
    if (end - at < 4) return -4;
    const sx = b.readUInt16BE(at);
    const sy = b.readUInt16BE(at + 2);
    const { x, y, width, height } = this.rect;
    const screen = this.ctx.screen;
    screen.check(sx, sy, width, height, 'CopyRect source');
    screen.copy(sx, sy, x, y, width, height);
    this.done = true;
    return 4;
  }
}
