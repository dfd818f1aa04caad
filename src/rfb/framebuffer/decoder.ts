/**
 * @module rfb/framebuffer/decoder
 * `RfbDecoder`: the server-to-client RFB stream after ServerInit (RFC 6143 §7.6) in, the screen
 * out. It is fed chunks as they come, split anywhere, and decodes every complete message:
 * FramebufferUpdate (its rectangles through one decoder per encoding, `encoding.ts`),
 * SetColourMapEntries, Bell, ServerCutText, and skips the extension messages the relay's framer
 * knows (`server-messages.ts`: EndOfContinuousUpdates, Fence, xvp, QEMU audio).
 *
 * Bytes are looked at where they arrived: a unit a decoder asks for (a message head, a row run,
 * a tile, a whole length-prefixed ZRLE or Tight rectangle) that lies whole in the chunk is
 * decoded from the chunk itself; only a unit split across chunks is gathered, once, into a carry
 * buffer that grows as its bytes arrive (never to a length the server merely claims). Every
 * length is bounded as the framer bounds it. Garbage throws a `GatewayError` (`BACKEND_PROTOCOL`)
 * and the decoder stays failed: past a message it cannot delimit nothing can be trusted.
 *
 * Events (`DecoderEvents`) that end a message (update, bell, cutText) fire once the message is
 * consumed, so a `snapshot()` taken in them is at that message's end.
 */
import { GatewayError, isGatewayError } from '../../errors.ts';
import { MAX_CUT_TEXT } from '../client-messages.ts';
import { MAX_ENCODED } from '../server-messages.ts';
import { MAX_DESKTOP_NAME } from '../security-proxy.ts';
import { CopyRectDecoder } from './copy-rect.ts';
import { CursorDecoder, XCursorDecoder } from './cursor.ts';
import { DesktopNameDecoder } from './desktop-name.ts';
import { DesktopSizeDecoder, ExtendedDesktopSizeDecoder } from './desktop-size.ts';
import type { DecodeContext, RectDecoder, RectHead } from './encoding.ts';
import { HextileDecoder } from './hextile.ts';
import { CLIENT_PIXEL_FORMAT, ColourMap, compactPixelBytes, encodePixelFormat, isTightRgb, parsePixelFormat, PixelConverter, PIXEL_FORMAT_LENGTH } from './pixel-format.ts';
import { RawDecoder } from './raw.ts';
import { RreDecoder } from './rre.ts';
import { protocolError, Screen } from './screen.ts';
import { TightDecoder } from './tight.ts';
import type { CursorShape, DecoderEvents, DecoderSnapshot, Framebuffer, PixelFormat, Rect } from './types.ts';
import { ZlibStream } from './zlib-stream.ts';
import { ZrleDecoder } from './zrle.ts';

export { decodeSnapshot, encodeSnapshot } from './snapshot.ts';

const SERVER_INIT_HEAD = 24;

/** What a `DecoderEvents` callback threw, told apart from the decoders' own errors. */
class CallbackError extends Error {
  constructor(cause: unknown) {
    super('DecoderEvents callback threw', { cause });
  }
}
const MAX_FENCE = 64;

/** Encoding numbers (§7.7, §7.8 and rfbproto). */
export const Encoding = {
  Raw: 0,
  CopyRect: 1,
  RRE: 2,
  Hextile: 5,
  Tight: 7,
  ZRLE: 16,
  DesktopSize: -223,
  LastRect: -224,
  Cursor: -239,
  XCursor: -240,
  QemuExtendedKeyEvent: -258,
  QemuAudio: -259,
  QemuLedState: -261,
  DesktopName: -307,
  ExtendedDesktopSize: -308,
  Xvp: -309,
  Fence: -312,
  ContinuousUpdates: -313,
} as const;

/** The decoder's place in the stream, named after the message part it waits for. */
const Step = {
  MessageType: 0,
  RectangleHead: 1,
  Rectangle: 2,
  Skip: 3,
} as const;

/** What ends the message under way, fired once it is consumed. */
const End = { None: 0, Update: 1, Bell: 2, CutText: 3 } as const;

