/**
 * Decoder snapshots (recordings' seek): taken at a message boundary, through `encodeSnapshot` and
 * `decodeSnapshot` (as a keyframe file would hold them), restored in a fresh decoder fed the rest
 * of the stream from the snapshot's offset, they decode to exactly what the uninterrupted decoder
 * did. Over every boundary of every recorded transcript, and over synthetic ZRLE and Tight streams
 * whose later rectangles refer back into the zlib window of earlier ones (so a snapshot without
 * the window is shown to be wrong).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../../src/errors.ts';
import { decodeSnapshot, encodeSnapshot, RfbDecoder } from '../../../src/rfb/framebuffer/decoder.ts';
import { CLIENT_PIXEL_FORMAT } from '../../../src/rfb/framebuffer/pixel-format.ts';
import type { DecoderSnapshot } from '../../../src/rfb/framebuffer/types.ts';
import { chunksOf, loadUpdateTranscript, updateTranscriptNames } from '../../fixtures/rfb/update-transcript.ts';
import { type Rgb, tightCopy, tightGradient, tightPalette, ZlibWriter, zrleRect } from './encoders.ts';
import { serverInit, update } from './messages.ts';

/** Decodes `stream` whole, taking a snapshot (through its byte form) at every message boundary. */
function decodeWithSnapshots(init: Buffer, format: Buffer | null, stream: Buffer): { final: RfbDecoder; snapshots: DecoderSnapshot[] } {
  const snapshots: DecoderSnapshot[] = [];
  const take = () => snapshots.push(decodeSnapshot(encodeSnapshot(d.snapshot())));
  const d: RfbDecoder = new RfbDecoder(init, { update: take, bell: take, cutText: take });
  if (format) d.setPixelFormat(format);
  take();
  d.push(stream);
  return { final: d, snapshots };
}

function resumed(s: DecoderSnapshot, stream: Buffer, split = 997): RfbDecoder {
  const d = RfbDecoder.restore(s);
  const rest = stream.subarray(s.offset);
  for (let i = 0; i < rest.length; i += split) d.push(rest.subarray(i, i + split));
  return d;
}

function sameState(a: RfbDecoder, b: RfbDecoder, what: string): void {
  assert.deepEqual([b.framebuffer.width, b.framebuffer.height, b.framebuffer.name], [a.framebuffer.width, a.framebuffer.height, a.framebuffer.name], what);
  assert.ok(Buffer.from(b.framebuffer.pixels).equals(Buffer.from(a.framebuffer.pixels)), `${what}: pixels differ`);
  assert.deepEqual(b.cursor && { ...b.cursor, rgba: Buffer.from(b.cursor.rgba) }, a.cursor && { ...a.cursor, rgba: Buffer.from(a.cursor.rgba) }, `${what}: cursor`);
  assert.equal(b.offset, a.offset);
}

const noise = (seed: number) => (x: number, y: number): Rgb => {
  const h = Math.imul((x * 73856093) ^ (y * 19349663) ^ seed, 2654435761) >>> 0;
  return [h & 255, (h >>> 8) & 255, (h >>> 16) & 255];
};

