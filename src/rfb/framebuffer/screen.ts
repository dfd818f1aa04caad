/**
 * @module rfb/framebuffer/screen
 * The framebuffer as the decoders write it: RGBA pixels with a Uint32Array view for fills, the
 * size, the desktop name. Every rectangle a server names is checked against the screen before
 * a pixel is written: a server that paints outside it is broken or hostile, and the session ends
 * (`BACKEND_PROTOCOL`) rather than writing past the array.
 */
import { GatewayError } from '../../errors.ts';
import type { Framebuffer, Rect } from './types.ts';

/** Bound on each side of the screen: RFB's U16 allows 65535, no real console comes near 16384. */
export const MAX_SCREEN_SIDE = 16384;
/** Bound on the screen's area: 8K UHD (7680x4320, 127 MiB of RGBA), more than any VM console shows. */
export const MAX_SCREEN_PIXELS = 7680 * 4320;

export class Screen implements Framebuffer {
  width: number;
  height: number;
  pixels: Uint8Array;
  /** The same bytes as packed RGBA, for fills and copies of whole pixels. */
  words: Uint32Array;
  name: string;

  constructor(width: number, height: number, name: string, pixels?: Uint8Array) {
    checkSize(width, height);
    this.width = width;
    this.height = height;
    this.name = name;
    this.pixels = pixels ?? blank(width, height);
    if (this.pixels.length !== width * height * 4) throw protocolError(`framebuffer of ${this.pixels.length} bytes for ${width}x${height}`);
    this.words = new Uint32Array(this.pixels.buffer, this.pixels.byteOffset, width * height);
  }

  /** A new size (DesktopSize, ExtendedDesktopSize): the part both sizes share is kept, the rest is black. */
  resize(width: number, height: number): void {
    checkSize(width, height);
    if (width === this.width && height === this.height) return;
    const next = blank(width, height);
    const w = Math.min(width, this.width) * 4;
    for (let y = 0, h = Math.min(height, this.height); y < h; y++) {
      next.set(this.pixels.subarray(y * this.width * 4, y * this.width * 4 + w), y * width * 4);
    }
    this.width = width;
    this.height = height;
    this.pixels = next;
    this.words = new Uint32Array(next.buffer, next.byteOffset, width * height);
  }

  /** Throws unless `r` lies inside the screen. */
  check(x: number, y: number, w: number, h: number, what: string): void {
    if (x + w > this.width || y + h > this.height) {
      throw protocolError(`${what} rectangle ${w}x${h} at ${x},${y} lies outside the ${this.width}x${this.height} screen`);
    }
  }

  fill(x: number, y: number, w: number, h: number, rgba32: number): void {
    const words = this.words;
    for (let row = y, end = y + h; row < end; row++) {
      const at = row * this.width + x;
      words.fill(rgba32, at, at + w);
    }
  }

  /** CopyRect (§7.7.2): source and destination may overlap. */
  copy(sx: number, sy: number, dx: number, dy: number, w: number, h: number): void {
    const words = this.words;
    const stride = this.width;
    if (dy > sy) {
      for (let row = h - 1; row >= 0; row--) words.copyWithin((dy + row) * stride + dx, (sy + row) * stride + sx, (sy + row) * stride + sx + w);
    } else {
      for (let row = 0; row < h; row++) words.copyWithin((dy + row) * stride + dx, (sy + row) * stride + sx, (sy + row) * stride + sx + w);
    }
  }

  /** Writes `w`x`h` RGBA pixels from `src` (rows of `w * 4` bytes) at `x`,`y`. */
  put(x: number, y: number, w: number, h: number, src: Uint8Array, at = 0): void {
    const rowBytes = w * 4;
    for (let row = 0; row < h; row++, at += rowBytes) {
      this.pixels.set(src.subarray(at, at + rowBytes), ((y + row) * this.width + x) * 4);
    }
  }

  /** The whole screen as a plain `Framebuffer` copy (what a caller may keep while decoding goes on). */
  copyOut(): Framebuffer {
    return { width: this.width, height: this.height, pixels: this.pixels.slice(), name: this.name };
  }

  get bounds(): Rect {
    return { x: 0, y: 0, width: this.width, height: this.height };
  }
}

function blank(width: number, height: number): Uint8Array {
  const p = new Uint8Array(width * height * 4);
  new Uint32Array(p.buffer).fill(0xff000000);
  return p;
}

function checkSize(width: number, height: number): void {
  if (width > MAX_SCREEN_SIDE || height > MAX_SCREEN_SIDE || width * height > MAX_SCREEN_PIXELS) throw protocolError(`screen of ${width}x${height} (at most ${MAX_SCREEN_SIDE} a side and ${MAX_SCREEN_PIXELS} pixels)`);
}

/** What a client may be told when the server's stream cannot be decoded: the detail is the log's. */
export const UNDECODABLE_CLIENT_MESSAGE = 'The console sent a screen update Porthole could not decode';

export function protocolError(detail: string): GatewayError {
  return new GatewayError('BACKEND_PROTOCOL', `the VNC server sent garbage: ${detail}`, { status: 502, closeCode: 1011, clientMessage: UNDECODABLE_CLIENT_MESSAGE });
}
