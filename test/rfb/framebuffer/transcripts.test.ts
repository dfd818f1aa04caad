/**
 * The decoder on byte transcripts recorded from real servers (`test/fixtures/rfb/updates/`, made
 * by `record-updates.ts`): TigerVNC Xvnc showing a painted window that then moves, in every
 * encoding Porthole asks for and three pixel formats, and QEMU's VGA console in Raw, Hextile,
 * ZRLE and Tight. Ground truth: for Xvnc, the colours `paint.py` painted, and every encoding
 * ending in the same framebuffer as Raw (lossless ones exactly; JPEG and 16-bit formats within
 * their loss); for QEMU, the monitor's screendump of the area. Each transcript also decodes the
 * same fed byte by byte and in random splits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RfbDecoder } from '../../../src/rfb/framebuffer/decoder.ts';
import type { CursorShape, Framebuffer, Rect } from '../../../src/rfb/framebuffer/types.ts';
import { chunksOf, loadUpdateTranscript, updateTranscriptNames, type UpdateTranscript } from '../../fixtures/rfb/update-transcript.ts';
import { at } from './messages.ts';

interface Decoded {
  /** The screen once every pixel had arrived (the whole-screen request answered). */
  first: Uint8Array | null;
  final: Framebuffer;
  encodings: Set<number>;
  updates: number;
  cursor: CursorShape | null;
}

/** Replays `t` split as `split` says; notes the screen when the first whole-screen answer is in. */
export function replay(t: UpdateTranscript, split: (b: Buffer) => Buffer[] = (b) => [b]): Decoded {
  const encodings = new Set<number>();
  let first: Uint8Array | null = null;
  let updates = 0;
  let covered: Uint8Array | null = null;
  let missing = 0;
  const d: RfbDecoder = new RfbDecoder(Buffer.from(t.serverInit, 'hex'), {
    rect: (r: Rect, e: number) => {
      encodings.add(e);
      if (!covered) {
        covered = new Uint8Array(d.framebuffer.width * d.framebuffer.height);
        missing = covered.length;
      }
      for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) {
        const i = y * d.framebuffer.width + x;
        if (!covered[i]) {
          covered[i] = 1;
          missing--;
        }
      }
    },
    update: () => {
      updates++;
      if (!first && covered && missing === 0) first = d.framebuffer.pixels.slice();
    },
  });
  d.setPixelFormat(Buffer.from(t.pixelFormat, 'hex'));
  for (const c of chunksOf(t)) for (const piece of split(c)) d.push(piece);
  assert.equal(d.atMessageBoundary, true, 'the transcript ends between messages');
  return { first, final: d.framebuffer, encodings, updates, cursor: d.cursor };
}

function maxDifference(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Random splits from a fixed seed, so a failure is the same failure next time. */
function randomSplits(seed: number): (b: Buffer) => Buffer[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) & 0x7fffffff);
  return (b) => {
    const out: Buffer[] = [];
    for (let i = 0; i < b.length; ) {
      const n = 1 + (next() % 700);
      out.push(b.subarray(i, i + n));
      i += n;
    }
    return out;
  };
}

const ROOT = [0x33, 0x66, 0xcc, 255];
const RED = [255, 0, 0, 255];
const GREEN = [0, 255, 0, 255];
const gradient = (x: number, y: number) => [(x * 7) & 255, (y * 11) & 255, (x * y) & 255, 255];

/** What `paint.py 48 32` shows with its window at ox, oy. */
function painted(ox: number, oy: number): Array<[number, number, number[]]> {
  return [
    [ox + 5, oy + 3, gradient(5, 3)], [ox + 23, oy + 15, gradient(23, 15)], [ox + 11, oy + 9, gradient(11, 9)],
    [ox + 30, oy + 2, RED], [ox + 47, oy + 7, RED], [ox + 30, oy + 10, GREEN], [ox + 40, oy + 15, GREEN],
    [ox + 10, oy + 25, ROOT], [2, 44, ROOT],
  ];
}

