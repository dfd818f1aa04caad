/**
 * @module rfb/shared/pixel-format
 * RFC 6143 §7.4 pixel formats as the server role of a shared console speaks them: the format it
 * announces in ServerInit, the 16-byte wire form both ways, why a format a viewer asks for is
 * refused, and `PixelPacker`, which turns RGBA pixels of the kept framebuffer
 * (`rfb/framebuffer/types.ts`) into one viewer's pixels. Colour-map formats are refused: they
 * would need SetColourMapEntries, and no browser client asks for one.
 */
import { decodePixelFormat, encodePixelFormat } from '../framebuffer/pixel-format.ts';
import type { PixelFormat } from '../framebuffer/types.ts';

export { decodePixelFormat };

/** What ServerInit announces: 32 bits, depth 24, little endian, 0x00RRGGBB (TigerVNC's and QEMU's own). */
export const SERVER_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true,
  redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0,
};

export function writePixelFormat(pf: PixelFormat, out: Buffer, at: number): void {
  encodePixelFormat(pf).copy(out, at);
}

/** Reads a PIXEL_FORMAT; throws a plain Error naming what is wrong when it cannot be served. */
export function readPixelFormat(b: Buffer, at: number): PixelFormat {
  const pf = decodePixelFormat(b, at);
  const problem = pixelFormatProblem(pf);
  if (problem) throw new Error(`pixel format refused: ${problem}`);
  return pf;
}

/** Why a requested format cannot be served, or null. */
export function pixelFormatProblem(pf: PixelFormat): string | null {
  if (![8, 16, 32].includes(pf.bitsPerPixel)) return `bits-per-pixel ${pf.bitsPerPixel}`;
  if (!pf.trueColour) return 'colour-map pixel format';
  const channels: Array<[number, number]> = [[pf.redMax, pf.redShift], [pf.greenMax, pf.greenShift], [pf.blueMax, pf.blueShift]];
  for (const [max, shift] of channels) {
    if (max === 0 || shift >= pf.bitsPerPixel || max * 2 ** shift >= 2 ** pf.bitsPerPixel) {
      return `channel max ${max} shift ${shift} does not fit ${pf.bitsPerPixel} bits`;
    }
  }
  return null;
}

/**
 * RGBA to one viewer's pixels. Per-channel tables make a pixel three lookups and two ORs; the
 * format noVNC asks for (32 bits, little endian, red at shift 0) is RGBA's own byte order, so its
 * rows are copied, not converted.
 */
export class PixelPacker {
  readonly bytesPerPixel: number;
  /** RGBA memory is already this format (the padding byte carries alpha, which clients ignore). */
  readonly native: boolean;
  private readonly red = new Uint32Array(256);
  private readonly green = new Uint32Array(256);
  private readonly blue = new Uint32Array(256);

  constructor(readonly format: PixelFormat) {
    const f = format;
    this.bytesPerPixel = f.bitsPerPixel / 8;
    const little = !f.bigEndian || f.bitsPerPixel === 8;
    this.native = f.bitsPerPixel === 32 && little && f.redMax === 255 && f.greenMax === 255 && f.blueMax === 255 && f.redShift === 0 && f.greenShift === 8 && f.blueShift === 16;
    for (let v = 0; v < 256; v++) {
      this.red[v] = (Math.round((v * f.redMax) / 255) * 2 ** f.redShift) >>> 0;
      this.green[v] = (Math.round((v * f.greenMax) / 255) * 2 ** f.greenShift) >>> 0;
      this.blue[v] = (Math.round((v * f.blueMax) / 255) * 2 ** f.blueShift) >>> 0;
    }
  }

  /** The pixel value of an RGBA colour (before byte order). */
  value(r: number, g: number, b: number): number {
    return (this.red[r]! | this.green[g]! | this.blue[b]!) >>> 0;
  }

  /** Writes `value` at `out[o]` in the format's size and byte order. */
  put(value: number, out: Uint8Array, o: number): void {
    const bpp = this.bytesPerPixel;
    if (bpp === 1) out[o] = value;
    else if (bpp === 2) {
      if (this.format.bigEndian) { out[o] = value >>> 8; out[o + 1] = value; } else { out[o] = value; out[o + 1] = value >>> 8; }
    } else if (this.format.bigEndian) {
      out[o] = value >>> 24; out[o + 1] = value >>> 16; out[o + 2] = value >>> 8; out[o + 3] = value;
    } else {
      out[o] = value; out[o + 1] = value >>> 8; out[o + 2] = value >>> 16; out[o + 3] = value >>> 24;
    }
  }

  /** Packs the rectangle (x, y, w, h) of an RGBA screen `stride` pixels wide into `out` at `at`; returns the end. */
  pack(rgba: Uint8Array, stride: number, x: number, y: number, w: number, h: number, out: Uint8Array, at: number): number {
    let o = at;
    if (this.native) {
      for (let row = y; row < y + h; row++, o += w * 4) out.set(rgba.subarray((row * stride + x) * 4, (row * stride + x + w) * 4), o);
      return o;
    }
    const { red, green, blue, bytesPerPixel: bpp } = this;
    const big = this.format.bigEndian;
    for (let row = y; row < y + h; row++) {
      let i = (row * stride + x) * 4;
      for (let col = 0; col < w; col++, i += 4, o += bpp) {
        // byte stores, not Buffer#writeUInt*: no range checks on the per-pixel path
        const v = red[rgba[i]!]! | green[rgba[i + 1]!]! | blue[rgba[i + 2]!]!;
        if (bpp === 4) {
          if (big) { out[o] = v >>> 24; out[o + 1] = v >>> 16; out[o + 2] = v >>> 8; out[o + 3] = v; } else { out[o] = v; out[o + 1] = v >>> 8; out[o + 2] = v >>> 16; out[o + 3] = v >>> 24; }
        } else if (bpp === 2) {
          if (big) { out[o] = v >>> 8; out[o + 1] = v; } else { out[o] = v; out[o + 1] = v >>> 8; }
        } else {
          out[o] = v;
        }
      }
    }
    return o;
  }
}
