/**
 * @module rfb/shared/zrle-encoder
 * ZRLE (RFC 6143 §7.7.6) for one viewer of a shared console, so that a browser away from the
 * proxy is not sent raw pixels. One zlib stream per viewer for the whole connection, as the
 * client keeps one inflater: each rectangle's tiles are deflated with a sync flush, so the bytes
 * of one rectangle are complete on their own and the dictionary carries over to the next.
 *
 * In two steps: `tilesOf` reads the framebuffer at once (synchronously, so the pixels are the ones
 * of the damage being sent), `deflate` compresses them on Node's zlib stream, asynchronously (the
 * only way Node's zlib keeps a stream across calls: write, then flush with Z_SYNC_FLUSH, as ws's
 * permessage-deflate does). Deflate is most of a rectangle's cost (measured on a 1024x768 gradient:
 * tiles 10-30 ms, deflate 40-150 ms with pako in JavaScript, node:zlib 2-3x faster and off the event
 * loop, in libuv's pool); the viewer stream holds one update in flight while it runs.
 *
 * Each 64x64 tile is solid (one colour), a packed palette (2 to 16 colours, 1, 2 or 4 bits a
 * pixel), plain RLE when its runs make it smaller than raw, or raw: what screens of text and
 * desktops mostly are, at a few comparisons a pixel. Pixels go as CPIXELs: 3 bytes for a 32-bit
 * true-colour format whose colours fit in 3 of its bytes (noVNC's), whole pixels otherwise.
 */
import { constants, createDeflate, type Deflate } from 'node:zlib';
import type { PixelFormat } from '../framebuffer/types.ts';
import type { PixelPacker } from './pixel-format.ts';

const TILE = 64;

export class ZrleEncoder {
  private readonly stream: Deflate;
  /** What the zlib stream has given since the last flush. */
  private output: Buffer[] = [];
  private outputBytes = 0;
  private closed = false;
  /** The flush under way's reject, so that closing settles it (a closed stream calls no callback). */
  private pending: ((err: Error) => void) | undefined;
  /** Bytes of one CPIXEL (RFC 6143 §7.7.6: 3 for a 32-bit format whose colours fit in 3 bytes). */
  private cbytes = 4;
  /** Right shifts of the pixel value giving each CPIXEL byte, in wire order. */
  private cshifts = [0, 8, 16, 24];
  private tiles = Buffer.alloc(64 * 1024);
  private used = 0;
  private readonly values = new Uint32Array(TILE * TILE);

  constructor(private packer: PixelPacker, level = 6) {
    // big output chunks: each is a round trip from libuv's pool (16 KiB by default: ~100 for a screen)
    this.stream = createDeflate({ level, chunkSize: 128 * 1024 });
    this.stream.on('data', (chunk: Buffer) => {
      this.output.push(chunk);
      this.outputBytes += chunk.length;
    });
    // a zlib failure ends the stream; `deflate` then rejects (its flush callback never says done)
    this.stream.on('error', () => this.close());
    this.setPacker(packer);
  }

  /** The viewer set another pixel format: the same zlib stream goes on (the client keeps one inflater). */
  setPacker(packer: PixelPacker): void {
    this.packer = packer;
    const layout = cpixelLayout(packer.format);
    this.cbytes = layout.bytes;
    // byte i of the whole pixel as `PixelPacker.put` writes it is bits 8i (little endian) or 8(n-1-i) (big endian)
    const n = packer.bytesPerPixel;
    const big = packer.format.bigEndian && n > 1;
    this.cshifts = Array.from({ length: layout.bytes }, (_, b) => 8 * (big ? n - 1 - (layout.offset + b) : layout.offset + b));
  }

  /** The uncompressed ZRLE tiles of rectangle (x, y, w, h) of an RGBA screen `stride` pixels wide, read now. */
  tilesOf(rgba: Uint8Array, stride: number, x: number, y: number, w: number, h: number): Buffer {
    this.used = 0;
    for (let ty = y; ty < y + h; ty += TILE) {
      const th = Math.min(TILE, y + h - ty);
      for (let tx = x; tx < x + w; tx += TILE) this.tile(rgba, stride, tx, ty, Math.min(TILE, x + w - tx), th);
    }
    // a copy: the zlib stream reads it later, and the working buffer is reused by the next rectangle
    return Buffer.from(this.tiles.subarray(0, this.used));
  }

  /**
   * The ZRLE data of tiles from `tilesOf`: u32 length, then the zlib bytes, flushed. Calls must
   * not overlap (the stream's output between a write and its flush is that rectangle's); rejects
   * once the encoder is closed.
   */
  deflate(tiles: Buffer): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('ZRLE encoder closed'));
    return new Promise((resolve, reject) => {
      this.output = [];
      this.outputBytes = 0;
      this.pending = reject;
      this.stream.write(tiles);
      this.stream.flush(constants.Z_SYNC_FLUSH, () => {
        this.pending = undefined;
        if (this.closed) return reject(new Error('ZRLE encoder closed'));
        const out = Buffer.allocUnsafe(4 + this.outputBytes);
        out.writeUInt32BE(this.outputBytes, 0);
        let o = 4;
        for (const c of this.output) {
          c.copy(out, o);
          o += c.length;
        }
        this.output = [];
        this.outputBytes = 0;
        resolve(out);
      });
    });
  }

  /** Frees the zlib stream (the viewer is gone). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.close();
    this.pending?.(new Error('ZRLE encoder closed'));
    this.pending = undefined;
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
    const t = this.tiles;
    let o = this.used;
    t[o++] = 0;
    // raw tiles are most of a changing screen: the CPIXEL bytes written here, not a call a pixel
    const [s0 = 0, s1 = 0, s2 = 0, s3 = 0] = this.cshifts;
    if (cb === 3) for (let i = 0; i < n; i++) { const v = values[i]!; t[o++] = v >>> s0; t[o++] = v >>> s1; t[o++] = v >>> s2; }
    else if (cb === 1) for (let i = 0; i < n; i++) t[o++] = values[i]! >>> s0;
    else if (cb === 2) for (let i = 0; i < n; i++) { const v = values[i]!; t[o++] = v >>> s0; t[o++] = v >>> s1; }
    else for (let i = 0; i < n; i++) { const v = values[i]!; t[o++] = v >>> s0; t[o++] = v >>> s1; t[o++] = v >>> s2; t[o++] = v >>> s3; }
    this.used = o;
  }

  private cpixel(v: number): void {
    for (const s of this.cshifts) this.tiles[this.used++] = v >>> s;
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
