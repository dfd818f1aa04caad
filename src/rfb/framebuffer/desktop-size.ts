/**
 * @module rfb/framebuffer/desktop-size
 * The screen-size pseudo-encodings. DesktopSize (-223, RFC 6143 §7.8.2): the rectangle's width
 * and height are the new size, no data. ExtendedDesktopSize (-308, §7.8.3): the same, followed by
 * the screen layout (a count, 3 bytes of padding, 16 bytes a screen), whose layout Porthole does
 * not keep. Its x is the reason and its y the status: a non-zero status answering a client's
 * SetDesktopSize (reason 1) is a refusal and leaves the size as it was (noVNC does the same).
 */
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';

/** rfbproto bounds nothing; 255 screens is what the U8 count allows. */
const SCREEN_BYTES = 16;

export class DesktopSizeDecoder implements RectDecoder {
  done = true;

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.ctx.resize(rect.width, rect.height);
  }

  decode(): number {
    return 0;
  }
}

export class ExtendedDesktopSizeDecoder implements RectDecoder {
  done = true;
  private rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: -308 };

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.rect = rect;
    this.done = false;
  }

  decode(b: Buffer, at: number, end: number): number {
    if (end - at < 4) return -4;
    const size = 4 + SCREEN_BYTES * b[at]!;
    if (end - at < size) return -size;
    const { x: reason, y: status, width, height } = this.rect;
    if (!(reason === 1 && status !== 0)) this.ctx.resize(width, height);
    this.done = true;
    return size;
  }
}
