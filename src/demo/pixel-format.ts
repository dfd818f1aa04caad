/**
 * @module demo/pixel-format
 * RFC 6143 §7.4 pixel formats as the demo server speaks them: its own format (ServerInit), the
 * 16-byte wire form both ways, and why a format a client asks for is refused.
 */

export interface PixelFormat {
  bitsPerPixel: number; depth: number; bigEndian: boolean; trueColour: boolean;
  redMax: number; greenMax: number; blueMax: number;
  redShift: number; greenShift: number; blueShift: number;
}

export const SERVER_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true,
  redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0,
};

export function writePixelFormat(pf: PixelFormat, out: Buffer, at: number): void {
  out.writeUInt8(pf.bitsPerPixel, at);
  out.writeUInt8(pf.depth, at + 1);
  out.writeUInt8(pf.bigEndian ? 1 : 0, at + 2);
  out.writeUInt8(pf.trueColour ? 1 : 0, at + 3);
  out.writeUInt16BE(pf.redMax, at + 4);
  out.writeUInt16BE(pf.greenMax, at + 6);
  out.writeUInt16BE(pf.blueMax, at + 8);
  out.writeUInt8(pf.redShift, at + 10);
  out.writeUInt8(pf.greenShift, at + 11);
  out.writeUInt8(pf.blueShift, at + 12);
}

export function readPixelFormat(b: Buffer, at: number): PixelFormat {
  return {
    bitsPerPixel: b.readUInt8(at), depth: b.readUInt8(at + 1),
    bigEndian: b.readUInt8(at + 2) !== 0, trueColour: b.readUInt8(at + 3) !== 0,
    redMax: b.readUInt16BE(at + 4), greenMax: b.readUInt16BE(at + 6), blueMax: b.readUInt16BE(at + 8),
    redShift: b.readUInt8(at + 10), greenShift: b.readUInt8(at + 11), blueShift: b.readUInt8(at + 12),
  };
}

/** Why a requested format is refused, or null. Colour maps would need SetColourMapEntries. */
export function pixelFormatProblem(pf: PixelFormat): string | null {
  if (![8, 16, 32].includes(pf.bitsPerPixel)) return `bits-per-pixel ${pf.bitsPerPixel}`;
  if (!pf.trueColour) return 'colour-map pixel format';
  const channels: Array<[number, number]> = [[pf.redMax, pf.redShift], [pf.greenMax, pf.greenShift],
    [pf.blueMax, pf.blueShift]];
  for (const [max, shift] of channels) {
    if (max === 0 || shift >= pf.bitsPerPixel || max * 2 ** shift >= 2 ** pf.bitsPerPixel) {
      return `channel max ${max} shift ${shift} does not fit ${pf.bitsPerPixel} bits`;
    }
  }
  return null;
}