export class RfbDecoder implements DecodeContext {
  screen: Screen;
  pixel!: PixelConverter;
  compactPixel!: PixelConverter;
  tightPixel!: PixelConverter;
  readonly colourMap = new ColourMap();
  readonly zlib: readonly ZlibStream[] = [new ZlibStream('ZRLE'), new ZlibStream('Tight 0'), new ZlibStream('Tight 1'), new ZlibStream('Tight 2'), new ZlibStream('Tight 3')];
  /** The last cursor shape a Cursor / X Cursor rectangle gave, or null. */
  cursor: CursorShape | null = null;
  /** Bytes of the stream consumed by whole messages (and the parts of the one under way). */
  private consumed = 0;
  private format!: PixelFormat;
  private formatBytes!: Buffer;
  private step: number = Step.MessageType;
  private rectsLeft = 0;
  private skipLeft = 0;
  private damage: Rect[] = [];
  private resized = false;
  private ending: number = End.None;
  private cutText: Buffer | null = null;
  private current: RectDecoder | null = null;
  private head: RectHead = { x: 0, y: 0, width: 0, height: 0, encoding: 0 };
  private readonly decoders: Map<number, RectDecoder>;
  /** A unit split across chunks: its first `carried` bytes, and how many it needs at least. */
  private carry = Buffer.alloc(0);
  private carried = 0;
  private need = 1;
  private failure: GatewayError | null = null;

  constructor(serverInit: Buffer, private readonly events: DecoderEvents = {}) {
    if (serverInit.length < SERVER_INIT_HEAD) throw protocolError(`ServerInit of ${serverInit.length} bytes`);
    const nameLength = serverInit.readUInt32BE(20);
    if (nameLength > MAX_DESKTOP_NAME || serverInit.length !== SERVER_INIT_HEAD + nameLength) throw protocolError(`ServerInit of ${serverInit.length} bytes with a name of ${nameLength}`);
    this.screen = new Screen(serverInit.readUInt16BE(0), serverInit.readUInt16BE(2), serverInit.subarray(SERVER_INIT_HEAD).toString('utf8'));
    this.usePixelFormat(serverInit.subarray(4, 4 + PIXEL_FORMAT_LENGTH));
    const raw = new RawDecoder(this);
    this.decoders = new Map<number, RectDecoder>([
      [Encoding.Raw, raw],
      [Encoding.CopyRect, new CopyRectDecoder(this)],
      [Encoding.RRE, new RreDecoder(this)],
      [Encoding.Hextile, new HextileDecoder(this, raw)],
      [Encoding.Tight, new TightDecoder(this)],
      [Encoding.ZRLE, new ZrleDecoder(this)],
      [Encoding.DesktopSize, new DesktopSizeDecoder(this)],
      [Encoding.ExtendedDesktopSize, new ExtendedDesktopSizeDecoder(this)],
      [Encoding.Cursor, new CursorDecoder(this)],
      [Encoding.XCursor, new XCursorDecoder(this)],
      [Encoding.DesktopName, new DesktopNameDecoder(this)],
    ]);
  }

  /** A decoder that goes on from `s` (fed the stream from `s.offset` on). */
  static restore(s: DecoderSnapshot, events?: DecoderEvents): RfbDecoder {
    const name = Buffer.from(s.name, 'utf8');
    const init = Buffer.alloc(SERVER_INIT_HEAD + name.length);
    init.writeUInt16BE(s.width, 0);
    init.writeUInt16BE(s.height, 2);
    Buffer.from(s.pixelFormat).copy(init, 4);
    init.writeUInt32BE(name.length, 20);
    name.copy(init, SERVER_INIT_HEAD);
    const d = new RfbDecoder(init, events);
    if (s.pixels.length !== s.width * s.height * 4) throw protocolError(`snapshot of ${s.pixels.length} pixel bytes for ${s.width}x${s.height}`);
    d.screen.pixels.set(s.pixels);
    if (s.colourMap.length > 0) {
      const entries = new Uint32Array(s.colourMap.length >> 2);
      new Uint8Array(entries.buffer).set(s.colourMap.subarray(0, entries.length * 4));
      d.colourMap.entries = entries;
    }
    d.cursor = s.cursor ? { ...s.cursor, rgba: Uint8Array.from(s.cursor.rgba) } : null;
    s.zlib.forEach((z, i) => {
      const stream = d.zlib[i];
      if (!stream) return;
      stream.started = z.started;
      stream.window = Buffer.from(z.window);
    });
    d.consumed = s.offset;
    return d;
  }

