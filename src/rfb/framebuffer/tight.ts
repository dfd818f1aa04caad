/**
 * @module rfb/framebuffer/tight
 * Tight (encoding 7, rfbproto "Tight" as TightVNC, TigerVNC, libvncserver and QEMU send it). A
 * control byte: its low 4 bits reset zlib streams 0-3 before the rectangle, its high 4 the
 * compression. Fill (8): one TPIXEL for the whole rectangle. JPEG (9): a compact length and a
 * JPEG image of exactly the rectangle's size, decoded by `jpeg-js`. Basic (0-7): stream number in
 * bits 0-1, an explicit filter byte when bit 2 is set: Copy (TPIXELs), Palette (2 to 256
 * TPIXELs, then 1-bit rows padded to a byte for 2 colours, else a byte an index) or Gradient
 * (each pixel the difference from left + above - above-left, per channel, clamped); data under
 * 12 bytes comes as it is, longer data as a compact length and that stream's zlib bytes (which
 * must inflate to exactly the data's size). PNG (10) is TightPNG's and never asked for.
 * TPIXEL is 3 bytes R G B for 32-bit depth-24 formats with 8-bit channels, else a whole pixel.
 * One rectangle is one unit, decoded once all its bytes are there.
 */
import { decode as decodeJpeg } from 'jpeg-js';
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';
import type { PixelConverter } from './pixel-format.ts';
import { protocolError } from './screen.ts';

/** TightVNC's TIGHT_MIN_TO_COMPRESS: shorter data is sent uncompressed. */
const MIN_TO_COMPRESS = 12;
/** The compact length has 22 bits. */
const MAX_COMPACT = (1 << 22) - 1;

const Filter = { Copy: 0, Palette: 1, Gradient: 2 } as const;

