/**
 * @module rfb/recording/format
 * Porthole's recording file (`.rfbrec`) and its keyframe sidecar (`.rfbrec.keys`): pure encoders
 * and a resumable reader, nothing of files or sockets.
 *
 *   magic `PHRFBREC` (8 bytes) | version u32 | header length u32 | header (JSON, UTF-8)
 *   records: [type u8][time ms u32][length u32][bytes], big-endian like RFB
 *
 * The header says what the stream needs to be decoded from its first byte (the ServerInit the
 * browser was given, base64) and whose it was. A record's time is milliseconds since the header's
 * `startedAt`. `SERVER` records hold the backend's bytes after ServerInit as they were relayed (a
 * record is a relayed chunk, not an RFB message: cutting them costs nothing live), `CLIENT` the
 * browser's messages (SetPixelFormat, SetEncodings, input), `TRUNCATED` says the writer dropped
 * what followed (the disk could not keep up), `END` the recording's end. A sidecar has the same
 * framing with kind `keys` in its header and `KEYFRAME` records.
 *
 * The file is read while it is being written and after a crash: a record cut short by the end of
 * the bytes (a torn last write) is not a record, and the reader stops before it.
 */

export const MAGIC = Buffer.from('PHRFBREC', 'latin1');
export const FORMAT_VERSION = 1;
/** Bound on the JSON header (a ServerInit's desktop name is at most 64 KiB, base64 a third more). */
export const MAX_HEADER = 256 * 1024;
/** Bound on one record: a relayed chunk is at most a socket read (64 KiB); a keyframe is a whole screen (8K RGBA, compressed or not). */
export const MAX_RECORD = 256 * 1024 * 1024;
/** Bytes before a record's payload. */
export const RECORD_HEAD = 9;

export const RecordType = {
  /** Backend to browser bytes. */
  SERVER: 1,
  /** Browser to backend bytes. */
  CLIENT: 2,
  /** In a sidecar: where decoding resumes and the decoder's state there (`encodeKeyframe`). */
  KEYFRAME: 3,
  /** The writer dropped everything after this point. */
  TRUNCATED: 4,
  END: 5,
} as const;
export type RecordTypeNumber = (typeof RecordType)[keyof typeof RecordType];

export interface RecordingHeader {
  readonly format: number;
  /** `recording` for a recording, `keys` for its sidecar. */
  readonly kind: 'recording' | 'keys';
  readonly recordingId: string;
  readonly sessionId?: string;
  readonly serverId?: string;
  readonly serverName?: string | null;
  readonly projectId?: string | null;
  readonly viewer?: string | null;
  readonly client?: string;
  /** Epoch milliseconds; records' times count from it. */
  readonly startedAt: number;
  /** The ServerInit message as the browser got it (base64). */
  readonly serverInit?: string;
  /** In a sidecar: the recording's size when it was indexed, and how long it lasted (ms). */
  readonly indexedBytes?: number;
  readonly durationMs?: number;
}

export interface RecordingRecordEntry {
  readonly type: number;
  /** Milliseconds since the header's `startedAt`. */
  readonly time: number;
  readonly bytes: Buffer;
  /** Offset of the record's first byte in the file. */
  readonly offset: number;
}

/** The file's first bytes: magic, version, header. */
export function encodeHeader(header: RecordingHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_HEADER) throw new RangeError(`recording header of ${json.length} bytes (at most ${MAX_HEADER})`);
  const head = Buffer.allocUnsafe(16);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(FORMAT_VERSION, 8);
  head.writeUInt32BE(json.length, 12);
  return Buffer.concat([head, json]);
}

/** A record's 9 bytes before its payload. */
export function encodeRecordHead(type: number, time: number, length: number, into: Buffer = Buffer.allocUnsafe(RECORD_HEAD), at = 0): Buffer {
  into.writeUInt8(type, at);
  // a recording longer than 49 days keeps its last time rather than wrapping
  into.writeUInt32BE(Math.min(Math.max(0, Math.floor(time)), 0xffffffff), at + 1);
  into.writeUInt32BE(length, at + 5);
  return into;
}

export function encodeRecord(type: number, time: number, bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEAD + bytes.length);
  encodeRecordHead(type, time, bytes.length, out, 0);
  bytes.copy(out, RECORD_HEAD);
  return out;
}

/**
 * A keyframe record's payload: the file offset of the `SERVER` record in which decoding resumes,
 * the stream offset (bytes after ServerInit) at that record's first payload byte, then the
 * decoder's snapshot (whose own offset says how far into that record it was taken).
 */
