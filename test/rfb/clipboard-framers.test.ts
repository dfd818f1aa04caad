/**
 * Byte transcripts of the clipboard policy's framers (`src/rfb/client-messages.ts`,
 * `server-messages.ts`, `clipboard-policy.ts`): every message kind and every rectangle encoding
 * the proxy lets a client ask for, built here by hand from the specifications (RFC 6143, rfbproto,
 * the Tight and Hextile layouts), fed whole, one byte at a time and split at every byte boundary;
 * the output must be the input less the cut-text messages, byte for byte.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cutTextFilters, EXTENDED_CLIPBOARD } from '../../src/rfb/clipboard-policy.ts';
import { ClientMessages } from '../../src/rfb/client-messages.ts';
import { ServerMessages } from '../../src/rfb/server-messages.ts';
import { isGatewayError } from '../../src/errors.ts';

/** A message of the transcript and whether the policy lets it through (or what replaces it). */
interface Part {
  readonly bytes: Buffer;
  readonly out: Buffer | null;
}
const keep = (bytes: Buffer): Part => ({ bytes, out: bytes });
const drop = (bytes: Buffer): Part => ({ bytes, out: null });

const b = (...xs: (number | Buffer | number[])[]): Buffer => Buffer.concat(xs.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(typeof x === 'number' ? [x] : x))));
const u16 = (n: number) => { const x = Buffer.alloc(2); x.writeUInt16BE(n); return x; };
const u32 = (n: number) => { const x = Buffer.alloc(4); x.writeUInt32BE(n); return x; };
const s32 = (n: number) => { const x = Buffer.alloc(4); x.writeInt32BE(n); return x; };
/** Filler whose bytes look like message types, so a framer that loses count is caught. */
const junk = (n: number) => Buffer.alloc(n, Buffer.from([3, 6, 0, 255, 248]));

// 32 bits per pixel, depth 24, true colour, 255 maxima: noVNC's format
const PF32 = b(32, 24, 0, 1, u16(255), u16(255), u16(255), 16, 8, 0, 0, 0, 0);
const PF16 = b(16, 16, 0, 1, u16(31), u16(63), u16(31), 11, 5, 0, 0, 0, 0);
const SERVER_INIT = b(u16(1024), u16(768), PF32, u32(4), Buffer.from('test'));

function setEncodings(list: number[]): Buffer {
  return b(2, 0, u16(list.length), ...list.map(s32));
}

function clientTranscript(): Part[] {
  const requested = [7, 16, 5, 2, 1, 0, 50, -260, -223, -224, -258, -308, -309, -312, -313, -307, -261, -239, -26, -250, EXTENDED_CLIPBOARD, 0x574d5664];
  const framed = [7, 16, 5, 2, 1, 0, -223, -224, -258, -308, -309, -312, -313, -307, -261, -239, -26, -250];
  return [
    keep(b(0, 0, 0, 0, PF32)),
    { bytes: setEncodings(requested), out: setEncodings(framed) },
    keep(b(3, 0, u16(0), u16(0), u16(1024), u16(768))),
    keep(b(4, 1, 0, 0, u32(0x61))),
    keep(b(5, 0, u16(10), u16(20))),
    drop(b(6, 0, 0, 0, u32(6), Buffer.from('secret'))),
    drop(b(6, 0, 0, 0, s32(-9), u32(0x10000001), junk(5))), // Extended Clipboard: negative length
    drop(b(6, 0, 0, 0, u32(0))),
    keep(b(150, 1, u16(0), u16(0), u16(1024), u16(768))),
    keep(b(248, 0, 0, 0, u32(0x80000002), 3, junk(3))),
    keep(b(248, 0, 0, 0, u32(0), 0)),
    keep(b(251, 0, u16(800), u16(600), 2, 0, junk(32))),
    keep(b(250, 0, 1, 2)),
    keep(b(253, 0x80 | 1, u16(5), junk(5))), // gii, big endian
    keep(b(253, 2, 4, 0, junk(4))), // gii, little endian
    keep(b(255, 0, u16(1), u32(0xff0d), u32(28))), // QEMU extended key event
    keep(b(255, 1, u16(0))), // QEMU audio enable
    keep(b(255, 1, u16(2), 3, 2, u32(44100))), // QEMU audio set format
    drop(b(6, 0, 0, 0, u32(3), junk(3))),
    keep(b(4, 0, 0, 0, u32(0x61))),
  ];
}

