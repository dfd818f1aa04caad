/**
 * Property-based fuzz of the RFB decoder against a hostile server: arbitrary bytes after a valid
 * ServerInit in any of several pixel formats, and the recorded transcripts of Xvnc and QEMU
 * (`test/fixtures/rfb/updates/`) with bytes flipped, inserted or cut, each fed in arbitrary
 * chunks. Properties: the decoder either takes the stream or throws a `BACKEND_PROTOCOL`
 * `GatewayError`, nothing else (no RangeError from a typed array, no error of zlib or jpeg-js
 * escaping as itself, no crash of the process); and the outcome does not depend on the chunking
 * (the same framebuffer, or the same error).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isGatewayError } from '../../../src/errors.ts';
import { RfbDecoder } from '../../../src/rfb/framebuffer/decoder.ts';
import { CLIENT_PIXEL_FORMAT } from '../../../src/rfb/framebuffer/pixel-format.ts';
import type { PixelFormat } from '../../../src/rfb/framebuffer/types.ts';
import { chunksOf, loadUpdateTranscript, updateTranscriptNames } from '../../fixtures/rfb/update-transcript.ts';
import { fuzzFile, runs } from '../../support/fuzz-runs.ts';
import { serverInit } from './messages.ts';

/**
 * Warm-up before `fuzzFile` reads resident memory: a few hundred decodes of every transcript, so
 * that what the file measures is growth, not the allocator's first reach (native zlib inflaters'
 * windows, screens of up to 640x480 allocated and freed by the thousand).
 */
function warmUp(): void {
  let seed = 1;
  for (const name of updateTranscriptNames()) {
    const t = loadUpdateTranscript(name);
    const stream = Buffer.concat(chunksOf(t));
    for (let i = 0; i < 300; i++) {
      const s = Buffer.from(stream);
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      s[seed % s.length] = seed & 255;
      const d = new RfbDecoder(Buffer.from(t.serverInit, 'hex'));
      d.setPixelFormat(Buffer.from(t.pixelFormat, 'hex'));
      try {
        d.push(s);
      } catch {
        // only the allocations matter here
      }
    }
  }
}
warmUp();
const { check } = fuzzFile('rfb decoder fuzz');

const FORMATS: PixelFormat[] = [
  CLIENT_PIXEL_FORMAT,
  { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
  { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: false, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 },
];

type Outcome = { ok: true; pixels: string } | { ok: false; message: string };

/** Feeds `stream` cut at `cuts`; the decoder's outcome, or the assertion that it threw something else. */
function outcome(init: Buffer, format: Buffer | null, stream: Uint8Array, cuts: number[]): Outcome {
  const d = new RfbDecoder(init);
  if (format) d.setPixelFormat(format);
  const at = [...new Set(cuts.map((c) => (stream.length ? c % stream.length : 0)))].filter((c) => c > 0).sort((a, b) => a - b);
  let prev = 0;
  try {
    for (const c of [...at, stream.length]) {
      d.push(Buffer.from(stream.subarray(prev, c)));
      prev = c;
    }
  } catch (err) {
    assert.ok(isGatewayError(err) && err.code === 'BACKEND_PROTOCOL', `not a BACKEND_PROTOCOL GatewayError: ${(err as Error)?.stack ?? err}`);
    return { ok: false, message: err.message };
  }
  return { ok: true, pixels: Buffer.from(d.framebuffer.pixels).toString('base64') + d.framebuffer.width };
}

const cuts = fc.array(fc.nat(), { maxLength: 12 });

describe('RfbDecoder fuzz', () => {
  it('takes arbitrary bytes or throws BACKEND_PROTOCOL, whatever the chunking', () => {
    check('arbitrary', fc.property(fc.constantFrom(...FORMATS), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 30 }), fc.uint8Array({ maxLength: 600 }), cuts, (pf, w, h, bytes, c) => {
      const init = serverInit(w, h, pf);
      assert.deepEqual(outcome(init, null, bytes, c), outcome(init, null, bytes, []));
    }), runs(2000, 100_000));
  });

  it('takes arbitrary messages after a FramebufferUpdate head or throws BACKEND_PROTOCOL', () => {
    // a FramebufferUpdate head and rectangle heads in known encodings make the decoders run
    const encodings = [0, 1, 2, 5, 7, 16, -223, -224, -239, -240, -307, -308, -258, -261];
    const rectangle = fc.record({ x: fc.integer({ min: 0, max: 40 }), y: fc.integer({ min: 0, max: 40 }), w: fc.integer({ min: 0, max: 40 }), h: fc.integer({ min: 0, max: 40 }), e: fc.constantFrom(...encodings), body: fc.uint8Array({ maxLength: 200 }) });
    check('rectangles', fc.property(fc.array(rectangle, { minLength: 1, maxLength: 4 }), cuts, (rects, c) => {
      const parts: Buffer[] = [Buffer.from([0, 0, 0, rects.length])];
      for (const r of rects) {
        const head = Buffer.alloc(12);
        head.writeUInt16BE(r.x, 0);
        head.writeUInt16BE(r.y, 2);
        head.writeUInt16BE(r.w, 4);
        head.writeUInt16BE(r.h, 6);
        head.writeInt32BE(r.e, 8);
        parts.push(head, Buffer.from(r.body));
      }
      const stream = Buffer.concat(parts);
      const init = serverInit(48, 48, CLIENT_PIXEL_FORMAT);
      assert.deepEqual(outcome(init, null, stream, c), outcome(init, null, stream, []));
    }), runs(2000, 100_000));
  });

  for (const name of updateTranscriptNames()) {
    it(`takes ${name} with bytes flipped, inserted or cut, or throws BACKEND_PROTOCOL`, () => {
      const t = loadUpdateTranscript(name);
      const stream = Buffer.concat(chunksOf(t));
      const init = Buffer.from(t.serverInit, 'hex');
      const format = Buffer.from(t.pixelFormat, 'hex');
      const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('flip', 'insert', 'cut'), byte: fc.integer({ min: 0, max: 255 }) });
      check(name, fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), cuts, (edits, c) => {
        let s = Buffer.from(stream);
        for (const e of edits) {
          const i = e.at % Math.max(1, s.length);
          if (e.kind === 'flip') s[i] = e.byte;
          else if (e.kind === 'insert') s = Buffer.concat([s.subarray(0, i), Buffer.from([e.byte]), s.subarray(i)]);
          else s = Buffer.concat([s.subarray(0, i), s.subarray(i + 1 + (e.byte % 16))]);
        }
        assert.deepEqual(outcome(init, format, s, c), outcome(init, format, s, []));
      }), runs(150, 5000));
    });
  }
});