  /** The screen as it is now (the live object: it changes as decoding goes on). */
  get framebuffer(): Framebuffer {
    return this.screen;
  }

  get pixelFormat(): PixelFormat {
    return this.format;
  }

  /** Bytes of the stream after ServerInit consumed so far. */
  get offset(): number {
    return this.consumed;
  }

  /** Between two messages: where `snapshot()` may be taken. */
  get atMessageBoundary(): boolean {
    return this.step === Step.MessageType && this.failure === null;
  }

  /** The client sent SetPixelFormat with these 16 bytes: updates after it use it. */
  setPixelFormat(format: Buffer): void {
    this.usePixelFormat(format.subarray(format.length === 20 ? 4 : 0));
  }

  /**
   * Decodes every complete message in the bytes so far. Throws a `GatewayError` on a stream no
   * RFB server may send; the decoder is then failed and throws it again on every later push.
   */
  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    try {
      let pos = 0;
      const n = chunk.length;
      while (this.carried > 0) {
        if (this.carried < this.need) {
          const k = Math.min(this.need - this.carried, n - pos);
          this.gather(chunk, pos, k);
          pos += k;
          if (this.carried < this.need) return;
        }
        const used = this.run(this.carry, 0, this.carried);
        this.carry.copyWithin(0, used, this.carried);
        this.carried -= used;
      }
      if (pos < n) {
        const used = this.run(chunk, pos, n);
        pos += used;
        if (pos < n) this.gather(chunk, pos, n - pos);
      }
      // a carry grown for one large unit is not kept for the rest of the session
      if (this.carried === 0 && this.carry.length > 65536) this.carry = Buffer.alloc(0);
    } catch (err) {
      // a callback's error is the caller's bug, not the server's garbage; either way the chunk's
      // remaining bytes are lost with the stack, so the decoder cannot go on
      if (err instanceof CallbackError) this.failure = new GatewayError('INTERNAL', `a DecoderEvents callback threw: ${(err.cause as Error)?.stack ?? String(err.cause)}`, { cause: err.cause });
      else this.failure = isGatewayError(err) ? err : protocolError(`undecodable data (${(err as Error)?.message ?? String(err)})`);
      this.carry = Buffer.alloc(0);
      this.carried = 0;
      throw this.failure;
    }
  }

  /** The state at the current message boundary; throws when a message is under way. */
  snapshot(): DecoderSnapshot {
    if (!this.atMessageBoundary) throw new GatewayError('INTERNAL', 'RfbDecoder.snapshot() in the middle of a message');
    const c = this.cursor;
    return {
      offset: this.consumed,
      width: this.screen.width,
      height: this.screen.height,
      name: this.screen.name,
      pixels: this.screen.pixels.slice(),
      pixelFormat: Uint8Array.from(this.formatBytes),
      colourMap: new Uint8Array(this.colourMap.entries.buffer.slice(0)),
      cursor: c ? { ...c, rgba: c.rgba.slice() } : null,
      zlib: this.zlib.map((z) => ({ started: z.started, window: Uint8Array.from(z.window) })),
    };
  }

  // ----------------------------------------------------------------------------------------
  // DecodeContext

  setCursor(shape: CursorShape): void {
    this.cursor = shape;
    this.tell(() => this.events.cursor?.(shape));
  }

  resize(width: number, height: number): void {
    // TigerVNC answers every whole-screen request with an ExtendedDesktopSize of the same size
    if (width === this.screen.width && height === this.screen.height) return;
    this.screen.resize(width, height);
    this.resized = true;
    this.tell(() => this.events.resize?.(width, height));
  }

  rename(name: string): void {
    this.screen.name = name;
    this.tell(() => this.events.name?.(name));
  }

  // ----------------------------------------------------------------------------------------

  /** Calls an event callback, marking what it throws as its own. */
  private tell(f: () => void): void {
    try {
      f();
    } catch (err) {
      throw new CallbackError(err);
    }
  }

  private usePixelFormat(bytes: Buffer): void {
    if (bytes.length < PIXEL_FORMAT_LENGTH) throw protocolError(`PIXEL_FORMAT of ${bytes.length} bytes`);
    const pf = parsePixelFormat(bytes);
    this.format = pf;
    this.formatBytes = encodePixelFormat(pf);
    this.pixel = new PixelConverter(pf, this.colourMap);
    const compact = compactPixelBytes(pf);
    this.compactPixel = new PixelConverter(pf, this.colourMap, compact.bytes, compact.shift);
    // TPIXEL is R G B whatever the shifts: read as a little-endian 3-byte pixel at 0/8/16, the fast path's layout
    this.tightPixel = isTightRgb(pf) ? new PixelConverter(CLIENT_PIXEL_FORMAT, this.colourMap, 3) : this.pixel;
  }

  private gather(src: Buffer, from: number, k: number): void {
    const size = this.carried + k;
    if (size > this.carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(size, Math.min(2 * this.carry.length, this.need), 256));
      this.carry.copy(grown, 0, 0, this.carried);
      this.carry = grown;
    }
    src.copy(this.carry, this.carried, from, from + k);
    this.carried = size;
  }

  /** Decodes units from `b[at, end)` while they are whole; returns the bytes used and sets `need`. */
  private run(b: Buffer, at: number, end: number): number {
    const start = at;
    for (;;) {
      const r = this.unit(b, at, end);
      if (r < 0) {
        if (-r <= end - at) throw new GatewayError('INTERNAL', `RFB decoder asked for ${-r} bytes with ${end - at} at hand (step ${this.step}, encoding ${this.head.encoding})`);
        this.need = -r;
        return at - start;
      }
      at += r;
      this.consumed += r;
      if (this.ending !== End.None) this.endMessage();
    }
  }

  /** One unit of the current step: bytes used, or minus the bytes needed. */
  private unit(b: Buffer, at: number, end: number): number {
    const have = end - at;
    switch (this.step) {
      case Step.MessageType: return have === 0 ? -1 : this.message(b, at, have);
      case Step.RectangleHead: {
        if (have < 12) return -12;
        this.rectangle({ x: b.readUInt16BE(at), y: b.readUInt16BE(at + 2), width: b.readUInt16BE(at + 4), height: b.readUInt16BE(at + 6), encoding: b.readInt32BE(at + 8) });
        return 12;
      }
      case Step.Rectangle: {
        const d = this.current!;
        if (d.done) {
          this.rectangleDone();
          return 0;
        }
        if (have === 0) return -1;
        const r = d.decode(b, at, end);
        if (r >= 0 && d.done) this.rectangleDone();
        return r;
      }
      case Step.Skip: {
        if (have === 0) return -1;
        const k = Math.min(have, this.skipLeft);
        this.skipLeft -= k;
        if (this.skipLeft === 0) {
          if (this.afterSkip) {
            this.afterSkip = false;
            this.nextRectangle();
          } else {
            this.step = Step.MessageType;
          }
        }
        return k;
      }
    }
    throw new GatewayError('INTERNAL', `RFB decoder in step ${this.step}`);
  }

  private message(b: Buffer, at: number, have: number): number {
    const type = b[at]!;
    switch (type) {
      case 0: { // FramebufferUpdate
        if (have < 4) return -4;
        this.rectsLeft = b.readUInt16BE(at + 2);
        this.damage = [];
        this.resized = false;
        this.nextRectangle();
        return 4;
      }
      case 1: { // SetColourMapEntries
        if (have < 6) return -6;
        const first = b.readUInt16BE(at + 2);
        const count = b.readUInt16BE(at + 4);
        const size = 6 + 6 * count;
        if (have < size) return -size;
        this.colourMap.set(first, count, b, at + 6);
        return size;
      }
      case 2: // Bell
        this.ending = End.Bell;
        return 1;
      case 3: { // ServerCutText; a negative length is the Extended Clipboard form
        if (have < 8) return -8;
        const length = Math.abs(b.readInt32BE(at + 4));
        if (length > MAX_CUT_TEXT) throw protocolError(`ServerCutText of ${length} bytes (at most ${MAX_CUT_TEXT})`);
        if (have < 8 + length) return -(8 + length);
        this.cutText = Buffer.from(b.subarray(at + 8, at + 8 + length));
        this.ending = End.CutText;
        return 8 + length;
      }
      case 150: // EndOfContinuousUpdates
        return 1;
      case 248: { // ServerFence
        if (have < 9) return -9;
        const length = b[at + 8]!;
        if (length > MAX_FENCE) throw protocolError(`ServerFence payload of ${length} bytes (at most ${MAX_FENCE})`);
        if (have < 9 + length) return -(9 + length);
        return 9 + length;
      }
      case 250: // xvp
        if (have < 4) return -4;
        return 4;
      case 255: { // QEMU: only audio (subtype 1) goes from server to client
        if (have < 4) return -4;
        const sub = b[at + 1]!;
        if (sub !== 1) throw protocolError(`QEMU server message subtype ${sub}`);
        const op = b.readUInt16BE(at + 2);
        if (op === 0 || op === 1) return 4;
        if (op !== 2) throw protocolError(`QEMU audio operation ${op}`);
        if (have < 8) return -8;
        const length = b.readUInt32BE(at + 4);
        if (length > MAX_ENCODED) throw protocolError(`QEMU audio data of ${length} bytes (at most ${MAX_ENCODED})`);
        if (length > 0) {
          this.skipLeft = length;
          this.step = Step.Skip;
        }
        return 8;
      }
      default:
        throw protocolError(`unknown server message type ${type}`);
    }
  }

  private nextRectangle(): void {
    if (this.rectsLeft === 0) {
      this.step = Step.MessageType;
      this.ending = End.Update;
      return;
    }
    this.rectsLeft--;
    this.step = Step.RectangleHead;
  }

  private rectangle(head: RectHead): void {
    this.head = head;
    const e = head.encoding;
    if (e === Encoding.LastRect) {
      // the update ends here whatever its count said (rfbproto LastRect)
      this.rectsLeft = 0;
      return this.nextRectangle();
    }
    if (e === Encoding.QemuLedState) {
      this.skipLeft = 1;
      this.step = Step.Skip;
      // the LED state byte is the rectangle's whole body: the update goes on after it
      this.afterSkip = true;
      return;
    }
    if (e === Encoding.QemuExtendedKeyEvent || e === Encoding.QemuAudio || e === Encoding.Xvp || e === Encoding.Fence || e === Encoding.ContinuousUpdates) {
      // acknowledgements that the server knows the pseudo-encoding: no body
      return this.nextRectangle();
    }
    const d = this.decoders.get(e);
    if (!d) throw protocolError(`a rectangle in encoding ${e}, which was not asked for`);
    this.current = d;
    this.step = Step.Rectangle;
    d.begin(head);
  }

  /** Set while a Skip step is a rectangle's body rather than a whole message's. */
  private afterSkip = false;

  private rectangleDone(): void {
    const h = this.head;
    if (h.encoding >= 0 && h.width > 0 && h.height > 0) {
      const r: Rect = { x: h.x, y: h.y, width: h.width, height: h.height };
      this.damage.push(r);
      this.tell(() => this.events.rect?.(r, h.encoding));
    }
    this.current = null;
    this.nextRectangle();
  }

  private endMessage(): void {
    const ending = this.ending;
    this.ending = End.None;
    if (ending === End.Update) {
      const damage = this.resized ? [this.screen.bounds, ...this.damage] : this.damage;
      this.damage = [];
      this.tell(() => this.events.update?.(damage));
    } else if (ending === End.Bell) {
      this.tell(() => this.events.bell?.());
    } else if (ending === End.CutText) {
      const text = this.cutText!;
      this.cutText = null;
      this.tell(() => this.events.cutText?.(text));
    }
  }
}
