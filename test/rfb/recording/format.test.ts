import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeKeyframe, encodeHeader, encodeKeyframe, encodeRecord, RecordingFormatError, RecordingReader, RecordType } from '../../../src/rfb/recording/format.ts';

const header = { format: 1, kind: 'recording' as const, recordingId: 'r1', startedAt: 1000, serverInit: Buffer.from('init').toString('base64') };

function file(): Buffer {
  return Buffer.concat([encodeHeader(header), encodeRecord(RecordType.SERVER, 5, Buffer.from('abc')), encodeRecord(RecordType.CLIENT, 7, Buffer.from('de')), encodeRecord(RecordType.END, 9, Buffer.alloc(0))]);
}

function readAll(r: RecordingReader): Array<{ type: number; time: number; bytes: string }> {
  const out = [];
  for (let e; (e = r.next()); ) out.push({ type: e.type, time: e.time, bytes: e.bytes.toString() });
  return out;
}

describe('recording format', () => {
  it('reads back header and records, pushed a byte at a time', () => {
    const bytes = file();
    const r = new RecordingReader();
    const seen = [];
    for (const b of bytes) {
      r.push(Buffer.from([b]));
      seen.push(...readAll(r));
    }
    assert.equal(r.header?.recordingId, 'r1');
    assert.deepEqual(seen, [
      { type: RecordType.SERVER, time: 5, bytes: 'abc' },
      { type: RecordType.CLIENT, time: 7, bytes: 'de' },
      { type: RecordType.END, time: 9, bytes: '' },
    ]);
    assert.equal(r.pending, 0);
  });

  it('stops before a torn last record', () => {
    const bytes = file();
    const r = new RecordingReader();
    r.push(bytes.subarray(0, bytes.length - 12));
    assert.deepEqual(readAll(r).map((e) => e.bytes), ['abc']);
    assert.ok(r.pending > 0);
  });

  it('refuses bytes that are not a recording', () => {
    const r = new RecordingReader();
    r.push(Buffer.from('RFB 003.008\n and more bytes'));
    assert.throws(() => r.next(), RecordingFormatError);
  });

  it('carries a keyframe offset beyond 4 GiB', () => {
    const k = decodeKeyframe(encodeKeyframe(5 * 2 ** 32 + 7, 6 * 2 ** 32, Buffer.from('snap')));
    assert.equal(k.recordOffset, 5 * 2 ** 32 + 7);
    assert.equal(k.streamOffset, 6 * 2 ** 32);
    assert.equal(k.snapshot.toString(), 'snap');
  });
});
