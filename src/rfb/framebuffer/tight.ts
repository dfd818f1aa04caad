/**
 * @module rfb/framebuffer/tight
 * Tight: not decoded yet (step 2 of issue 18's client core).
 */
import type { DecodeContext, RectDecoder } from './encoding.ts';
import { protocolError } from './screen.ts';

export class TightDecoder implements RectDecoder {
  done = true;

  constructor(private readonly ctx: DecodeContext, ..._more: unknown[]) {}

  begin(): void {
    void this.ctx;
    throw protocolError('Tight rectangles are not decoded yet');
  }

  decode(): number {
    return 0;
  }
}
