/**
 * @module rfb/framebuffer/cursor
 * The cursor pseudo-encodings, kept as an RGBA shape with its hot spot (the rectangle's x, y).
 * Cursor (-239, RFC 6143 §7.8.1): `width * height` pixels of the format in force, then a bitmask
 * of `ceil(width / 8)` bytes a row, most significant bit first, 1 = opaque.
 * X Cursor (-240, rfbproto): a foreground and a background colour (R G B each), then a bitmap
 * (1 = foreground) and a mask of the same shape; a 0x0 rectangle has no data and hides the cursor.
 */
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';
import { protocolError } from './screen.ts';

/** Bound on a cursor's side: real cursors are 16 to 128 pixels; RFB's U16 would allow 64K. */
const MAX_CURSOR_SIDE = 1024;

function bit(mask: Uint8Array, at: number, rowBytes: number, x: number, y: number): boolean {
  return (mask[at + y * rowBytes + (x >> 3)]! & (0x80 >> (x & 7))) !== 0;
}

abstract class CursorBase implements RectDecoder {
  done = true;
  protected rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 0 };

  constructor(protected readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    if (rect.width > MAX_CURSOR_SIDE || rect.height > MAX_CURSOR_SIDE) throw protocolError(`cursor of ${rect.width}x${rect.height} (at most ${MAX_CURSOR_SIDE} a side)`);
    this.rect = rect;
    this.done = rect.width === 0 || rect.height === 0;
    // an empty shape has no data: the cursor is hidden
    if (this.done) this.emit(new Uint8Array(0));
  }

  abstract decode(b: Buffer, at: number, end: number): number;

  protected emit(rgba: Uint8Array): void {
    const { x, y, width, height } = this.rect;
    this.ctx.setCursor({ hotX: x, hotY: y, width, height, rgba });
  }
}

export class CursorDecoder extends CursorBase {
  decode(b: Buffer, at: number, end: number): number {
    const { width, height } = this.rect;
    const pixel = this.ctx.pixel;
    const rowBytes = Math.ceil(width / 8);
    const pixelBytes = width * height * pixel.bytes;
    const size = pixelBytes + rowBytes * height;
    if (end - at < size) return -size;
    const rgba = new Uint8Array(width * height * 4);
    pixel.toRgba(b, at, width * height, rgba, 0);
    const mask = at + pixelBytes;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) rgba[(y * width + x) * 4 + 3] = bit(b, mask, rowBytes, x, y) ? 255 : 0;
    }
    this.emit(rgba);
    this.done = true;
    return size;
  }
}

export class XCursorDecoder extends CursorBase {
  decode(b: Buffer, at: number, end: number): number {
    const { width, height } = this.rect;
    const rowBytes = Math.ceil(width / 8);
    const size = 6 + 2 * rowBytes * height;
    if (end - at < size) return -size;
    const rgba = new Uint8Array(width * height * 4);
    const bitmap = at + 6;
    const mask = bitmap + rowBytes * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 4;
        const c = bit(b, bitmap, rowBytes, x, y) ? at : at + 3;
        rgba[o] = b[c]!;
        rgba[o + 1] = b[c + 1]!;
        rgba[o + 2] = b[c + 2]!;
        rgba[o + 3] = bit(b, mask, rowBytes, x, y) ? 255 : 0;
      }
    }
    this.emit(rgba);
    this.done = true;
    return size;
  }
}
