/**
 * @module rfb/recording/player
 * Plays a recording (`format.ts`) back server-side: the recorded backend stream goes through
 * Porthole's RFB client core (`RfbDecoder`), the recorded client messages tell it each
 * SetPixelFormat, and the caller gets the screen at any moment (`seek`) and the damage from there
 * on with its times (`advance`).
 *
 * Seeking goes through keyframes, made lazily: the first time a recording is played (or indexed,
 * `porthole recordings index`) it is decoded once from its start and a sidecar `<file>.keys` is
 * written with a decoder snapshot (screen, pixel format, zlib windows) every `intervalMs` of
 * recording time and where in the file decoding resumes from it. A seek restores the last
 * keyframe at or before its target and decodes forward from there. Nothing of this runs while a
 * session is recorded: that is what keeps the live cost near zero.
 *
 * A recording read while it is written, or after a crash, plays up to its last whole record; a
 * stream the decoder cannot decode plays up to that point.
 */
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import { deflateSync, inflateSync } from 'node:zlib';
import { ClientMessages } from '../client-messages.ts';
import { decodeSnapshot, encodeSnapshot, RfbDecoder } from '../framebuffer/decoder.ts';
import type { Framebuffer, Rect } from '../framebuffer/types.ts';
import { decodeKeyframe, encodeHeader, encodeKeyframe, encodeRecord, headerServerInit, RecordingFormatError, RecordingReader, RecordType, type RecordingHeader, type RecordingRecordEntry } from './format.ts';

/** Recording time between keyframes. */
export const KEYFRAME_INTERVAL_MS = 10_000;
/** Bytes read from the file at a time. */
const READ_BLOCK = 1024 * 1024;

export interface Keyframe {
  /** Recording time (ms) of the record in which it was taken. */
  readonly time: number;
  /** Where its record lies in the sidecar (loaded when a seek needs it). */
  readonly at: number;
  readonly length: number;
}

/** What changed on the screen at `time`: `full` after a resize (the whole screen is new). */
export interface PlaybackUpdate {
  readonly time: number;
  readonly rects: readonly Rect[];
  readonly full: boolean;
  /** The screen as it is at this update's end (the live object: read it before returning). */
  readonly framebuffer: Framebuffer;
}

export interface PlayerOptions {
  /** The sidecar's path; default `<path>.keys`. */
  readonly keysPath?: string;
  readonly intervalMs?: number;
}

/** Where decoding stands: a decoder, the client framer beside it, and the records still to read. */
interface Decoding {
  decoder: RfbDecoder;
  client: ClientMessages;
  records: AsyncGenerator<RecordingRecordEntry>;
  /** The next record, read but not applied. */
  peeked: RecordingRecordEntry | undefined;
  /** Bytes to skip of the next SERVER record (the part a keyframe's snapshot has in it). */
  skip: number;
  /** Stream offset (bytes after ServerInit) at the next SERVER record's first byte. */
  streamOffset: number;
  ended: boolean;
  /** Recording time of the last record applied. */
  time: number;
  /** Told of the decoder's updates (set while advancing). */
  onUpdate: ((rects: readonly Rect[]) => void) | undefined;
  resized: boolean;
}

export class RecordingPlayer {
  /** Seeks that restored a keyframe (tests and the endpoint's reply say it). */
  keyframeSeeks = 0;
  private state: Decoding | undefined;
  private keysHandle: FileHandle | undefined;

  private constructor(
    readonly path: string,
    readonly header: RecordingHeader,
    /** Offset of the first record. */
    private readonly firstRecord: number,
    private readonly handle: FileHandle,
    readonly durationMs: number,
    readonly keyframes: readonly Keyframe[],
    readonly keysPath: string,
    /** True when this open built the sidecar; false when it read one that was there. */
    readonly builtIndex: boolean,
    /** The recording says the disk did not keep up (it ends early). */
    readonly truncated: boolean,
    /** Why decoding stops before the recording's end, when it does. */
    readonly failure: string | undefined,
  ) {}

