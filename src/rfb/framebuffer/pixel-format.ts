/**
 * @module rfb/framebuffer/pixel-format
 * RFC 6143 §7.4 PIXEL_FORMAT for Porthole's RFB client: the 16-byte wire form both ways, and the
 * conversion of a server's pixels to the RGBA the framebuffer keeps. Any true-colour format of 8,
 * 16 or 32 bits per pixel in either byte order converts through per-channel tables (a channel's
 * maximum may be anything up to 65535); an 8-bit colour-map format through the colour map that
 * SetColourMapEntries (§7.6.2) filled. The format Porthole asks servers for, `CLIENT_PIXEL_FORMAT`
 * (32 bits little-endian, red/green/blue at shifts 0/8/16, noVNC's), is a fast path: its bytes
 * already are R G B x, so a run of pixels is a copy with the alpha byte set.
 *
 * Encodings that pack pixels tighter use the same converter with a narrower pixel: ZRLE's CPIXEL
 * (3 bytes of a 32-bit pixel whose channels fit in 24 bits, §7.7.6) and Tight's TPIXEL (R G B,
 * for 32-bit depth-24 formats with 8-bit channels, whatever the shifts or byte order).
 * Packed RGBA values (`rgba32`) are little-endian u32s (R | G<<8 | B<<16 | A<<24), what a
 * Uint32Array over the RGBA bytes holds on the little-endian hosts Node runs on.
 */
import type { GatewayError } from '../../errors.ts';
import { protocolError } from './screen.ts';
import type { PixelFormat } from './types.ts';

/** What Porthole asks every server for: 32bpp little-endian, depth 24, R at 0, G at 8, B at 16. */
export const CLIENT_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true,
  redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16,
};

export const PIXEL_FORMAT_LENGTH = 16;

/** The 16 bytes of a PIXEL_FORMAT as they are, unchecked (the caller decides what it serves). */
export function decodePixelFormat(b: Uint8Array, at = 0): PixelFormat {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    bitsPerPixel: v[at] as PixelFormat['bitsPerPixel'], depth: v[at + 1]!, bigEndian: v[at + 2] !== 0, trueColour: v[at + 3] !== 0,
    redMax: v.readUInt16BE(at + 4), greenMax: v.readUInt16BE(at + 6), blueMax: v.readUInt16BE(at + 8),
    redShift: v[at + 10]!, greenShift: v[at + 11]!, blueShift: v[at + 12]!,
  };
}

/** Reads a PIXEL_FORMAT; throws a `BACKEND_PROTOCOL` error for one no RFB peer may use. */
export function parsePixelFormat(b: Uint8Array, at = 0): PixelFormat {
  const pf = decodePixelFormat(b, at);
  const bpp = pf.bitsPerPixel;
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw badFormat(`${bpp} bits per pixel`);
  if (pf.trueColour) {
    for (const [max, shift] of [[pf.redMax, pf.redShift], [pf.greenMax, pf.greenShift], [pf.blueMax, pf.blueShift]] as const) {
      if (max === 0 || shift >= bpp || max * 2 ** shift >= 2 ** bpp) throw badFormat(`channel max ${max} at shift ${shift} does not fit ${bpp} bits`);
    }
  } else if (bpp === 32) {
    throw badFormat('a 32-bit colour-map format');
  }
  return pf;
}

export function encodePixelFormat(pf: PixelFormat): Buffer {
  const b = Buffer.alloc(PIXEL_FORMAT_LENGTH);
  b[0] = pf.bitsPerPixel;
  b[1] = pf.depth;
  b[2] = pf.bigEndian ? 1 : 0;
  b[3] = pf.trueColour ? 1 : 0;
  b.writeUInt16BE(pf.redMax, 4);
  b.writeUInt16BE(pf.greenMax, 6);
  b.writeUInt16BE(pf.blueMax, 8);
  b[10] = pf.redShift;
  b[11] = pf.greenShift;
  b[12] = pf.blueShift;
  return b;
}

/** The fast path's format: the pixel's bytes are R G B x in that order. */
export function isClientFormat(pf: PixelFormat): boolean {
  return pf.trueColour && pf.bitsPerPixel === 32 && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255 &&
    (pf.bigEndian ? pf.redShift === 24 && pf.greenShift === 16 && pf.blueShift === 8 : pf.redShift === 0 && pf.greenShift === 8 && pf.blueShift === 16);
}

/** ZRLE's CPIXEL (§7.7.6): 3 bytes when a 32-bit true-colour pixel of depth ≤ 24 fits in its low or high 3 bytes. */
export function compactPixelBytes(pf: PixelFormat): { bytes: number; shift: number } {
  if (pf.bitsPerPixel === 32 && pf.trueColour && pf.depth <= 24) {
    const top = Math.max(...[[pf.redMax, pf.redShift], [pf.greenMax, pf.greenShift], [pf.blueMax, pf.blueShift]].map(([m, s]) => bitLength(m!) + s!));
    const bottom = Math.min(pf.redShift, pf.greenShift, pf.blueShift);
    if (top <= 24) return { bytes: 3, shift: 0 };
    if (bottom >= 8) return { bytes: 3, shift: 8 };
  }
  return { bytes: pf.bitsPerPixel / 8, shift: 0 };
}

/** Tight's TPIXEL (rfbproto "Tight"): R G B bytes for 32-bit depth-24 true colour with 8-bit channels. */
export function isTightRgb(pf: PixelFormat): boolean {
  return pf.bitsPerPixel === 32 && pf.depth === 24 && pf.trueColour && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255;
}

