/**
 * @module rfb/framebuffer/desktop-name
 * DesktopName (-307, rfbproto): a U32 length and the desktop's new name in UTF-8, bounded as
 * ServerInit's name is.
 */
import { MAX_DESKTOP_NAME } from '../security-proxy.ts';
import type { DecodeContext, RectDecoder } from './encoding.ts';
import { protocolError } from './screen.ts';

export class DesktopNameDecoder implements RectDecoder {
  done = true;

  constructor(private readonly ctx: DecodeContext) {}

  begin(): void {
    this.done = false;
  }

  decode(b: Buffer, at: number, end: number): number {
    if (end - at < 4) return -4;
    const length = b.readUInt32BE(at);
    if (length > MAX_DESKTOP_NAME) throw protocolError(`DesktopName of ${length} bytes (at most ${MAX_DESKTOP_NAME})`);
    if (end - at < 4 + length) return -(4 + length);
    this.ctx.rename(b.subarray(at + 4, at + 4 + length).toString('utf8'));
    this.done = true;
    return 4 + length;
  }
}
