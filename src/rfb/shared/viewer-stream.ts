/**
 * @module rfb/shared/viewer-stream
 * The server role of a shared console toward one viewer: a Duplex that speaks RFB as a server to
 * the browser from its first byte, in the place of the backend socket a plain relay dials (the
 * relay reads and writes it as it would a socket). ProtocolVersion 3.8 (3.3 and 3.7 answered in
 * their own form), security None, ClientInit (its shared flag ignored: the screen is shared
 * anyway), ServerInit with the kept framebuffer's size, `SERVER_PIXEL_FORMAT` and the desktop's
 * name; each handshake message is its own chunk, so it reaches the browser as its own WebSocket
 * message (clients such as tempest's read one RFB message a frame).
 *
 * Then updates from the kept framebuffer (`ScreenHost.screen()`), never from the backend's
 * bytes: the host tells every viewer what changed (`damage`), each viewer keeps its own dirty
 * region (`dirty-region.ts`) and answers its browser's FramebufferUpdateRequest with it, encoded
 * for that browser's pixel format and encodings (ZRLE when asked for, Raw otherwise), with
 * DesktopSize when the screen's size changed and the Cursor pseudo-encoding when the cursor did.
 * A first request that is not incremental (a late joiner's) gets the whole screen at once. A
 * viewer whose browser does not read holds one update at most: while its stream is full it
 * sends nothing, its region only grows (bounded), and the next update carries it all. A ZRLE
 * update is read from the screen at once and deflated asynchronously (`zrle-encoder.ts`): one
 * update in flight, what changes meanwhile waits in the region for the next.
 *
 * Whole input messages go to the host, which decides whether they reach the backend (only the
 * viewer in control's do). Destroying the stream detaches the viewer and never touches the
 * backend connection, which the host owns; `backendEnded` ends the stream after what it holds.
 */
import { Duplex } from 'node:stream';
import { GatewayError } from '../../errors.ts';
import type { CursorShape, Framebuffer, PixelFormat, Rect } from '../framebuffer/types.ts';
import { DirtyRegion } from './dirty-region.ts';
import { PixelPacker, readPixelFormat, SERVER_PIXEL_FORMAT, writePixelFormat } from './pixel-format.ts';
import { ViewerMessages, type HandshakeStep } from './viewer-messages.ts';
import { ZrleEncoder } from './zrle-encoder.ts';

/** RFC 6143 §7.7 and rfbproto numbers of what the server role sends. */
export const Encoding = {
  Raw: 0,
  ZRLE: 16,
  DesktopSize: -223,
  Cursor: -239,
  ExtendedDesktopSize: -308,
} as const;

/** What a viewer needs of the shared console it is attached to. */
export interface ScreenHost {
  /** The kept screen as it is now. */
  screen(): Framebuffer;
  /** The backend's cursor shape, when it sent one. */
  cursor(): CursorShape | null;
  /** A whole input message of this viewer's browser (the host forwards it, or not). */
  input(viewer: ViewerStream, message: Buffer): void;
  /** The viewer's browser asked for an update (the host keeps the backend's updates coming). */
  wants(viewer: ViewerStream): void;
  /** The handshake is done: the viewer takes updates from now on. */
  ready?(viewer: ViewerStream): void;
  detach(viewer: ViewerStream): void;
}

export interface ViewerStreamOptions {
  /** Deadline of the browser's half of the handshake (ms). */
  readonly handshakeTimeoutMs: number;
  /** zlib level of this viewer's ZRLE stream (0-9). */
  readonly zlibLevel?: number;
}

/** An update is held back while the stream holds this much that its reader has not taken. */
const HIGH_WATER = 512 * 1024;

export class ViewerStream extends Duplex {
  private readonly messages: ViewerMessages;
  private minor = 8;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private live = false;
  private format: PixelFormat = SERVER_PIXEL_FORMAT;
  private packer = new PixelPacker(SERVER_PIXEL_FORMAT);
  private zrle: ZrleEncoder | undefined;
  private encodings = new Set<number>();
  private preferred: number = Encoding.Raw;
  private readonly dirty = new DirtyRegion();
  /** The area the browser asked for and has not been sent yet (requests merged). */
  private request: Rect | null = null;
  /** The screen's size as the browser knows it. */
  private width = 0;
  private height = 0;
  private cursorChanged = false;
  /** The stream is full: nothing more until its reader takes what it holds (`_read`). */
  private blocked = false;
  /** A ZRLE update is being deflated: the next waits for it. */
  private deflating = false;
  /** The stream has been ended (`backendEnded`): nothing more is pushed. */
  private ended = false;

