/**
 * @module rfb/framebuffer/hextile
 * Hextile (encoding 5, RFC 6143 §7.7.4): the rectangle in 16x16 tiles, left to right, top to
 * bottom, the last ones smaller. Each tile is a subencoding byte and then either Raw pixels or a
 * background (kept from the tile before when not given), a foreground, and subrectangles packed
 * in two bytes each (x, y; width-1, height-1 in nibbles), coloured or in the foreground. One tile
 * is one unit: decoded once its bytes are all there. A subrectangle outside its tile ends the
 * session.
 */
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';
import type { RawDecoder } from './raw.ts';
import { protocolError } from './screen.ts';

const RAW = 1;
const BACKGROUND = 2;
const FOREGROUND = 4;
const ANY_SUBRECTS = 8;
const SUBRECTS_COLOURED = 16;

export class HextileDecoder implements RectDecoder {
  done = true;
  private rect: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 5 };
  private tile = 0;
  private tiles = 0;
  private across = 0;
  private background = 0xff000000;
  private foreground = 0xff000000;

  constructor(private readonly ctx: DecodeContext, private readonly raw: RawDecoder) {}

  begin(rect: RectHead): void {
    this.ctx.screen.check(rect.x, rect.y, rect.width, rect.height, 'Hextile');
    this.rect = rect;
    this.across = Math.ceil(rect.width / 16);
    this.tiles = this.across * Math.ceil(rect.height / 16);
    this.tile = 0;
    this.done = this.tiles === 0;
  }

  decode(b: Buffer, at: number, end: number): number {
    const { screen, pixel } = this.ctx;
    const bpp = pixel.bytes;
    const have = end - at;
    const sub = b[at]!;
    const col = this.tile % this.across;
    const row = Math.floor(this.tile / this.across);
    const tx = this.rect.x + 16 * col;
    const ty = this.rect.y + 16 * row;
    const tw = Math.min(16, this.rect.width - 16 * col);
    const th = Math.min(16, this.rect.height - 16 * row);
    let size: number;
    if (sub & RAW) {
      size = 1 + tw * th * bpp;
      if (have < size) return -size;
      this.raw.begin({ x: tx, y: ty, width: tw, height: th, encoding: 0 });
      this.raw.decode(b, at + 1, at + size);
    } else {
      let p = at + 1;
      const head = 1 + (sub & BACKGROUND ? bpp : 0) + (sub & FOREGROUND ? bpp : 0) + (sub & ANY_SUBRECTS ? 1 : 0);
      if (have < head) return -head;
      if (sub & BACKGROUND) {
        this.background = pixel.rgba32(b, p);
        p += bpp;
      }
      if (sub & FOREGROUND) {
        this.foreground = pixel.rgba32(b, p);
        p += bpp;
      }
      const count = sub & ANY_SUBRECTS ? b[p++]! : 0;
      const each = sub & SUBRECTS_COLOURED ? bpp + 2 : 2;
      size = head + count * each;
      if (have < size) return -size;
      screen.fill(tx, ty, tw, th, this.background);
      const coloured = (sub & SUBRECTS_COLOURED) !== 0;
      for (let i = 0; i < count; i++, p += each) {
        const q = coloured ? p + bpp : p;
        const colour = coloured ? pixel.rgba32(b, p) : this.foreground;
        const xy = b[q]!;
        const wh = b[q + 1]!;
        const sx = xy >> 4;
        const sy = xy & 15;
        const sw = (wh >> 4) + 1;
        const sh = (wh & 15) + 1;
        if (sx + sw > tw || sy + sh > th) throw protocolError(`Hextile subrectangle ${sw}x${sh} at ${sx},${sy} outside its ${tw}x${th} tile`);
        screen.fill(tx + sx, ty + sy, sw, sh, colour);
      }
    }
    this.tile++;
    this.done = this.tile === this.tiles;
    return size;
  }
}
