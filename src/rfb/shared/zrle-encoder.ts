/**
 * @module rfb/shared/zrle-encoder
 * ZRLE (RFC 6143 §7.7.6) for one viewer of a shared console, so that a browser away from the
 * proxy is not sent raw pixels. One zlib stream per viewer for the whole connection, as the
 * client keeps one inflater: each rectangle's tiles are deflated with a sync flush, so the bytes
 * of one rectangle are complete on their own and the dictionary carries over to the next.
 * pako's Deflate is used because Node's zlib has no synchronous call that keeps a stream across
 * calls (deflateSync starts a new stream, which the client's inflater would refuse).
 *
 * Each 64x64 tile is solid (one colour), a packed palette (2 to 16 colours, 1, 2 or 4 bits a
 * pixel), plain RLE when its runs make it smaller than raw, or raw: what screens of text and
 * desktops mostly are, at a few comparisons a pixel. Pixels go as CPIXELs: 3 bytes for a 32-bit
 * true-colour format whose colours fit in 3 of its bytes (noVNC's), whole pixels otherwise.
 */
import pako from 'pako';
import type { PixelFormat } from '../framebuffer/types.ts';
import type { PixelPacker } from './pixel-format.ts';

const TILE = 64;

export class ZrleEncoder {
  private readonly deflate: pako.Deflate;
  private output: Uint8Array[] = [];
  /** Bytes of one CPIXEL, and where they start in the whole pixel as `PixelPacker.put` writes it. */
  private cbytes = 4;
  private coffset = 0;
  private tiles = Buffer.alloc(64 * 1024);
  private used = 0;
  private readonly whole = new Uint8Array(4);
  private readonly values = new Uint32Array(TILE * TILE);

  constructor(private packer: PixelPacker, level = 6) {
    this.deflate = new pako.Deflate({ level: level as pako.DeflateFunctionOptions["level"] });
    this.deflate.onData = (chunk) => this.output.push(chunk as Uint8Array);
    this.setPacker(packer);
  }

  /** The viewer set another pixel format: the same zlib stream goes on (the client keeps one inflater). */
  setPacker(packer: PixelPacker): void {
    this.packer = packer;
    const layout = cpixelLayout(packer.format);
    this.cbytes = layout.bytes;
    this.coffset = layout.offset;
  }

  /** The ZRLE data of rectangle (x, y, w, h) of an RGBA screen `stride` pixels wide: u32 length, then the zlib bytes. */
  encode(rgba: Uint8Array, stride: number, x: number, y: number, w: number, h: number): Buffer {
    this.used = 0;
    for (let ty = y; ty < y + h; ty += TILE) {
      const th = Math.min(TILE, y + h - ty);
      for (let tx = x; tx < x + w; tx += TILE) this.tile(rgba, stride, tx, ty, Math.min(TILE, x + w - tx), th);
    }
    this.output = [];
    this.deflate.push(this.tiles.subarray(0, this.used), pako.constants.Z_SYNC_FLUSH);
    let n = 0;
    for (const c of this.output) n += c.length;
    const out = Buffer.allocUnsafe(4 + n);
    out.writeUInt32BE(n, 0);
    let o = 4;
    for (const c of this.output) {
      out.set(c, o);
      o += c.length;
    }
    this.output = [];
    return out;
  }

  private tile(rgba: Uint8Array, stride: number, x: number, y: number, w: number, h: number): void {
    const n = w * h;
    const values = this.values;
    const palette: number[] = [];
    let runs = 0;
    let prev = -1;
    let k = 0;
    for (let row = y; row < y + h; row++) {
      let i = (row * stride + x) * 4;
      for (let col = 0; col < w; col++, i += 4, k++) {
        const v = this.packer.value(rgba[i]!, rgba[i + 1]!, rgba[i + 2]!);
        values[k] = v;
        if (v !== prev) {
          runs++;
          prev = v;
          if (palette.length <= 16 && !palette.includes(v)) palette.push(v);
        }
      }
    }
    const cb = this.cbytes;
    if (palette.length === 1) {
      this.reserve(1 + cb);
      this.tiles[this.used++] = 1;
      this.cpixel(palette[0]!);
      return;
    }
    if (palette.length <= 16) {
      const bits = palette.length <= 2 ? 1 : palette.length <= 4 ? 2 : 4;
      const rowBytes = Math.ceil((w * bits) / 8);
      this.reserve(1 + palette.length * cb + rowBytes * h);
      this.tiles[this.used++] = palette.length;
      for (const p of palette) this.cpixel(p);
      const index = new Map<number, number>();
      palette.forEach((p, i) => index.set(p, i));
      for (let row = 0, at = 0; row < h; row++) {
        let byte = 0, filled = 0;
        for (let col = 0; col < w; col++, at++) {
          byte = (byte << bits) | index.get(values[at]!)!;
          filled += bits;
          if (filled === 8) {
            this.tiles[this.used++] = byte;
            byte = 0;
            filled = 0;
          }
        }
        if (filled > 0) this.tiles[this.used++] = byte << (8 - filled);
      }
      return;
    }
    // plain RLE costs a CPIXEL and at least one length byte a run
    if (runs * (cb + 1) < n * cb) {
      this.reserve(1 + runs * (cb + 1) + Math.ceil(n / 255));
      this.tiles[this.used++] = 128;
      let i = 0;
      while (i < n) {
        const v = values[i]!;
        let j = i + 1;
        while (j < n && values[j] === v) j++;
        this.cpixel(v);
        let left = j - i - 1;
        while (left >= 255) {
          this.tiles[this.used++] = 255;
          left -= 255;
        }
        this.tiles[this.used++] = left;
        i = j;
      }
      return;
    }
    this.reserve(1 + n * cb);
    this.tiles[this.used++] = 0;
    for (let i = 0; i < n; i++) this.cpixel(values[i]!);
  }

  private cpixel(v: number): void {
    const whole = this.whole;
    this.packer.put(v, whole, 0);
    for (let b = 0; b < this.cbytes; b++) this.tiles[this.used++] = whole[this.coffset + b]!;
  }

  private reserve(n: number): void {
    if (this.used + n <= this.tiles.length) return;
    const bigger = Buffer.alloc(Math.max(this.tiles.length * 2, this.used + n));
    this.tiles.copy(bigger, 0, 0, this.used);
    this.tiles = bigger;
  }
}

/** RFC 6143 §7.7.6: a CPIXEL is 3 bytes when the colours of a 32-bit true-colour pixel of depth <= 24 fit in its low or high 3 bytes. */
export function cpixelLayout(f: PixelFormat): { bytes: number; offset: number } {
  const bpp = f.bitsPerPixel / 8;
  if (f.bitsPerPixel !== 32 || !f.trueColour || f.depth > 24) return { bytes: bpp, offset: 0 };
  const mask = ((f.redMax * 2 ** f.redShift) | (f.greenMax * 2 ** f.greenShift) | (f.blueMax * 2 ** f.blueShift)) >>> 0;
  const fitsLow = mask <= 0xffffff;
  const fitsHigh = (mask & 0xff) === 0;
  if (fitsLow) return { bytes: 3, offset: f.bigEndian ? 1 : 0 };
  if (fitsHigh) return { bytes: 3, offset: f.bigEndian ? 0 : 1 };
  return { bytes: 4, offset: 0 };
}
