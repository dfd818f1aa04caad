/**
 * @module test/support/painted-screen
 * A TigerVNC Xvnc (640x480) whose root shows a known picture, and the means to compare a
 * screenshot with it: a solid background (`xsetroot -solid`), a smooth gradient and a red square
 * (drawn by `x11-paint.ts`), so every encoding has something to do (solid fills, palettes, many
 * colours for JPEG). Also a PNG decoder and a pixel comparison that reports the first difference.
 */
import { PNG } from 'pngjs';
import { paintRoot } from './x11-paint.ts';
import { startXvnc, type Xvnc } from './xvnc.ts';

/** What the test paints on Xvnc's 640x480 root: background, a smooth gradient, a red square. */
export const BACKGROUND: [number, number, number] = [0x33, 0x66, 0x99];
export const GRADIENT = { x: 40, y: 30, width: 320, height: 180 };
export const SQUARE = { x: 400, y: 250, width: 200, height: 200 };
export const gradientAt = (x: number, y: number): [number, number, number] => [Math.floor((x * 255) / 639), Math.floor((y * 255) / 479), 128];
export const inside = (r: { x: number; y: number; width: number; height: number }, x: number, y: number) => x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
export function painted(x: number, y: number): [number, number, number] {
  if (inside(GRADIENT, x, y)) return gradientAt(x, y);
  if (inside(SQUARE, x, y)) return [0xe0, 0x10, 0x10];
  return BACKGROUND;
}

/** Starts an Xvnc (640x480) painted as `painted` says. */
export async function paintedXvnc(opts: { password?: string; geometry?: string } = {}): Promise<Xvnc> {
  const x = await startXvnc({ colour: '#336699', ...(opts.password !== undefined ? { password: opts.password, securityTypes: 'VncAuth' } : {}), ...(opts.geometry ? { geometry: opts.geometry } : {}) });
  try {
    await paintRoot(x.display, GRADIENT, gradientAt);
    await paintRoot(x.display, SQUARE, () => [0xe0, 0x10, 0x10]);
  } catch (err) {
    await x.stop();
    throw err;
  }
  return x;
}

export function decodePng(png: Buffer): PNG {
  return PNG.sync.read(png);
}

/** Pixels of `png` that differ from `expected`, and the largest and mean channel difference. */
export function compare(png: PNG, expected: (x: number, y: number) => readonly number[]): { differing: number; maxError: number; meanError: number; first: string | null } {
  let differing = 0;
  let maxError = 0;
  let sum = 0;
  let first: string | null = null;
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const i = (y * png.width + x) * 4;
      const e = expected(x, y);
      let d = 0;
      for (let c = 0; c < 3; c++) {
        const err = Math.abs(png.data[i + c]! - e[c]!);
        sum += err;
        d = Math.max(d, err);
      }
      if (d > 0) {
        differing++;
        first ??= `(${x},${y}) is ${[...png.data.subarray(i, i + 3)]}, expected ${e.slice(0, 3)}`;
      }
      maxError = Math.max(maxError, d);
    }
  }
  return { differing, maxError, meanError: sum / (png.width * png.height * 3), first };
}