describe('decoder on recorded transcripts', () => {
  const names = updateTranscriptNames();
  const raw = replay(loadUpdateTranscript('tigervnc-raw.json'));

  it('the Raw transcript of Xvnc shows what was painted, before and after the window moved', () => {
    assert.ok(raw.first, 'a whole screen arrived');
    for (const [x, y, colour] of painted(0, 0)) assert.deepEqual(at({ width: 64, pixels: raw.first }, x, y), colour, `before, at ${x},${y}`);
    for (const [x, y, colour] of painted(16, 8)) assert.deepEqual(at(raw.final, x, y), colour, `after, at ${x},${y}`);
  });

  /** The Raw transcript of the same pixel format: what a transcript must decode to. */
  const reference = (name: string) => {
    const format = /-(rgb565|bgr233)\.json$/.exec(name)?.[1];
    return format ? replay(loadUpdateTranscript(`tigervnc-raw-${format}.json`)) : raw;
  };

  for (const name of names.filter((n) => n.startsWith('tigervnc-') && !n.includes('resize'))) {
    const jpeg = name.includes('jpeg');
    it(`${name} decodes to the framebuffer of Raw in its pixel format${jpeg ? ' within JPEG\'s loss' : ''}, however it is split`, () => {
      const t = loadUpdateTranscript(name);
      const whole = replay(t);
      const wanted = t.encodings.find((e) => e !== 1)!;
      assert.ok(whole.encodings.has(wanted), `${name}: rectangles in ${[...whole.encodings]} include encoding ${wanted}`);
      assert.ok(whole.first, 'a whole screen arrived');
      const ref = reference(name);
      const tolerance = jpeg ? 24 : 0;
      assert.ok(maxDifference(whole.first, ref.first!) <= tolerance, `before the move: ${maxDifference(whole.first, ref.first!)}`);
      assert.ok(maxDifference(whole.final.pixels, ref.final.pixels) <= tolerance, `after the move: ${maxDifference(whole.final.pixels, ref.final.pixels)}`);
      // the crosshair of xsetroot -cursor_name: the same shape from Cursor and X Cursor (whose
      // two colours stand for the rich cursor's shades), the same colours in the same format
      assert.deepEqual({ ...whole.cursor, rgba: undefined }, { hotX: 11, hotY: 11, width: 23, height: 24, rgba: undefined });
      const alpha = (c: CursorShape) => c.rgba.filter((_, i) => i % 4 === 3);
      assert.deepEqual(alpha(whole.cursor!), alpha(raw.cursor!));
      if (!name.includes('xcursor')) assert.deepEqual(Buffer.from(whole.cursor!.rgba), Buffer.from(ref.cursor!.rgba));
      for (const split of [(b: Buffer) => [...b].map((_, i) => b.subarray(i, i + 1)), randomSplits(name.length)]) {
        const again = replay(t, split);
        assert.deepEqual(Buffer.from(again.final.pixels), Buffer.from(whole.final.pixels));
        assert.equal(again.updates, whole.updates);
      }
    });
  }

  for (const format of ['rgb565', 'bgr233']) {
    it(`Raw in ${format} is Raw in 24 bits with its channels cut to the format's bits`, () => {
      const r = replay(loadUpdateTranscript(`tigervnc-raw-${format}.json`));
      const bits = format === 'rgb565' ? [5, 6, 5] : [3, 3, 2];
      for (let i = 0; i < r.final.pixels.length; i++) {
        const c = i % 4;
        if (c === 3) continue;
        const max = (1 << bits[c]!) - 1;
        const expected = Math.round((Math.round((raw.final.pixels[i]! * max) / 255) * 255) / max);
        // the server rounds down where a channel does not divide evenly: within one step of the format
        assert.ok(Math.abs(r.final.pixels[i]! - expected) <= Math.ceil(255 / max), `byte ${i}: ${r.final.pixels[i]} vs ${expected}`);
      }
    });
  }

  it('follows an ExtendedDesktopSize from xrandr to the new size and its whole screen', () => {
    const sizes: string[] = [];
    const t = loadUpdateTranscript('tigervnc-resize-zrle.json');
    const d = new RfbDecoder(Buffer.from(t.serverInit, 'hex'), { resize: (w, h) => sizes.push(`${w}x${h}`) });
    d.setPixelFormat(Buffer.from(t.pixelFormat, 'hex'));
    for (const c of chunksOf(t)) d.push(c);
    assert.deepEqual(sizes, ['80x56']);
    for (const [x, y, colour] of painted(0, 0)) assert.deepEqual(at(d.framebuffer, x, y), colour, `at ${x},${y}`);
    assert.deepEqual(at(d.framebuffer, 79, 55), ROOT);
  });

  it('Xvnc sent CopyRect where it was allowed to', () => {
    assert.ok(replay(loadUpdateTranscript('tigervnc-copyrect.json')).encodings.has(1));
  });

  for (const name of names.filter((n) => n.startsWith('qemu-'))) {
    it(`${name} decodes to QEMU's own screendump of the area, however it is split`, () => {
      const t = loadUpdateTranscript(name);
      const truth = t.truth!;
      const rgb = Buffer.from(truth.rgb, 'base64');
      for (const split of [undefined, randomSplits(7), (b: Buffer) => [...b].map((_, i) => b.subarray(i, i + 1))]) {
        const { final, encodings } = replay(t, split);
        assert.ok(encodings.has(t.encodings[0]!), `rectangles in ${[...encodings]}`);
        let wrong = 0;
        for (let y = 0; y < truth.height; y++) for (let x = 0; x < truth.width; x++) {
          const got = at(final, truth.x + x, truth.y + y);
          const o = (y * truth.width + x) * 3;
          if (got[0] !== rgb[o] || got[1] !== rgb[o + 1] || got[2] !== rgb[o + 2] || got[3] !== 255) wrong++;
        }
        assert.equal(wrong, 0, `${wrong} pixels differ from the screendump`);
      }
    });
  }
});
