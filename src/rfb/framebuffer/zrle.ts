/**
 * @module rfb/framebuffer/zrle
 * ZRLE (encoding 16, RFC 6143 §7.7.6): a U32 length and that much of the connection's one zlib
 * stream (`zlib-stream.ts`), which inflates to the rectangle in 64x64 tiles. A tile is a
 * subencoding byte and then Raw CPIXELs (0), one solid CPIXEL (1), a packed palette of 2 to 16
 * colours (1, 2 or 4 bits a pixel, rows padded to a byte), plain RLE (128: CPIXEL and a run
 * length in bytes of 255 plus a last one), or palette RLE (130-255: a palette of up to 127, then
 * indices, the top bit saying a run length follows). The whole rectangle is one unit: it is
 * decoded once all its compressed bytes are there. Every read of the inflated data is checked
 * against its end, every run against the tile, every palette index against the palette.
 */
import { MAX_ENCODED } from '../server-messages.ts';
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';
import { protocolError } from './screen.ts';

const TILE = 64;

export class ZrleDecoder implements RectDecoder {
  done = true;
  private rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 16 };
  private readonly palette = new Uint32Array(128);
  /** One tile's pixels as packed RGBA, written to the screen row by row. */
  private readonly tilePixels = new Uint32Array(TILE * TILE);

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.ctx.screen.check(rect.x, rect.y, rect.width, rect.height, 'ZRLE');
    this.rect = rect;
    this.done = false;
  }

  decode(b: Buffer, at: number, end: number): number {
    if (end - at < 4) return -4;
    const length = b.readUInt32BE(at);
    if (length > MAX_ENCODED) throw protocolError(`ZRLE data of ${length} bytes (at most ${MAX_ENCODED})`);
    if (end - at < 4 + length) return -(4 + length);
    const { x, y, width, height } = this.rect;
    const cp = this.ctx.compactPixel.bytes;
    const tiles = Math.ceil(width / TILE) * Math.ceil(height / TILE);
    // the most a rectangle's tiles can take: a subencoding byte and a 127-colour palette each, and
    // per pixel a CPIXEL and a run-length byte (plain RLE of single pixels)
    const bound = tiles * (1 + 127 * cp) + width * height * (cp + 1);
    const data = this.ctx.zlib[0]!.inflate(b.subarray(at + 4, at + 4 + length), bound);
    let p = 0;
    for (let ty = 0; ty < height; ty += TILE) {
      const th = Math.min(TILE, height - ty);
      for (let tx = 0; tx < width; tx += TILE) {
        const tw = Math.min(TILE, width - tx);
        p = this.tile(data, p, x + tx, y + ty, tw, th);
      }
    }
    this.done = true;
    return 4 + length;
  }

  /** Decodes one tile from `data` at `p`; returns where the next one starts. */
  private tile(data: Buffer, p: number, x: number, y: number, w: number, h: number): number {
    const { screen, compactPixel: cpx } = this.ctx;
    const cp = cpx.bytes;
    const n = w * h;
    const short = () => protocolError(`ZRLE tile at ${x},${y} runs past its data`);
    if (p >= data.length) throw short();
    const sub = data[p++]!;
    if (sub === 0) {
      if (p + n * cp > data.length) throw short();
      const stride = screen.width * 4;
      for (let row = 0; row < h; row++) cpx.toRgba(data, p + row * w * cp, w, screen.pixels, (y + row) * stride + x * 4);
      return p + n * cp;
    }
    if (sub === 1) {
      if (p + cp > data.length) throw short();
      screen.fill(x, y, w, h, cpx.rgba32(data, p));
      return p + cp;
    }
    const out = this.tilePixels;
    const palette = this.palette;
    if (sub >= 2 && sub <= 16) {
      if (p + sub * cp > data.length) throw short();
      for (let i = 0; i < sub; i++, p += cp) palette[i] = cpx.rgba32(data, p);
      const bits = sub === 2 ? 1 : sub <= 4 ? 2 : 4;
      const rowBytes = Math.ceil((w * bits) / 8);
      if (p + rowBytes * h > data.length) throw short();
      const mask = (1 << bits) - 1;
      for (let row = 0; row < h; row++) {
        let q = p + row * rowBytes;
        let byte = 0;
        let left = 0;
        for (let col = 0; col < w; col++) {
          if (left === 0) {
            byte = data[q++]!;
            left = 8;
          }
          left -= bits;
          const index = (byte >> left) & mask;
          if (index >= sub) throw protocolError(`ZRLE palette index ${index} of ${sub} colours`);
          out[row * w + col] = palette[index]!;
        }
      }
      this.put(x, y, w, h);
      return p + rowBytes * h;
    }
    if (sub === 128 || sub >= 130) {
      const paletteSize = sub === 128 ? 0 : sub - 128;
      if (p + paletteSize * cp > data.length) throw short();
      for (let i = 0; i < paletteSize; i++, p += cp) palette[i] = cpx.rgba32(data, p);
      let i = 0;
      while (i < n) {
        let colour: number;
        let run = 1;
        if (paletteSize === 0) {
          if (p + cp > data.length) throw short();
          colour = cpx.rgba32(data, p);
          p += cp;
          run = 0;
        } else {
          if (p >= data.length) throw short();
          const index = data[p++]!;
          if ((index & 127) >= paletteSize) throw protocolError(`ZRLE palette index ${index & 127} of ${paletteSize} colours`);
          colour = palette[index & 127]!;
          if (index < 128) {
            out[i++] = colour;
            continue;
          }
          run = 0;
        }
        // run length: bytes of 255 and a last one below 255, plus one
        let byte: number;
        do {
          if (p >= data.length) throw short();
          byte = data[p++]!;
          run += byte;
        } while (byte === 255);
        run += 1;
        if (i + run > n) throw protocolError(`ZRLE run of ${run} pixels past its ${w}x${h} tile`);
        out.fill(colour, i, i + run);
        i += run;
      }
      this.put(x, y, w, h);
      return p;
    }
    throw protocolError(`ZRLE tile subencoding ${sub}`);
  }

  private put(x: number, y: number, w: number, h: number): void {
    const words = this.ctx.screen.words;
    const stride = this.ctx.screen.width;
    for (let row = 0; row < h; row++) words.set(this.tilePixels.subarray(row * w, row * w + w), (y + row) * stride + x);
  }
}