function bitLength(n: number): number {
  return n === 0 ? 0 : 32 - Math.clz32(n);
}

const OPAQUE = 0xff000000;

/**
 * Turns pixels of one format into RGBA. `bytes` is the pixel's size on the wire (1 to 4: 3 for
 * a CPIXEL), `valueShift` where those bytes sit in the full pixel value (8 for a CPIXEL made of
 * the high bytes).
 */
export class PixelConverter {
  readonly bytes: number;
  /** The pixel's bytes are R G B (x): runs are copies. */
  readonly direct: boolean;
  private readonly red: Uint8Array;
  private readonly green: Uint8Array;
  private readonly blue: Uint8Array;

  constructor(readonly format: PixelFormat, private readonly colourMap: ColourMap, bytes = format.bitsPerPixel / 8, private readonly valueShift = 0) {
    this.bytes = bytes;
    this.direct = isClientFormat(format) && bytes >= 3 && !format.bigEndian;
    this.red = channelTable(format.redMax);
    this.green = channelTable(format.greenMax);
    this.blue = channelTable(format.blueMax);
  }

  /** The pixel's value as the format defines it (byte order applied). */
  value(src: Uint8Array, at: number): number {
    let v: number;
    switch (this.bytes) {
      case 1: return src[at]!;
      case 2: return this.format.bigEndian ? (src[at]! << 8) | src[at + 1]! : src[at]! | (src[at + 1]! << 8);
      case 3: v = this.format.bigEndian ? (src[at]! << 16) | (src[at + 1]! << 8) | src[at + 2]! : src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16); break;
      default: v = this.format.bigEndian ? ((src[at]! << 24) | (src[at + 1]! << 16) | (src[at + 2]! << 8) | src[at + 3]!) >>> 0 : (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0;
    }
    return this.valueShift ? (v << this.valueShift) >>> 0 : v;
  }

  /** One pixel as packed RGBA. */
  rgba32(src: Uint8Array, at: number): number {
    if (this.direct) return (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | OPAQUE) >>> 0;
    return this.fromValue(this.value(src, at));
  }

  /** A pixel value (`value`) as packed RGBA. */
  fromValue(v: number): number {
    const f = this.format;
    if (!f.trueColour) return this.colourMap.rgba32(v);
    const r = this.red[(v >>> f.redShift) & f.redMax]!;
    const g = this.green[(v >>> f.greenShift) & f.greenMax]!;
    const b = this.blue[(v >>> f.blueShift) & f.blueMax]!;
    return (r | (g << 8) | (b << 16) | OPAQUE) >>> 0;
  }

  /** Converts `n` pixels from `src` at `at` to RGBA bytes in `dst` at `dstAt`. */
  toRgba(src: Uint8Array, at: number, n: number, dst: Uint8Array, dstAt: number): void {
    const step = this.bytes;
    if (this.direct) {
      if (step === 4) {
        dst.set(src.subarray(at, at + 4 * n), dstAt);
        for (let i = dstAt + 3, end = dstAt + 4 * n; i < end; i += 4) dst[i] = 255;
      } else {
        for (let i = 0; i < n; i++, at += step, dstAt += 4) {
          dst[dstAt] = src[at]!;
          dst[dstAt + 1] = src[at + 1]!;
          dst[dstAt + 2] = src[at + 2]!;
          dst[dstAt + 3] = 255;
        }
      }
      return;
    }
    for (let i = 0; i < n; i++, at += step, dstAt += 4) {
      const c = this.fromValue(this.value(src, at));
      dst[dstAt] = c & 255;
      dst[dstAt + 1] = (c >>> 8) & 255;
      dst[dstAt + 2] = (c >>> 16) & 255;
      dst[dstAt + 3] = 255;
    }
  }
}

/** Scales 0..max to 0..255, rounding, as noVNC and TigerVNC's viewer do. */
function channelTable(max: number): Uint8Array {
  const t = new Uint8Array(max + 1);
  for (let i = 0; i <= max; i++) t[i] = max === 0 ? 0 : Math.round((i * 255) / max);
  return t;
}

/**
 * The colour map of colour-map formats (§7.6.2): up to 65536 entries of 16-bit R G B, kept as
 * packed RGBA. An entry never set is black, as in TigerVNC's viewer.
 */
export class ColourMap {
  /** Packed RGBA per entry; grows to the highest entry set. */
  entries = new Uint32Array(0);

  rgba32(index: number): number {
    return index < this.entries.length ? this.entries[index]! : OPAQUE >>> 0;
  }

  /** SetColourMapEntries' body: `count` entries of 6 bytes from `at`. */
  set(first: number, count: number, src: Buffer, at: number): void {
    const end = first + count;
    if (end > 65536) throw protocolError(`SetColourMapEntries beyond entry 65535 (first ${first}, ${count} colours)`);
    if (end > this.entries.length) {
      const grown = new Uint32Array(Math.max(end, 256));
      grown.fill(OPAQUE >>> 0);
      grown.set(this.entries);
      this.entries = grown;
    }
    for (let i = 0; i < count; i++, at += 6) {
      // 16-bit channels, as the spec sends them; the high byte is the 8-bit value
      this.entries[first + i] = (src[at]! | (src[at + 2]! << 8) | (src[at + 4]! << 16) | OPAQUE) >>> 0;
    }
  }
}

function badFormat(detail: string): GatewayError {
  return protocolError(`an unusable pixel format: ${detail}`);
}
