/**
 * @module rfb/screenshot
 * A framebuffer (`framebuffer/types.ts`, RGBA) as a PNG, optionally scaled down to a width with
 * the aspect ratio kept. The scaling averages the area of the screen each output pixel covers
 * (partial source pixels weighted by how much of them it covers), so thin lines and text fade
 * in proportion instead of vanishing as with nearest-neighbour sampling; it never scales up.
 *
 * The PNG is RGB (a VNC screen has no transparency: alpha is always 255, so it is left out, a
 * quarter of the bytes to compress), every row filtered with Sub, at zlib level 6. The filtering
 * runs here, on the caller's turn; the compression runs in libuv's thread pool (pngjs's packer
 * streams through `zlib.createDeflate`), so a screenshot holds the event loop, and with it every
 * console's relay, only for the filtering. Measured on a 1280x800 painted screen (bench/screenshot
 * and a filter sweep): pngjs's default adaptive filter (all five per row) took 108 ms, most of it
 * on the event loop, for 8 KiB; Sub takes 17 ms for 16 KiB; no filter 25 ms for 466 KiB.
 */
import { PNG } from 'pngjs';
import { GatewayError } from '../errors.ts';
import type { Framebuffer } from './framebuffer/types.ts';

/** The narrowest screenshot: below this a picture of a screen shows nothing. */
export const MIN_SCREENSHOT_WIDTH = 16;

export interface EncodedScreenshot {
  readonly png: Buffer;
  readonly width: number;
  readonly height: number;
}

/** The size a screenshot of `fb` has for a requested `width`: no wider than the screen, the aspect ratio kept. */
export function scaledSize(fb: Pick<Framebuffer, 'width' | 'height'>, width?: number): { width: number; height: number } {
  if (width === undefined || width >= fb.width) return { width: fb.width, height: fb.height };
  if (!Number.isInteger(width) || width < MIN_SCREENSHOT_WIDTH) {
    throw new GatewayError('BAD_REQUEST', `screenshot width ${width}: expected an integer of at least ${MIN_SCREENSHOT_WIDTH}`, { status: 400, clientMessage: `Invalid width: expected an integer of at least ${MIN_SCREENSHOT_WIDTH}` });
  }
  return { width, height: Math.max(1, Math.round((fb.height * width) / fb.width)) };
}

/**
 * What each output column (or row) takes from the source: for output `i`, the source span
 * `[i * ratio, (i + 1) * ratio)`, as the first source index and the weight of each source pixel
 * in it (the weights of one output add up to 1).
 */
interface Taps {
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly weights: Float32Array;
  /** Offset of output i's weights in `weights`. */
  readonly offset: Int32Array;
}

function taps(source: number, target: number): Taps {
  const ratio = source / target;
  const first = new Int32Array(target);
  const count = new Int32Array(target);
  const offset = new Int32Array(target);
  const list: number[] = [];
  for (let i = 0; i < target; i++) {
    const start = i * ratio;
    const end = Math.min(source, (i + 1) * ratio);
    const a = Math.floor(start);
    const b = Math.min(source, Math.ceil(end - 1e-9));
    first[i] = a;
    count[i] = b - a;
    offset[i] = list.length;
    for (let s = a; s < b; s++) list.push((Math.min(end, s + 1) - Math.max(start, s)) / ratio);
  }
  return { first, count, weights: Float32Array.from(list), offset };
}

/**
 * `fb`'s pixels averaged down to `width` x `height`, as RGB (3 bytes a pixel). Separable: the
 * rows are scaled across into a float buffer, then its columns down; the source is read once.
 */
export function scaleRgb(fb: Framebuffer, width: number, height: number): Buffer {
  const sw = fb.width;
  const sh = fb.height;
  const src = fb.pixels;
  const out = Buffer.allocUnsafe(width * height * 3);
  if (width === sw && height === sh) {
    for (let i = 0, o = 0, n = sw * sh * 4; i < n; i += 4, o += 3) {
      out[o] = src[i]!;
      out[o + 1] = src[i + 1]!;
      out[o + 2] = src[i + 2]!;
    }
    return out;
  }
  const across = taps(sw, width);
  const down = taps(sh, height);
  // rows scaled across: sh rows of width pixels, RGB floats
  const mid = new Float32Array(sh * width * 3);
  for (let y = 0; y < sh; y++) {
    const row = y * sw * 4;
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const w0 = across.offset[x]!;
      let s = row + across.first[x]! * 4;
      for (let k = 0, n = across.count[x]!; k < n; k++, s += 4) {
        const w = across.weights[w0 + k]!;
        r += src[s]! * w;
        g += src[s + 1]! * w;
        b += src[s + 2]! * w;
      }
      const m = (y * width + x) * 3;
      mid[m] = r;
      mid[m + 1] = g;
      mid[m + 2] = b;
    }
  }
  const stride = width * 3;
  for (let y = 0; y < height; y++) {
    const w0 = down.offset[y]!;
    const firstRow = down.first[y]!;
    const n = down.count[y]!;
    const o = y * stride;
    for (let c = 0; c < stride; c++) {
      let v = 0;
      for (let k = 0; k < n; k++) v += mid[(firstRow + k) * stride + c]! * down.weights[w0 + k]!;
      out[o + c] = Math.min(255, Math.round(v));
    }
  }
  return out;
}

/** `fb` as a PNG, scaled down to `width` when it is given and narrower than the screen. */
export async function encodeScreenshot(fb: Framebuffer, width?: number): Promise<EncodedScreenshot> {
  const size = scaledSize(fb, width);
  const rgb = scaleRgb(fb, size.width, size.height);
  const png = new PNG({ width: size.width, height: size.height, colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 6, deflateStrategy: 0, filterType: 1 });
  png.data = rgb;
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const stream = png.pack();
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  return { png: Buffer.concat(chunks), width: size.width, height: size.height };
}