  /** Opens `path`, reading its sidecar or building it (decoding the whole recording once). */
  static async open(path: string, opts: PlayerOptions = {}): Promise<RecordingPlayer> {
    const keysPath = opts.keysPath ?? `${path}.keys`;
    const handle = await open(path, 'r');
    try {
      const { header, firstRecord } = await readHeader(handle);
      const size = (await handle.stat()).size;
      let index = await readIndex(keysPath, size).catch(() => undefined);
      const built = index === undefined;
      if (!index) index = await buildIndex(handle, header, firstRecord, size, keysPath, opts.intervalMs ?? KEYFRAME_INTERVAL_MS);
      return new RecordingPlayer(path, header, firstRecord, handle, index.durationMs, index.keyframes, keysPath, built, index.truncated, index.failure);
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  /** Builds (or rebuilds) the sidecar of `path` now; returns how many keyframes it holds. */
  static async index(path: string, opts: PlayerOptions = {}): Promise<{ keyframes: number; durationMs: number; keysPath: string }> {
    const keysPath = opts.keysPath ?? `${path}.keys`;
    const handle = await open(path, 'r');
    try {
      const { header, firstRecord } = await readHeader(handle);
      const size = (await handle.stat()).size;
      const index = await buildIndex(handle, header, firstRecord, size, keysPath, opts.intervalMs ?? KEYFRAME_INTERVAL_MS);
      return { keyframes: index.keyframes.length, durationMs: index.durationMs, keysPath };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /**
   * The screen at recording time `t` (clamped to the recording): from the last keyframe at or
   * before `t` (or the start), decoded forward through every record up to `t`. `keyframeAt`: the
   * keyframe's time, or null when decoded from the start.
   */
  async seek(t: number): Promise<{ time: number; keyframeAt: number | null; framebuffer: Framebuffer }> {
    const target = Math.max(0, Math.min(t, this.durationMs));
    let key: Keyframe | undefined;
    for (const k of this.keyframes) if (k.time <= target) key = k;
    const current = this.state;
    // going on from where decoding stands is cheaper than a keyframe when it is between the two
    const reuse = current !== undefined && current.time <= target && (key === undefined || current.time >= key.time) && !current.ended;
    if (!reuse) {
      await this.state?.records.return(undefined);
      this.state = key ? await this.fromKeyframe(key) : this.fromStart();
      if (key) this.keyframeSeeks++;
    }
    await this.run(this.state!, target);
    return { time: target, keyframeAt: reuse ? null : (key?.time ?? null), framebuffer: this.state!.decoder.framebuffer };
  }

  /**
   * Decodes every record up to recording time `until`, telling `onUpdate` of each update with
   * its time; resolves false once the recording has nothing more.
   */
  async advance(until: number, onUpdate: (u: PlaybackUpdate) => void): Promise<boolean> {
    const s = this.state ?? (this.state = this.fromStart());
    s.onUpdate = (rects) => {
      const full = s.resized;
      s.resized = false;
      onUpdate({ time: s.time, rects, full, framebuffer: s.decoder.framebuffer });
    };
    try {
      await this.run(s, until);
    } finally {
      s.onUpdate = undefined;
    }
    return !s.ended;
  }

  async close(): Promise<void> {
    await this.state?.records.return(undefined);
    this.state = undefined;
    await this.handle.close().catch(() => {});
    await this.keysHandle?.close().catch(() => {});
  }

  private fromStart(): Decoding {
    return this.decoding((events) => new RfbDecoder(headerServerInit(this.header), events), this.firstRecord, 0, 0);
  }

  private async fromKeyframe(k: Keyframe): Promise<Decoding> {
    this.keysHandle ??= await open(this.keysPath, 'r');
    const buf = Buffer.allocUnsafe(k.length);
    await readFully(this.keysHandle, buf, k.at);
    const { recordOffset, streamOffset, snapshot } = decodeKeyframe(buf);
    const snap = decodeSnapshot(inflateSync(snapshot));
    const d = this.decoding((events) => RfbDecoder.restore(snap, events), recordOffset, snap.offset - streamOffset, streamOffset);
    d.time = k.time;
    return d;
  }

  private decoding(make: (events: ConstructorParameters<typeof RfbDecoder>[1]) => RfbDecoder, offset: number, skip: number, streamOffset: number): Decoding {
    const d = {} as Decoding;
    d.decoder = make({
      update: (rects) => d.onUpdate?.(rects),
      resize: () => void (d.resized = true),
    });
    d.client = clientFramer(d);
    d.records = readRecords(this.handle, this.header, offset);
    d.peeked = undefined;
    d.skip = skip;
    d.streamOffset = streamOffset;
    d.ended = false;
    d.time = 0;
    d.onUpdate = undefined;
    d.resized = false;
    return d;
  }

  /** Applies every record whose time is at most `until`. */
  private async run(d: Decoding, until: number): Promise<void> {
    while (!d.ended) {
      const next = d.peeked ?? (await d.records.next()).value;
      if (!next) {
        // the end of what is written so far (a live or torn recording): nothing more now
        d.ended = true;
        return;
      }
      if (next.time > until) {
        d.peeked = next;
        return;
      }
      d.peeked = undefined;
      d.time = next.time;
      apply(d, next);
    }
  }
}

function clientFramer(d: Decoding): ClientMessages {
  return new ClientMessages({ dropCutText: false, encodings: (e) => [...e], onPixelFormat: (format) => d.decoder.setPixelFormat(format) });
}

/** One record into the decoding; a stream that cannot be decoded ends the playback there. */
function apply(d: Decoding, r: RecordingRecordEntry): void {
  switch (r.type) {
    case RecordType.SERVER: {
      const bytes = d.skip > 0 ? r.bytes.subarray(d.skip) : r.bytes;
      d.skip = 0;
      d.streamOffset += r.bytes.length;
      try {
        d.decoder.push(bytes);
      } catch {
        d.ended = true;
      }
      return;
    }
    case RecordType.CLIENT:
      try {
        d.client.filter(r.bytes);
      } catch {
        // a client message the framer cannot delimit: only SetPixelFormat matters here, so start afresh
        d.client = clientFramer(d);
      }
      return;
    case RecordType.TRUNCATED:
    case RecordType.END:
      d.ended = true;
      return;
    default:
      return;
  }
}

async function readFully(h: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await h.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new RecordingFormatError(`file ends ${buf.length - done} bytes early`);
    done += bytesRead;
  }
}

/** The header of an open recording (or sidecar) and where its first record is. */
export async function readHeader(h: FileHandle): Promise<{ header: RecordingHeader; firstRecord: number }> {
  const reader = new RecordingReader();
  let pos = 0;
  for (;;) {
    const want = Math.max(reader.wanted(), 16);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await h.read(buf, 0, want, pos);
    if (bytesRead === 0) throw new RecordingFormatError('the file ends inside its header');
    pos += bytesRead;
    reader.push(buf.subarray(0, bytesRead));
    const header = reader.readHeader();
    if (header) return { header, firstRecord: reader.offset };
  }
}

/** The whole records of an open file from `offset` on, as they are now (a torn tail is left out). */
export async function* readRecords(h: FileHandle, header: RecordingHeader, offset: number): AsyncGenerator<RecordingRecordEntry> {
  const reader = new RecordingReader({ header, offset });
  let pos = offset;
  for (;;) {
    const buf = Buffer.allocUnsafe(Math.max(READ_BLOCK, reader.wanted()));
    const { bytesRead } = await h.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    reader.push(buf.subarray(0, bytesRead));
    for (;;) {
      let r: RecordingRecordEntry | undefined;
      try {
        r = reader.next();
      } catch {
        // damaged bytes: what came before them plays
        return;
      }
      if (!r) break;
      yield r;
    }
  }
}

interface Index {
  readonly durationMs: number;
  readonly keyframes: Keyframe[];
  readonly truncated: boolean;
  /** Why decoding stopped before the end (a stream the decoder cannot decode), when it did. */
  readonly failure?: string;
}

/** The sidecar's keyframes, when it indexes the recording as it is now (`size` bytes); else undefined. */
async function readIndex(keysPath: string, size: number): Promise<Index | undefined> {
  let h: FileHandle;
  try {
    h = await open(keysPath, 'r');
  } catch {
    return undefined;
  }
  try {
    const { header, firstRecord } = await readHeader(h);
    if (header.kind !== 'keys' || header.indexedBytes !== size) return undefined;
    const keyframes: Keyframe[] = [];
    for await (const r of readRecords(h, header, firstRecord)) {
      if (r.type === RecordType.KEYFRAME) keyframes.push({ time: r.time, at: r.offset + 9, length: r.bytes.length });
    }
    const extra = header as { truncated?: boolean; failure?: string };
    return { durationMs: header.durationMs ?? 0, keyframes, truncated: extra.truncated === true, ...(extra.failure ? { failure: extra.failure } : {}) };
  } finally {
    await h.close().catch(() => {});
  }
}

/** Decodes the whole recording once, writing a keyframe every `intervalMs` to a new sidecar. */
async function buildIndex(h: FileHandle, header: RecordingHeader, firstRecord: number, size: number, keysPath: string, intervalMs: number): Promise<Index> {
  const parts: Buffer[] = [];
  const keyframes: Array<{ time: number; payload: Buffer }> = [];
  let current: RecordingRecordEntry | undefined;
  let recordStream = 0;
  let lastKey = 0;
  let ended = false;
  let truncated = false;
  let durationMs = 0;
  let failure: string | undefined;
  const d = {} as Decoding;
  d.decoder = new RfbDecoder(headerServerInit(header), {
    update: () => {
      if (!current || current.time - lastKey < intervalMs) return;
      lastKey = current.time;
      const snap = encodeSnapshot(d.decoder.snapshot());
      keyframes.push({ time: current.time, payload: encodeKeyframe(current.offset, recordStream, deflateSync(snap, { level: 1 })) });
    },
  });
  d.client = clientFramer(d);
  for await (const r of readRecords(h, header, firstRecord)) {
    durationMs = Math.max(durationMs, r.time);
    if (ended) continue;
    if (r.type === RecordType.SERVER) {
      current = r;
      try {
        d.decoder.push(r.bytes);
      } catch (err) {
        ended = true;
        failure = `${(err as Error).message} at ${r.time} ms`;
      }
      recordStream += r.bytes.length;
    } else if (r.type === RecordType.CLIENT) {
      try {
        d.client.filter(r.bytes);
      } catch {
        d.client = clientFramer(d);
      }
    } else if (r.type === RecordType.TRUNCATED) {
      truncated = true;
    }
  }
  const keysHeader = encodeHeader({ format: 1, kind: 'keys', recordingId: header.recordingId, startedAt: header.startedAt, indexedBytes: size, durationMs, ...({ truncated, ...(failure ? { failure } : {}) } as object) });
  let at = keysHeader.length;
  const index: Keyframe[] = [];
  parts.push(keysHeader);
  for (const k of keyframes) {
    const rec = encodeRecord(RecordType.KEYFRAME, k.time, k.payload);
    index.push({ time: k.time, at: at + 9, length: k.payload.length });
    at += rec.length;
    parts.push(rec);
  }
  // written aside and renamed: a reader sees the old sidecar or the new one, never half of one
  const tmp = `${keysPath}.${process.pid}.tmp`;
  const out = await open(tmp, 'w', 0o600);
  try {
    await out.writev(parts);
  } finally {
    await out.close();
  }
  await rename(tmp, keysPath);
  return { durationMs, keyframes: index, truncated, ...(failure ? { failure } : {}) };
}

/** Bytes of a recording and its sidecar on disk (0 for what is not there). */
export async function recordingFileSizes(path: string): Promise<{ file: number; keys: number }> {
  const size = async (p: string) => (await stat(p).catch(() => undefined))?.size ?? 0;
  return { file: await size(path), keys: await size(`${path}.keys`) };
}
