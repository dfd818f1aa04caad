/**
 * @module test/rfb/framebuffer/encoders
 * Small encoders of ZRLE and Tight rectangles for the decoder's synthetic tests, written from
 * the specifications rather than from the decoders: one zlib stream per `ZlibWriter` (pako's
 * deflate, flushed with Z_SYNC_FLUSH after each rectangle as servers do), Tight's compact length,
 * the Gradient filter's forward direction. Pixels are RGB triples; CPIXEL and TPIXEL are R G B
 * (Porthole's own pixel format).
 */
import pako from 'pako';
import { encode as encodeJpeg } from 'jpeg-js';
import { rect } from './messages.ts';

export type Rgb = [number, number, number];

export class ZlibWriter {
  private readonly deflate = new pako.Deflate({ level: 6 });
  private out: Uint8Array[] = [];

  constructor() {
    this.deflate.onData = (chunk) => this.out.push(chunk as Uint8Array);
  }

  /** `data` compressed and flushed: one rectangle's part of the stream. */
  part(data: Uint8Array): Buffer {
    this.out = [];
    this.deflate.push(data, pako.constants.Z_SYNC_FLUSH);
    return Buffer.concat(this.out);
  }
}

function rgbBytes(pixels: Rgb[]): Buffer {
  return Buffer.from(pixels.flat());
}

/** A ZRLE rectangle whose tiles are all Raw (subencoding 0); `pixel(x, y)` gives the colours. */
export function zrleRect(z: ZlibWriter, x: number, y: number, w: number, h: number, pixel: (x: number, y: number) => Rgb): Buffer {
  const parts: Buffer[] = [];
  for (let ty = 0; ty < h; ty += 64) {
    for (let tx = 0; tx < w; tx += 64) {
      parts.push(Buffer.from([0]));
      const tile: Rgb[] = [];
      for (let yy = ty; yy < Math.min(h, ty + 64); yy++) for (let xx = tx; xx < Math.min(w, tx + 64); xx++) tile.push(pixel(xx, yy));
      parts.push(rgbBytes(tile));
    }
  }
  const data = z.part(Buffer.concat(parts));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return rect(x, y, w, h, 16, Buffer.concat([length, data]));
}

export function compactLength(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([(n & 0x7f) | 0x80, n >> 7]);
  return Buffer.from([(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14]);
}

/** Tight data after the filter: raw when under 12 bytes, else a compact length and the stream's part. */
function tightData(z: ZlibWriter, data: Buffer): Buffer {
  if (data.length < 12) return data;
  const part = z.part(data);
  return Buffer.concat([compactLength(part.length), part]);
}

export function tightFill(x: number, y: number, w: number, h: number, colour: Rgb, resets = 0): Buffer {
  return rect(x, y, w, h, 7, Buffer.from([0x80 | resets, ...colour]));
}

/** Basic compression, Copy filter (implicit), on stream `n`. */
export function tightCopy(z: ZlibWriter, n: number, x: number, y: number, w: number, h: number, pixel: (x: number, y: number) => Rgb, resets = 0): Buffer {
  const px: Rgb[] = [];
  for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) px.push(pixel(xx, yy));
  return rect(x, y, w, h, 7, Buffer.concat([Buffer.from([(n << 4) | resets]), tightData(z, rgbBytes(px))]));
}

/** Basic compression, Palette filter: `index(x, y)` into `palette`. */
export function tightPalette(z: ZlibWriter, n: number, x: number, y: number, w: number, h: number, palette: Rgb[], index: (x: number, y: number) => number, resets = 0): Buffer {
  let data: Buffer;
  if (palette.length === 2) {
    const rowBytes = Math.ceil(w / 8);
    data = Buffer.alloc(rowBytes * h);
    for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) if (index(xx, yy)) data[yy * rowBytes + (xx >> 3)]! |= 0x80 >> (xx & 7);
  } else {
    data = Buffer.alloc(w * h);
    for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) data[yy * w + xx] = index(xx, yy);
  }
  const head = Buffer.from([((n | 4) << 4) | resets, 1, palette.length - 1, ...palette.flat()]);
  return rect(x, y, w, h, 7, Buffer.concat([head, tightData(z, data)]));
}

/** Basic compression, Gradient filter: each channel minus left + above - above-left, clamped. */
export function tightGradient(z: ZlibWriter, n: number, x: number, y: number, w: number, h: number, pixel: (x: number, y: number) => Rgb, resets = 0): Buffer {
  const data = Buffer.alloc(w * h * 3);
  const at = (xx: number, yy: number, c: number) => (xx < 0 || yy < 0 ? 0 : pixel(xx, yy)[c]!);
  for (let yy = 0; yy < h; yy++) {
    for (let xx = 0; xx < w; xx++) {
      for (let c = 0; c < 3; c++) {
        const predicted = Math.min(255, Math.max(0, at(xx - 1, yy, c) + at(xx, yy - 1, c) - at(xx - 1, yy - 1, c)));
        data[(yy * w + xx) * 3 + c] = (pixel(xx, yy)[c]! - predicted) & 255;
      }
    }
  }
  return rect(x, y, w, h, 7, Buffer.concat([Buffer.from([((n | 4) << 4) | resets, 2]), tightData(z, data)]));
}

export function tightJpeg(x: number, y: number, w: number, h: number, pixel: (x: number, y: number) => Rgb, quality = 95): Buffer {
  const rgba = Buffer.alloc(w * h * 4);
  for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) rgba.set([...pixel(xx, yy), 255], (yy * w + xx) * 4);
  const jpeg = encodeJpeg({ width: w, height: h, data: rgba }, quality).data;
  return rect(x, y, w, h, 7, Buffer.concat([Buffer.from([0x90]), compactLength(jpeg.length), jpeg]));
}
