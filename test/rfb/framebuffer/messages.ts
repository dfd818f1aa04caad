/**
 * @module test/rfb/framebuffer/messages
 * Builders of server-to-client RFB messages for the decoder's tests: ServerInit, a
 * FramebufferUpdate from rectangles, and pixels in a given format.
 */
import { encodePixelFormat } from '../../../src/rfb/framebuffer/pixel-format.ts';
import type { PixelFormat } from '../../../src/rfb/framebuffer/types.ts';

export function serverInit(width: number, height: number, pf: PixelFormat, name = 'test'): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(24 + n.length);
  b.writeUInt16BE(width, 0);
  b.writeUInt16BE(height, 2);
  encodePixelFormat(pf).copy(b, 4);
  b.writeUInt32BE(n.length, 20);
  n.copy(b, 24);
  return b;
}

export function rect(x: number, y: number, w: number, h: number, encoding: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(x, 0);
  head.writeUInt16BE(y, 2);
  head.writeUInt16BE(w, 4);
  head.writeUInt16BE(h, 6);
  head.writeInt32BE(encoding, 8);
  return Buffer.concat([head, body]);
}

export function update(rects: Buffer[], count = rects.length): Buffer {
  const head = Buffer.from([0, 0, count >> 8, count & 255]);
  return Buffer.concat([head, ...rects]);
}

/** One pixel of `pf` from 8-bit R G B. */
export function pixel(pf: PixelFormat, r: number, g: number, b: number): Buffer {
  const scale = (v: number, max: number) => Math.round((v * max) / 255);
  const v = ((scale(r, pf.redMax) << pf.redShift) | (scale(g, pf.greenMax) << pf.greenShift) | (scale(b, pf.blueMax) << pf.blueShift)) >>> 0;
  const bytes = pf.bitsPerPixel / 8;
  const out = Buffer.alloc(bytes);
  if (bytes === 1) out[0] = v;
  else if (bytes === 2) (pf.bigEndian ? out.writeUInt16BE(v) : out.writeUInt16LE(v));
  else (pf.bigEndian ? out.writeUInt32BE(v) : out.writeUInt32LE(v));
  return out;
}

/** RGBA at x, y of a framebuffer. */
export function at(fb: { width: number; pixels: Uint8Array }, x: number, y: number): [number, number, number, number] {
  const o = (y * fb.width + x) * 4;
  return [fb.pixels[o]!, fb.pixels[o + 1]!, fb.pixels[o + 2]!, fb.pixels[o + 3]!];
}

/** Feeds `stream` to `push` one byte at a time. */
export function byteByByte(stream: Buffer, push: (b: Buffer) => void): void {
  for (let i = 0; i < stream.length; i++) push(stream.subarray(i, i + 1));
}
