/**
 * @module rfb/framebuffer/snapshot
 * A decoder snapshot (`DecoderSnapshot`) as bytes, for a recording's keyframes: the magic
 * `PHRFBSN1`, a U32 length and a JSON head (sizes, name, offset, cursor hot spot, which zlib
 * streams started and the length of every binary part), then the binary parts in the head's
 * order: pixel format, pixels, colour map, cursor RGBA, the zlib windows. Decoding checks every
 * length against the head and the head's sizes against each other, so a damaged file is an
 * error, never a wrong picture.
 */
import { protocolError } from './screen.ts';
import type { DecoderSnapshot } from './types.ts';

const MAGIC = Buffer.from('PHRFBSN1', 'latin1');
const MAX_HEAD = 1024 * 1024;

interface Head {
  offset: number;
  width: number;
  height: number;
  name: string;
  cursor: { hotX: number; hotY: number; width: number; height: number } | null;
  started: boolean[];
  parts: number[];
}

export function encodeSnapshot(s: DecoderSnapshot): Buffer {
  const parts: Uint8Array[] = [s.pixelFormat, s.pixels, s.colourMap, s.cursor?.rgba ?? new Uint8Array(0), ...s.zlib.map((z) => z.window)];
  const head: Head = {
    offset: s.offset, width: s.width, height: s.height, name: s.name,
    cursor: s.cursor ? { hotX: s.cursor.hotX, hotY: s.cursor.hotY, width: s.cursor.width, height: s.cursor.height } : null,
    started: s.zlib.map((z) => z.started),
    parts: parts.map((p) => p.length),
  };
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, length, json, ...parts]);
}

export function decodeSnapshot(b: Buffer): DecoderSnapshot {
  if (b.length < MAGIC.length + 4 || !b.subarray(0, MAGIC.length).equals(MAGIC)) throw bad('no snapshot magic');
  const headLength = b.readUInt32BE(MAGIC.length);
  let at = MAGIC.length + 4;
  if (headLength > MAX_HEAD || at + headLength > b.length) throw bad(`head of ${headLength} bytes`);
  let head: Head;
  try {
    head = JSON.parse(b.subarray(at, at + headLength).toString('utf8')) as Head;
  } catch {
    throw bad('head is not JSON');
  }
  at += headLength;
  const ints = [head.offset, head.width, head.height, ...(head.parts ?? [])];
  if (!Array.isArray(head.parts) || !Array.isArray(head.started) || ints.some((n) => !Number.isSafeInteger(n) || n < 0) || typeof head.name !== 'string') throw bad('malformed head');
  if (head.parts.length !== 4 + head.started.length) throw bad('part count');
  const parts: Uint8Array[] = [];
  for (const n of head.parts) {
    if (at + n > b.length) throw bad('truncated');
    parts.push(Uint8Array.from(b.subarray(at, at + n)));
    at += n;
  }
  if (at !== b.length) throw bad('trailing bytes');
  const [pixelFormat, pixels, colourMap, cursorRgba] = parts as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  if (pixelFormat.length !== 16 || pixels.length !== head.width * head.height * 4 || colourMap.length % 4 !== 0) throw bad('part sizes');
  const c = head.cursor;
  if (c && cursorRgba.length !== c.width * c.height * 4) throw bad('cursor size');
  return {
    offset: head.offset, width: head.width, height: head.height, name: head.name,
    pixelFormat, pixels, colourMap,
    cursor: c ? { hotX: c.hotX, hotY: c.hotY, width: c.width, height: c.height, rgba: cursorRgba } : null,
    zlib: head.started.map((started, i) => ({ started: started === true, window: parts[4 + i]! })),
  };
}

function bad(detail: string): Error {
  return protocolError(`decoder snapshot: ${detail}`);
}