function hextile(): Buffer {
  // 40 x 20: tiles 16+16+8 across, 16+4 down = 6 tiles
  return b(
    u16(0), u16(0), u16(40), u16(20), s32(5),
    1, junk(16 * 16 * 4), // raw tile
    2, junk(4), // background only
    2 | 4 | 8, junk(4), junk(4), 2, junk(2 * 2), // background, foreground, 2 plain subrects
    8 | 16, 3, junk(3 * (4 + 2)), // coloured subrects
    0, // nothing: same background
    1 | 2 | 8, junk(8 * 4 * 4), // raw tile 8 x 4: other bits ignored
  );
}

function framebufferUpdate(): Buffer {
  const rect = (x: number, y: number, w: number, h: number, enc: number) => b(u16(x), u16(y), u16(w), u16(h), s32(enc));
  const rects = [
    b(rect(0, 0, 3, 2, 0), junk(3 * 2 * 4)), // Raw
    b(rect(0, 0, 3, 2, 1), u16(5), u16(6)), // CopyRect
    b(rect(0, 0, 10, 10, 2), u32(2), junk(4), junk(2 * (4 + 8))), // RRE
    hextile(),
    b(rect(0, 0, 64, 64, 16), u32(7), junk(7)), // ZRLE
    b(rect(0, 0, 64, 64, 7), 0x80, junk(3)), // Tight fill
    b(rect(0, 0, 64, 64, 7), 0x90, 0x85, 0x01, junk(133)), // Tight JPEG, 2-byte compact length
    b(rect(0, 0, 2, 1, 7), 0x00, junk(6)), // Tight basic copy, 6 bytes < 12: raw
    b(rect(0, 0, 10, 10, 7), 0x40, 0x00, 0x82, 0x80, 0x01, junk(16386)), // copy filter, 3-byte length
    b(rect(0, 0, 10, 10, 7), 0x50, 1, 1, junk(2 * 3), 20, junk(20)), // palette of 2: 2 x 10 bytes = 20
    b(rect(0, 0, 3, 3, 7), 0x60, 1, 4, junk(5 * 3), junk(9)), // palette of 5: 9 bytes raw
    b(rect(0, 0, 10, 10, 7), 0x40, 2, 5, junk(5)), // gradient
    b(rect(0, 0, 1024, 768, -223)), // DesktopSize
    b(rect(0, 0, 1024, 768, -308), 2, 0, 0, 0, junk(32)), // ExtendedDesktopSize
    b(rect(1, 1, 9, 2, -239), junk(9 * 2 * 4), junk(2 * 2)), // Cursor: pixels, mask of 2 bytes a row
    b(rect(1, 1, 9, 2, -240), junk(6), junk(2 * 2 * 2)), // X cursor
    b(rect(0, 0, 0, 0, -240)), // X cursor, empty
    b(rect(0, 0, 0, 0, -307), u32(4), Buffer.from('name')), // DesktopName
    b(rect(0, 0, 0, 0, -261), 7), // QEMU LED state
    b(rect(0, 0, 0, 0, -258)),
    b(rect(0, 0, 0, 0, -313)),
  ];
  return b(0, 0, u16(rects.length), ...rects);
}

