/**
 * The framebuffer → PNG step of screenshots (`src/rfb/screenshot.ts`), decoded back with pngjs:
 * the pixels at full size, the area-averaging downscale (a checkerboard halves to grey, which
 * nearest-neighbour sampling cannot give; the mean colour survives an uneven ratio), the width's
 * bounds (never scaled up, at least 16).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { isGatewayError } from '../../src/errors.ts';
import type { Framebuffer } from '../../src/rfb/framebuffer/types.ts';
import { encodeScreenshot, scaledSize } from '../../src/rfb/screenshot.ts';

function framebuffer(width: number, height: number, at: (x: number, y: number) => [number, number, number]): Framebuffer {
  const pixels = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = at(x, y);
      pixels.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return { width, height, pixels, name: 'test' };
}

function decode(png: Buffer): PNG {
  return PNG.sync.read(png);
}

function rgbAt(png: PNG, x: number, y: number): [number, number, number] {
  const i = (y * png.width + x) * 4;
  return [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
}

describe('screenshot PNG', () => {
  it('holds every pixel of the framebuffer at full size', async () => {
    const at = (x: number, y: number): [number, number, number] => [x & 255, y & 255, (x * 7 + y * 3) & 255];
    const fb = framebuffer(300, 200, at);
    const shot = await encodeScreenshot(fb);
    assert.deepEqual([shot.width, shot.height], [300, 200]);
    const png = decode(shot.png);
    assert.deepEqual([png.width, png.height], [300, 200]);
    for (let y = 0; y < 200; y++) for (let x = 0; x < 300; x++) assert.deepEqual(rgbAt(png, x, y), at(x, y), `pixel ${x},${y}`);
  });

  it('averages the area each output pixel covers: a checkerboard halves to grey', async () => {
    const fb = framebuffer(64, 32, (x, y) => ((x + y) % 2 ? [255, 255, 255] : [0, 0, 0]));
    const png = decode((await encodeScreenshot(fb, 32)).png);
    assert.deepEqual([png.width, png.height], [32, 16]);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 32; x++) assert.deepEqual(rgbAt(png, x, y), [128, 128, 128], `pixel ${x},${y}`);
  });

  it('keeps the aspect ratio and the mean colour at an uneven ratio, and sharp halves where they fall on a pixel edge', async () => {
    const fb = framebuffer(100, 60, (x) => (x < 50 ? [200, 0, 0] : [0, 0, 200]));
    const shot = await encodeScreenshot(fb, 30);
    const png = decode(shot.png);
    assert.deepEqual([png.width, png.height], [30, 18]);
    let red = 0;
    let blue = 0;
    for (let y = 0; y < 18; y++) {
      for (let x = 0; x < 30; x++) {
        const [r, , b] = rgbAt(png, x, y);
        red += r;
        blue += b;
      }
      assert.deepEqual(rgbAt(png, 0, y), [200, 0, 0]);
      assert.deepEqual(rgbAt(png, 14, y), [200, 0, 0]);
      assert.deepEqual(rgbAt(png, 15, y), [0, 0, 200]);
      assert.deepEqual(rgbAt(png, 29, y), [0, 0, 200]);
    }
    assert.ok(Math.abs(red / (30 * 18) - 100) < 1, `mean red ${red / (30 * 18)}`);
    assert.ok(Math.abs(blue / (30 * 18) - 100) < 1, `mean blue ${blue / (30 * 18)}`);
  });

  it('blends a stripe narrower than an output pixel in proportion instead of dropping it', async () => {
    // one white column in four: nearest-neighbour keeps it everywhere or nowhere; averaging gives a quarter
    const fb = framebuffer(64, 16, (x) => (x % 4 === 1 ? [255, 255, 255] : [0, 0, 0]));
    const png = decode((await encodeScreenshot(fb, 16)).png);
    for (let x = 0; x < 16; x++) assert.deepEqual(rgbAt(png, x, 0), [64, 64, 64], `pixel ${x}`);
  });

  it('never scales up: a width past the screen gives the screen\'s own size', async () => {
    const fb = framebuffer(40, 20, () => [1, 2, 3]);
    assert.deepEqual(scaledSize(fb, 4000), { width: 40, height: 20 });
    const png = decode((await encodeScreenshot(fb, 4000)).png);
    assert.deepEqual([png.width, png.height], [40, 20]);
  });

  it('refuses a width under 16 or not whole, as a 400', () => {
    const fb = framebuffer(640, 480, () => [0, 0, 0]);
    for (const w of [15, 0, -5, 20.5]) {
      assert.throws(() => scaledSize(fb, w), (e: unknown) => isGatewayError(e) && e.status === 400 && /at least 16/.test(e.clientMessage), String(w));
    }
    assert.deepEqual(scaledSize(fb, 16), { width: 16, height: 12 });
  });
});