export class TightDecoder implements RectDecoder {
  done = true;
  private rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 7 };
  private readonly palette = new Uint32Array(256);

  constructor(private readonly ctx: DecodeContext) {}

  begin(rect: RectHead): void {
    this.ctx.screen.check(rect.x, rect.y, rect.width, rect.height, 'Tight');
    this.rect = rect;
    this.done = false;
  }

  decode(b: Buffer, at: number, end: number): number {
    const have = end - at;
    const control = b[at]!;
    const kind = control >> 4;
    const tp = this.ctx.tightPixel;
    const { x, y, width, height } = this.rect;
    if (kind === 8) {
      if (have < 1 + tp.bytes) return -(1 + tp.bytes);
      this.resets(control);
      this.ctx.screen.fill(x, y, width, height, tp.rgba32(b, at + 1));
      return this.finish(1 + tp.bytes);
    }
    if (kind === 9) {
      const len = compactLength(b, at + 1, end);
      if (len.need) return -(1 + len.need);
      const size = 1 + len.bytes + len.value;
      if (have < size) return -size;
      this.resets(control);
      this.jpeg(b.subarray(at + 1 + len.bytes, at + size));
      return this.finish(size);
    }
    if (kind > 9) throw protocolError(`Tight compression control ${kind}`);
    let p = at + 1;
    let filter: number = Filter.Copy;
    let colours = 0;
    if (kind & 4) {
      if (have < 2) return -2;
      filter = b[p++]!;
      if (filter === Filter.Palette) {
        if (have < 3) return -3;
        colours = b[p++]! + 1;
        if (colours < 2) throw protocolError('Tight palette of 1 colour');
        const paletteEnd = p + colours * tp.bytes;
        if (end < paletteEnd) return -(paletteEnd - at);
        p = paletteEnd;
      } else if (filter !== Filter.Copy && filter !== Filter.Gradient) {
        throw protocolError(`Tight filter ${filter}`);
      }
    }
    const rowBytes = colours === 0 ? width * tp.bytes : colours === 2 ? Math.ceil(width / 8) : width;
    const dataSize = rowBytes * height;
    let data: Uint8Array;
    let size: number;
    const stream = kind & 3;
    if (dataSize < MIN_TO_COMPRESS) {
      size = p - at + dataSize;
      if (have < size) return -size;
      this.resets(control);
      data = b.subarray(p, p + dataSize);
    } else {
      const len = compactLength(b, p, end);
      if (len.need) return -(p - at + len.need);
      size = p - at + len.bytes + len.value;
      if (have < size) return -size;
      this.resets(control);
      data = this.ctx.zlib[1 + stream]!.inflate(b.subarray(p + len.bytes, at + size), dataSize);
      if (data.length !== dataSize) throw protocolError(`Tight stream ${stream} inflated to ${data.length} bytes, not ${dataSize}`);
    }
    if (colours > 0) {
      let q = at + 3;
      for (let i = 0; i < colours; i++, q += tp.bytes) this.palette[i] = tp.rgba32(b, q);
      this.paletted(data, colours, rowBytes);
    } else if (filter === Filter.Gradient) {
      this.gradient(data, tp);
    } else {
      const { screen } = this.ctx;
      const stride = screen.width * 4;
      for (let row = 0; row < height; row++) tp.toRgba(data, row * rowBytes, width, screen.pixels, (y + row) * stride + x * 4);
    }
    return this.finish(size);
  }

  private finish(size: number): number {
    this.done = true;
    return size;
  }

  /** The control byte's low bits: those streams start anew with this rectangle. */
  private resets(control: number): void {
    for (let i = 0; i < 4; i++) if (control & (1 << i)) this.ctx.zlib[1 + i]!.reset();
  }

  private paletted(data: Uint8Array, colours: number, rowBytes: number): void {
    const { screen } = this.ctx;
    const { x, y, width, height } = this.rect;
    const words = screen.words;
    const palette = this.palette;
    for (let row = 0; row < height; row++) {
      const dst = (y + row) * screen.width + x;
      const src = row * rowBytes;
      if (colours === 2) {
        for (let col = 0; col < width; col++) words[dst + col] = palette[(data[src + (col >> 3)]! >> (7 - (col & 7))) & 1]!;
      } else {
        for (let col = 0; col < width; col++) {
          const index = data[src + col]!;
          if (index >= colours) throw protocolError(`Tight palette index ${index} of ${colours} colours`);
          words[dst + col] = palette[index]!;
        }
      }
    }
  }

  /** The Gradient filter, per channel of the TPIXEL's format (TightVNC's FilterGradient). */
  private gradient(data: Uint8Array, tp: PixelConverter): void {
    const { screen } = this.ctx;
    const { x, y, width, height } = this.rect;
    const f = tp.format;
    const shifts = [f.redShift, f.greenShift, f.blueShift];
    const maxes = [f.redMax, f.greenMax, f.blueMax];
    const bytes = tp.bytes;
    // the previous row's reconstructed channels, and this row's
    let above = new Int32Array(width * 3);
    let here = new Int32Array(width * 3);
    const words = screen.words;
    for (let row = 0; row < height; row++) {
      for (let col = 0; col < width; col++) {
        const v = tp.value(data, (row * width + col) * bytes);
        let value = 0;
        for (let c = 0; c < 3; c++) {
          const max = maxes[c]!;
          const left = col > 0 ? here[(col - 1) * 3 + c]! : 0;
          const up = above[col * 3 + c]!;
          const upLeft = col > 0 ? above[(col - 1) * 3 + c]! : 0;
          let predicted = left + up - upLeft;
          if (predicted < 0) predicted = 0;
          else if (predicted > max) predicted = max;
          const channel = (predicted + ((v >>> shifts[c]!) & max)) & max;
          here[col * 3 + c] = channel;
          value |= channel << shifts[c]!;
        }
        words[(y + row) * screen.width + x + col] = tp.fromValue(value >>> 0);
      }
      const t = above;
      above = here;
      here = t;
    }
  }

  private jpeg(data: Uint8Array): void {
    const { x, y, width, height } = this.rect;
    let image: { width: number; height: number; data: Uint8Array };
    try {
      image = decodeJpeg(data, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
    } catch (err) {
      throw protocolError(`Tight JPEG does not decode: ${(err as Error).message}`);
    }
    if (image.width !== width || image.height !== height) throw protocolError(`Tight JPEG of ${image.width}x${image.height} in a ${width}x${height} rectangle`);
    this.ctx.screen.put(x, y, width, height, image.data);
  }
}

/** Tight's compact length at `p`: 1 to 3 bytes, 7 bits in each of the first two while the top bit says more; `need` (bytes from `p`) when short. */
function compactLength(b: Buffer, p: number, end: number): { value: number; bytes: number; need: number } {
  let value = 0;
  for (let i = 0; i < 3; i++) {
    if (p + i >= end) return { value: 0, bytes: 0, need: i + 1 };
    const byte = b[p + i]!;
    value |= i === 2 ? byte << 14 : (byte & 0x7f) << (7 * i);
    if (i === 2 || !(byte & 0x80)) {
      if (value > MAX_COMPACT) throw protocolError(`Tight length ${value}`);
      return { value, bytes: i + 1, need: 0 };
    }
  }
  return { value, bytes: 3, need: 0 };
}