function serverTranscript(): Part[] {
  const rect = (w: number, h: number, enc: number) => b(u16(0), u16(0), u16(w), u16(h), s32(enc));
  return [
    keep(framebufferUpdate()),
    drop(b(3, 0, 0, 0, u32(5), Buffer.from('hello'))),
    keep(b(2)), // Bell
    keep(b(1, 0, u16(0), u16(2), junk(12))), // SetColourMapEntries
    drop(b(3, 0, 0, 0, s32(-8), u32(0x01000000), junk(4))), // Extended Clipboard
    keep(b(150)),
    keep(b(248, 0, 0, 0, u32(0x80000003), 2, junk(2))),
    keep(b(250, 0, 1, 1)),
    keep(b(255, 1, u16(1))), // QEMU audio begin
    keep(b(255, 1, u16(2), u32(6), junk(6))), // QEMU audio data
    keep(b(255, 1, u16(0))),
    drop(b(3, 0, 0, 0, u32(0))),
    // LastRect ends an update announced with 0xffff rectangles
    keep(b(0, 0, u16(0xffff), rect(1, 1, 0), junk(4), rect(0, 0, -224))),
    keep(b(0, 0, u16(0))),
  ];
}

/** Every way to cut `input` in chunks that the test uses: whole, one byte at a time, in two at every boundary. */
function* chunkings(input: Buffer): Generator<Buffer[]> {
  yield [input];
  yield [...input].map((x) => Buffer.from([x]));
  for (let i = 1; i < input.length; i++) yield [input.subarray(0, i), input.subarray(i)];
}

function run(make: () => { filter(c: Buffer): Buffer }, parts: Part[]): void {
  const input = Buffer.concat(parts.map((p) => p.bytes));
  const expected = Buffer.concat(parts.flatMap((p) => (p.out ? [p.out] : [])));
  let n = 0;
  for (const chunks of chunkings(input)) {
    const f = make();
    const out = Buffer.concat(chunks.map((c) => Buffer.from(f.filter(c))));
    if (!out.equals(expected)) assert.fail(`chunking #${n} (${chunks.map((c) => c.length).join('+')}): output differs from the transcript less its cut text`);
    n++;
  }
}