  constructor(
    private readonly host: ScreenHost,
    private readonly opts: ViewerStreamOptions,
  ) {
    super({ allowHalfOpen: false, readableHighWaterMark: HIGH_WATER });
    this.messages = new ViewerMessages({
      handshake: (step, bytes) => this.handshake(step, bytes),
      setPixelFormat: (m) => this.setPixelFormat(m),
      setEncodings: (list) => this.setEncodings(list),
      updateRequest: (incremental, x, y, width, height) => this.updateRequest(incremental, { x, y, width, height }),
      input: (m) => this.host.input(this, m),
    });
    this.handshakeTimer = setTimeout(() => this.fail(new GatewayError('CLIENT_TIMEOUT', `a shared console's viewer did not finish the RFB handshake within ${opts.handshakeTimeoutMs} ms`, { closeCode: 1011, clientMessage: 'The console did not answer in time' })), opts.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    this.push(Buffer.from('RFB 003.008\n', 'latin1'));
  }

  /** Past the handshake: takes updates. */
  get ready(): boolean {
    return this.live;
  }

  /** The browser's pixel format (the one updates are encoded in). */
  get pixelFormat(): PixelFormat {
    return this.format;
  }

  /** The backend changed `rects` of the screen. */
  damage(rects: readonly Rect[]): void {
    if (!this.live) return;
    const fb = this.host.screen();
    for (const r of rects) this.dirty.add(r, fb.width, fb.height);
    this.flush();
  }

  /** The screen has a new size: all of it is sent again, after a DesktopSize. */
  resized(): void {
    if (!this.live) return;
    const fb = this.host.screen();
    this.dirty.all(fb.width, fb.height);
    this.flush();
  }

  cursorShape(): void {
    if (!this.live || !this.supports(Encoding.Cursor)) return;
    this.cursorChanged = true;
    this.flush();
  }

  bell(): void {
    if (this.live && !this.ended) this.push(Buffer.from([2]));
  }

  /** ServerCutText (RFC 6143 §7.6.4) of `text` (Latin-1 bytes). */
  cutText(text: Buffer): void {
    if (!this.live || this.ended) return;
    const m = Buffer.alloc(8 + text.length);
    m[0] = 3;
    m.writeUInt32BE(text.length, 4);
    text.copy(m, 8);
    this.push(m);
  }

  /** The shared console's backend connection is gone: the stream ends after what it holds. */
  backendEnded(): void {
    clearTimeout(this.handshakeTimer);
    // an update still being deflated is dropped: the session ends anyway
    this.ended = true;
    if (!this.destroyed) this.push(null);
  }

  override _read(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.flush();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      this.messages.push(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.handshakeTimer);
    this.live = false;
    this.zrle?.close();
    this.host.detach(this);
    callback(error);
  }

  private fail(err: GatewayError): void {
    this.destroy(err);
  }

  private handshake(step: HandshakeStep, bytes: Buffer): void {
    if (step === 'ProtocolVersion') {
      const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(bytes.toString('latin1'));
      if (!m || Number(m[1]) !== 3) throw protocolError(`not an RFB 3.x ProtocolVersion`);
      const minor = Number(m[2]);
      // 3.889 (Apple) and anything later speak 3.8's handshake; 3.4 and 3.6 (UltraVNC) 3.3's
      this.minor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
      if (this.minor === 3) {
        // RFC 6143 §7.1.2: the server picks the security type (u32 None)
        this.push(Buffer.from([0, 0, 0, 1]));
        this.messages.expect('ClientInit');
      } else {
        this.push(Buffer.from([1, 1]));
        this.messages.expect('Security');
      }
      return;
    }
    if (step === 'Security') {
      if (bytes[0] !== 1) {
        if (this.minor === 8) {
          const reason = Buffer.from('security type not offered', 'latin1');
          const m = Buffer.alloc(8 + reason.length);
          m.writeUInt32BE(1, 0);
          m.writeUInt32BE(reason.length, 4);
          reason.copy(m, 8);
          this.push(m);
        }
        throw protocolError(`the client chose security type ${bytes[0]}, not None`);
      }
      // 3.7 sends no SecurityResult for None (RFC 6143 §7.1.3)
      if (this.minor === 8) this.push(Buffer.from([0, 0, 0, 0]));
      this.messages.expect('ClientInit');
      return;
    }
    // ClientInit: its shared flag is ignored, the screen is shared whatever it says
    this.messages.expect(null);
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    const fb = this.host.screen();
    const name = Buffer.from(fb.name, 'utf8');
    const init = Buffer.alloc(24 + name.length);
    init.writeUInt16BE(fb.width, 0);
    init.writeUInt16BE(fb.height, 2);
    writePixelFormat(SERVER_PIXEL_FORMAT, init, 4);
    init.writeUInt32BE(name.length, 20);
    name.copy(init, 24);
    this.width = fb.width;
    this.height = fb.height;
    this.push(init);
    this.live = true;
    this.host.ready?.(this);
  }

  private setPixelFormat(m: Buffer): void {
    try {
      this.format = readPixelFormat(m, 4);
    } catch (err) {
      throw protocolError((err as Error).message);
    }
    this.packer = new PixelPacker(this.format);
    this.zrle?.setPacker(this.packer);
  }

  private setEncodings(list: number[]): void {
    this.encodings = new Set(list);
    // the client's order is its preference (RFC 6143 §7.5.2); Raw is always allowed
    this.preferred = list.find((e) => e === Encoding.ZRLE || e === Encoding.Raw) ?? Encoding.Raw;
    if (this.supports(Encoding.Cursor) && this.host.cursor()) this.cursorChanged = true;
  }

  private supports(encoding: number): boolean {
    return this.encodings.has(encoding);
  }

  private updateRequest(incremental: boolean, area: Rect): void {
    if (!incremental) this.dirty.add(area, this.width, this.height);
    const r = this.request;
    this.request = r === null ? area : union(r, area);
    this.host.wants(this);
    this.flush();
  }

  /** Sends one FramebufferUpdate when the browser asked for one, something is to be sent, and the stream has room. */
  private flush(): void {
    if (!this.live || this.request === null || this.blocked || this.deflating || this.ended || this.destroyed) return;
    const fb = this.host.screen();
    const pieces: Buffer[] = [];
    let count = 0;
    if (fb.width !== this.width || fb.height !== this.height) {
      if (this.supports(Encoding.DesktopSize) || this.supports(Encoding.ExtendedDesktopSize)) {
        pieces.push(desktopSize(fb.width, fb.height, this.supports(Encoding.DesktopSize)));
        count++;
        this.width = fb.width;
        this.height = fb.height;
        // the browser's screen is new: all of it, whatever it asked for
        this.dirty.all(fb.width, fb.height);
        this.request = { x: 0, y: 0, width: fb.width, height: fb.height };
      }
      // a browser that cannot be told keeps its size: what lies outside it is not sent
    }
    if (this.cursorChanged) {
      const shape = this.host.cursor();
      this.cursorChanged = false;
      if (shape) {
        pieces.push(this.cursor(shape));
        count++;
      }
    }
    const area = { x: 0, y: 0, width: Math.min(this.width, fb.width), height: Math.min(this.height, fb.height) };
    const wanted = intersect(this.request, area);
    const rects = wanted ? this.dirty.take(wanted) : [];
    if (count === 0 && rects.length === 0) return;
    this.request = null;
    const head = Buffer.alloc(4);
    head.writeUInt16BE(count + rects.length, 2);
    pieces.unshift(head);
    if (rects.length > 0 && this.preferred === Encoding.ZRLE) {
      // the pixels are read now; deflating them is asynchronous, one update at a time
      const zrle = (this.zrle ??= new ZrleEncoder(this.packer, this.opts.zlibLevel));
      const tiles = rects.map((r) => zrle.tilesOf(fb.pixels, fb.width, r.x, r.y, r.width, r.height));
      this.deflating = true;
      void this.deflateAll(zrle, rects, tiles).then((bodies) => {
        this.deflating = false;
        if (this.ended || this.destroyed) return;
        // zlib failed (not a viewer that left: that one is destroyed): the viewer cannot go on without its stream
        if (!bodies) return this.fail(new GatewayError('INTERNAL', `a shared console's viewer: ZRLE deflate failed`, { closeCode: 1011, clientMessage: 'Internal error' }));
        rects.forEach((r, i) => {
          const header = Buffer.allocUnsafe(12);
          rectHeader(header, 0, r.x, r.y, r.width, r.height, Encoding.ZRLE);
          pieces.push(header, bodies[i]!);
        });
        if (!this.push(Buffer.concat(pieces))) this.blocked = true;
        // what changed or was asked for meanwhile
        this.flush();
      });
      return;
    }
    for (const r of rects) pieces.push(this.raw(fb, r));
    if (!this.push(Buffer.concat(pieces))) this.blocked = true;
  }

  /** Each rectangle's tiles deflated in turn on the viewer's one zlib stream; undefined when the encoder was closed (the viewer left). */
  private async deflateAll(zrle: ZrleEncoder, rects: readonly Rect[], tiles: readonly Buffer[]): Promise<Buffer[] | undefined> {
    const bodies: Buffer[] = [];
    try {
      for (let i = 0; i < rects.length; i++) bodies.push(await zrle.deflate(tiles[i]!));
    } catch {
      return undefined;
    }
    return bodies;
  }

  private raw(fb: Framebuffer, r: Rect): Buffer {
    const out = Buffer.allocUnsafe(12 + r.width * r.height * this.packer.bytesPerPixel);
    rectHeader(out, 0, r.x, r.y, r.width, r.height, Encoding.Raw);
    this.packer.pack(fb.pixels, fb.width, r.x, r.y, r.width, r.height, out, 12);
    return out;
  }

  /** RFC 6143 §7.8.1: the shape's pixels in the browser's format, then a bitmask of those shown (alpha at least half). */
  private cursor(s: CursorShape): Buffer {
    const bpp = this.packer.bytesPerPixel;
    const maskRow = Math.ceil(s.width / 8);
    const out = Buffer.alloc(12 + s.width * s.height * bpp + maskRow * s.height);
    rectHeader(out, 0, s.hotX, s.hotY, s.width, s.height, Encoding.Cursor);
    const end = this.packer.pack(s.rgba, s.width, 0, 0, s.width, s.height, out, 12);
    for (let y = 0; y < s.height; y++) {
      for (let x = 0; x < s.width; x++) {
        if (s.rgba[(y * s.width + x) * 4 + 3]! >= 128) out[end + y * maskRow + (x >> 3)]! |= 0x80 >> (x & 7);
      }
    }
    return out;
  }
}

function rectHeader(out: Buffer, at: number, x: number, y: number, w: number, h: number, encoding: number): void {
  out.writeUInt16BE(x, at);
  out.writeUInt16BE(y, at + 2);
  out.writeUInt16BE(w, at + 4);
  out.writeUInt16BE(h, at + 6);
  out.writeInt32BE(encoding, at + 8);
}

/** DesktopSize (a bare rectangle) or, for a client that knows only it, ExtendedDesktopSize with one screen. */
function desktopSize(width: number, height: number, plain: boolean): Buffer {
  if (plain) {
    const out = Buffer.alloc(12);
    rectHeader(out, 0, 0, 0, width, height, Encoding.DesktopSize);
    return out;
  }
  const out = Buffer.alloc(12 + 4 + 16);
  // x = 0 (a change made by the server), y = 0 (no error)
  rectHeader(out, 0, 0, 0, width, height, Encoding.ExtendedDesktopSize);
  out[12] = 1;
  out.writeUInt16BE(width, 16 + 8);
  out.writeUInt16BE(height, 16 + 10);
  return out;
}

function union(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

function intersect(a: Rect, b: Rect): Rect | null {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  return right > x && bottom > y ? { x, y, width: right - x, height: bottom - y } : null;
}

function protocolError(detail: string): GatewayError {
  return new GatewayError('CLIENT_PROTOCOL', `RFB from a shared console's viewer: ${detail}`, { closeCode: 1002, clientMessage: 'the console client sent a message the proxy cannot read' });
}