export function encodeKeyframe(recordOffset: number, streamOffset: number, snapshot: Buffer): Buffer {
  const out = Buffer.allocUnsafe(16 + snapshot.length);
  out.writeBigUInt64BE(BigInt(recordOffset), 0);
  out.writeBigUInt64BE(BigInt(streamOffset), 8);
  snapshot.copy(out, 16);
  return out;
}

export function decodeKeyframe(bytes: Buffer): { recordOffset: number; streamOffset: number; snapshot: Buffer } {
  if (bytes.length < 16) throw new RecordingFormatError('keyframe record shorter than its offsets');
  return { recordOffset: Number(bytes.readBigUInt64BE(0)), streamOffset: Number(bytes.readBigUInt64BE(8)), snapshot: bytes.subarray(16) };
}

export class RecordingFormatError extends Error {}

/**
 * Resumable reader: `push` bytes as they come (from offset 0, or from `startOffset` with the
 * header given), take what is whole with `next()`. A short read is not an error; bytes that are
 * not this format are (`RecordingFormatError`).
 */
export class RecordingReader {
  header: RecordingHeader | undefined;
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of `buf[0]`. */
  private base: number;

  constructor(start?: { header: RecordingHeader; offset: number }) {
    this.header = start?.header;
    this.base = start?.offset ?? 0;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Offset in the file of the first byte not yet consumed. */
  get offset(): number {
    return this.base;
  }

  /** Bytes pushed and not yet consumed (a torn tail, when the input is over). */
  get pending(): number {
    return this.buf.length;
  }

  /** The header, once its bytes are in; undefined while they are not. */
  readHeader(): RecordingHeader | undefined {
    if (this.header) return this.header;
    if (this.buf.length < 16) return undefined;
    if (!this.buf.subarray(0, 8).equals(MAGIC)) throw new RecordingFormatError('not a Porthole recording (bad magic)');
    const version = this.buf.readUInt32BE(8);
    if (version !== FORMAT_VERSION) throw new RecordingFormatError(`recording format version ${version}; this Porthole reads ${FORMAT_VERSION}`);
    const n = this.buf.readUInt32BE(12);
    if (n > MAX_HEADER) throw new RecordingFormatError(`recording header of ${n} bytes (at most ${MAX_HEADER})`);
    if (this.buf.length < 16 + n) return undefined;
    let header: RecordingHeader;
    try {
      header = JSON.parse(this.buf.subarray(16, 16 + n).toString('utf8')) as RecordingHeader;
    } catch {
      throw new RecordingFormatError('recording header is not JSON');
    }
    if (typeof header?.startedAt !== 'number') throw new RecordingFormatError('recording header has no startedAt');
    this.consume(16 + n);
    this.header = header;
    return header;
  }

  /** The next whole record, or undefined until more bytes come. */
  next(): RecordingRecordEntry | undefined {
    if (!this.header && !this.readHeader()) return undefined;
    if (this.buf.length < RECORD_HEAD) return undefined;
    const type = this.buf.readUInt8(0);
    if (type < RecordType.SERVER || type > RecordType.END) throw new RecordingFormatError(`unknown record type ${type} at offset ${this.base}`);
    const time = this.buf.readUInt32BE(1);
    const length = this.buf.readUInt32BE(5);
    if (length > MAX_RECORD) throw new RecordingFormatError(`record of ${length} bytes at offset ${this.base}`);
    if (this.buf.length < RECORD_HEAD + length) return undefined;
    const bytes = this.buf.subarray(RECORD_HEAD, RECORD_HEAD + length);
    const offset = this.base;
    this.consume(RECORD_HEAD + length);
    return { type, time, bytes, offset };
  }

  /** How many more bytes the record (or header) under way needs at least. */
  wanted(): number {
    if (!this.header) return this.buf.length < 16 ? 16 - this.buf.length : 16 + this.buf.readUInt32BE(12) - this.buf.length;
    if (this.buf.length < RECORD_HEAD) return RECORD_HEAD - this.buf.length;
    return RECORD_HEAD + this.buf.readUInt32BE(5) - this.buf.length;
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
    this.base += n;
  }
}

/** The ServerInit of a header, as bytes. */
export function headerServerInit(h: RecordingHeader): Buffer {
  if (!h.serverInit) throw new RecordingFormatError('recording header has no ServerInit');
  return Buffer.from(h.serverInit, 'base64');
}