describe('clipboard framers', () => {
  it('leave out ClientCutText (plain and extended) and rewrite SetEncodings, at every chunk boundary', () => {
    const framed = (e: number) => ![50, -260, EXTENDED_CLIPBOARD, 0x574d5664].includes(e);
    run(() => new ClientMessages({ dropCutText: true, encodings: (l) => l.filter(framed) }), clientTranscript());
  });

  it('pass ClientCutText when the clipboard may go to the VM', () => {
    const parts = clientTranscript().map((p) => (p.out === null ? keep(p.bytes) : p));
    run(() => new ClientMessages({ dropCutText: false, encodings: (l) => l.filter((e) => ![50, -260, EXTENDED_CLIPBOARD, 0x574d5664].includes(e)) }), parts);
  });

  it('leave out ServerCutText (plain and extended) across updates of every framed encoding, at every chunk boundary', () => {
    run(() => new ServerMessages({ dropCutText: true }, PF32), serverTranscript());
  });

  it('size pixels by the format the client set (16 bits: Raw, RRE, Hextile, Tight fill)', () => {
    const rect = (w: number, h: number, enc: number) => b(u16(0), u16(0), u16(w), u16(h), s32(enc));
    const update = b(0, 0, u16(4),
      rect(3, 2, 0), junk(3 * 2 * 2),
      rect(4, 4, 2), u32(1), junk(2), junk(2 + 8),
      rect(4, 4, 5), 2 | 4, junk(4),
      rect(4, 4, 7), 0x80, junk(2)); // TPIXEL is the pixel when the format is not 24-bit true colour
    const f = cutTextFilters('off', SERVER_INIT)!;
    assert.equal(f.toBackend.filter(b(0, 0, 0, 0, PF16)).length, 20);
    const cut = b(3, 0, 0, 0, u32(2), junk(2));
    assert.deepEqual(f.fromBackend!.filter(b(update, cut, 2)), b(update, 2));
  });

  it('policy: from-vm frames only the client (no server framer), leaves out its cut text and removes only the Extended Clipboard encoding', () => {
    const f = cutTextFilters('from-vm', SERVER_INIT)!;
    assert.equal(f.fromBackend, undefined);
    const cut = b(6, 0, 0, 0, u32(2), Buffer.from('ok'));
    const key = b(4, 1, 0, 0, u32(0x61));
    assert.deepEqual(f.toBackend.filter(b(setEncodings([50, EXTENDED_CLIPBOARD, 7]), cut, key)), b(setEncodings([50, 7]), key));
    assert.equal(cutTextFilters('both', SERVER_INIT), undefined);
    const off = cutTextFilters('off', SERVER_INIT)!;
    assert.deepEqual(off.toBackend.filter(b(cut, key)), key);
    assert.ok(off.fromBackend);
    const toVm = cutTextFilters('to-vm', SERVER_INIT)!;
    assert.deepEqual(toVm.toBackend.filter(b(cut, setEncodings([50, EXTENDED_CLIPBOARD, 7, -239]))), b(cut, setEncodings([7, -239])));
    assert.deepEqual(toVm.fromBackend!.filter(b(3, 0, 0, 0, u32(2), Buffer.from('no'), 2)), b(2));
  });

  it('return a chunk with nothing left out as it is (no copy)', () => {
    const f = new ServerMessages({ dropCutText: true }, PF32);
    const chunk = framebufferUpdate();
    assert.equal(f.filter(chunk), chunk);
  });

  it('refuse what they cannot frame, with words for the browser and detail for the log', () => {
    const cases: [() => { filter(c: Buffer): Buffer }, Buffer, RegExp][] = [
      [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), b(7, 0, 0, 0), /unknown message type 7/],
      [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), b(6, 0, 0, 0, u32(0x7fffffff)), /ClientCutText of 2147483647 bytes/],
      [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), b(6, 0, 0, 0, s32(-0x80000000)), /ClientCutText of 2147483648 bytes/],
      [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), b(2, 0, u16(5000)), /5000 encodings/],
      [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), b(248, 0, 0, 0, u32(0), 65), /payload of 65/],
      [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), b(255, 9), /subtype 9/],
      [() => new ServerMessages({ dropCutText: true }, PF32), b(0, 0, u16(1), u16(0), u16(0), u16(4), u16(4), s32(50)), /encoding 50/],
      [() => new ServerMessages({ dropCutText: true }, PF32), b(0, 0, u16(1), u16(0), u16(0), u16(4), u16(4), s32(7), 0xa0), /Tight compression control 10/],
      [() => new ServerMessages({ dropCutText: true }, PF32), b(0, 0, u16(1), u16(0), u16(0), u16(4), u16(4), s32(16), u32(0x20000000)), /ZRLE data of 536870912 bytes/],
      [() => new ServerMessages({ dropCutText: true }, PF32), b(42), /unknown message type 42/],
    ];
    for (const [make, input, detail] of cases) {
      assert.throws(() => make().filter(input), (err: unknown) => {
        assert.ok(isGatewayError(err));
        assert.match(err.message, detail);
        assert.match(err.clientMessage, /^the console (client )?sent a message the proxy cannot check$/);
        assert.ok(Buffer.byteLength(err.clientMessage) <= 123);
        return true;
      });
    }
  });

  it('never fail otherwise than with a GatewayError on random streams (seeded, 3000 inputs each way)', () => {
    let seed = 0x2545f491;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
    // biased toward the message types and encodings each framer knows, so that it gets deep
    const start = [0, 1, 2, 3, 4, 5, 6, 150, 248, 250, 251, 253, 255];
    for (let i = 0; i < 3000; i++) {
      const input = Buffer.alloc(1 + (rand() % 200), 0);
      for (let k = 0; k < input.length; k++) input[k] = rand() < 64 ? start[rand() % start.length]! : rand() < 128 ? 0 : rand();
      for (const make of [() => new ClientMessages({ dropCutText: true, encodings: (l) => [...l] }), () => new ServerMessages({ dropCutText: true }, PF32)]) {
        const f = make();
        try {
          for (let at = 0; at < input.length; at += 7) f.filter(input.subarray(at, at + 7));
        } catch (err) {
          assert.ok(isGatewayError(err), `input ${input.toString('hex')}: ${(err as Error).stack}`);
        }
      }
    }
  });
});