describe('decoder snapshots', () => {
  for (const name of updateTranscriptNames()) {
    it(`resume ${name} from every message boundary to the same end`, () => {
      const t = loadUpdateTranscript(name);
      const stream = Buffer.concat(chunksOf(t));
      const { final, snapshots } = decodeWithSnapshots(Buffer.from(t.serverInit, 'hex'), Buffer.from(t.pixelFormat, 'hex'), stream);
      assert.ok(snapshots.length >= 3, `${snapshots.length} boundaries`);
      for (const s of snapshots) sameState(final, resumed(s, stream), `${name} from offset ${s.offset}`);
    });
  }

  it('carry the zlib window: a ZRLE rectangle that repeats an earlier one decodes only with it', () => {
    const z = new ZlibWriter();
    const first = update([zrleRect(z, 0, 0, 64, 64, noise(1))]);
    // the same picture again, elsewhere: deflate sends it as back-references into the window
    const again = update([zrleRect(z, 64, 0, 64, 64, noise(1))]);
    assert.ok(again.length < 2000, `the repeat compressed to ${again.length} bytes`);
    const stream = Buffer.concat([first, again]);
    const { final, snapshots } = decodeWithSnapshots(serverInit(128, 64, CLIENT_PIXEL_FORMAT), null, stream);
    const middle = snapshots.find((s) => s.offset === first.length)!;
    sameState(final, resumed(middle, stream), 'from between the rectangles');
    const windowless: DecoderSnapshot = { ...middle, zlib: middle.zlib.map((s) => ({ ...s, window: new Uint8Array(0) })) };
    let same = false;
    try {
      same = Buffer.from(resumed(windowless, stream).framebuffer.pixels).equals(Buffer.from(final.framebuffer.pixels));
    } catch (err) {
      assert.ok(isGatewayError(err) && err.code === 'BACKEND_PROTOCOL');
    }
    assert.equal(same, false, 'a snapshot without the window decodes the same: the test shows nothing');
  });

  it('carry all four Tight streams, across more than 32 KiB of inflated output', () => {
    const z = [new ZlibWriter(), new ZlibWriter(), new ZlibWriter(), new ZlibWriter()];
    const updates: Buffer[] = [];
    for (let round = 0; round < 4; round++) {
      // stream 3 starts anew in round 2 (its reset bit)
      if (round === 2) z[3] = new ZlibWriter();
      updates.push(update([
        tightCopy(z[0]!, 0, 0, 0, 100, 100, noise(round % 2)),
        tightGradient(z[1]!, 1, 100, 0, 60, 60, noise(2 + (round % 2))),
        tightPalette(z[2]!, 2, 100, 60, 60, 40, [[1, 2, 3], [200, 100, 0], [9, 9, 9]], (x, y) => (x * 7 + y * round) % 3),
        tightCopy(z[3]!, 3, 0, 0, 20, 20, noise(round), round === 2 ? 1 << 3 : 0),
      ]));
    }
    const stream = Buffer.concat(updates);
    const { final, snapshots } = decodeWithSnapshots(serverInit(160, 100, CLIENT_PIXEL_FORMAT), null, stream);
    assert.equal(snapshots.length, 5);
    assert.ok(snapshots[3]!.zlib.every((s, i) => i === 0 || s.window.length > 0));
    for (const s of snapshots) sameState(final, resumed(s, stream, 1 + (s.offset % 300)), `from offset ${s.offset}`);
  });

  it('are refused in the middle of a message, and as damaged bytes', () => {
    const d = new RfbDecoder(serverInit(4, 4, CLIENT_PIXEL_FORMAT));
    // bytes of a message not yet whole are no obstacle: the snapshot's offset is before them
    d.push(Buffer.from([0, 0]));
    assert.equal(d.snapshot().offset, 0);
    d.push(Buffer.from([0, 1]));
    assert.throws(() => d.snapshot(), /middle of a message/);
    const good = encodeSnapshot(new RfbDecoder(serverInit(4, 4, CLIENT_PIXEL_FORMAT)).snapshot());
    const headLength = good.readUInt32BE(8);
    const head = JSON.parse(good.subarray(12, 12 + headLength).toString()) as { width: number };
    const withHead = (h: object) => {
      const json = Buffer.from(JSON.stringify(h));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(json.length);
      return Buffer.concat([good.subarray(0, 8), length, json, good.subarray(12 + headLength)]);
    };
    assert.doesNotThrow(() => decodeSnapshot(withHead(head)));
    for (const [what, bad] of [
      ['truncated', good.subarray(0, good.length - 1)],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])])],
      ['no magic', Buffer.from('not a snapshot')],
      ['a negative offset', withHead({ ...head, offset: -1 })],
      ['a size that does not match the pixels', withHead({ ...head, width: 5 })],
    ] as const) {
      assert.throws(() => decodeSnapshot(bad), (e) => isGatewayError(e) && e.code === 'BACKEND_PROTOCOL', what);
    }
  });
});
