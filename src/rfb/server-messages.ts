/**
 * @module rfb/server-messages
 * Frames the server-to-client RFB messages after ServerInit (RFC 6143 §7.6 and rfbproto's
 * extensions), so that the clipboard policy can leave out ServerCutText (§7.6.4, also in the
 * Extended Clipboard form whose length is negative). Delimiting a FramebufferUpdate means walking
 * its rectangles, so only the encodings in `FRAMED_ENCODINGS` can be framed: the policy rewrites
 * the client's SetEncodings to those (`client-messages.ts`), and a rectangle in any other
 * encoding ends the session. Pixel data is never decoded or copied: Raw, RRE, Hextile and the
 * cursors are sized from the pixel format in force (ServerInit's, then each SetPixelFormat the
 * client sent), ZRLE and Tight carry their own lengths.
 * The pixel format is the one the client last asked for when the update's header passes the
 * proxy, which is what a client assumes too (noVNC sets its format once, before its first
 * update request).
 */
import { MessageStream, unframeable } from './message-stream.ts';
import { MAX_CUT_TEXT } from './client-messages.ts';
import { MAX_DESKTOP_NAME } from './security-proxy.ts';

/** Bound on a ZRLE or Tight rectangle's compressed data and a QEMU audio sample buffer. */
export const MAX_ENCODED = 256 * 1024 * 1024;
const MAX_FENCE = 64;
/** Tight sends data shorter than this uncompressed, without a length (TightVNC's TIGHT_MIN_TO_COMPRESS). */
const TIGHT_MIN_TO_COMPRESS = 12;

/** Encodings and pseudo-encodings whose rectangles this framer can delimit. */
export const FRAMED_ENCODINGS: ReadonlySet<number> = new Set([
  0, // Raw
  1, // CopyRect
  2, // RRE
  5, // Hextile
  7, // Tight
  16, // ZRLE
  -223, // DesktopSize
  -224, // LastRect
  -239, // Cursor
  -240, // X Cursor
  -258, // QEMU Extended Key Event
  -259, // QEMU Audio
  -261, // QEMU LED State
  -307, // DesktopName
  -308, // ExtendedDesktopSize
  -309, // xvp
  -312, // Fence
  -313, // ContinuousUpdates
]);

/** Pseudo-encodings that only ask for a level and never appear as a rectangle: Tight's JPEG quality and compression levels. */
export function isLevelPseudoEncoding(e: number): boolean {
  return (e >= -32 && e <= -23) || (e >= -256 && e <= -247);
}

/** The framer's steps, named after the message part each one reads. */
const Step = {
  MessageType: 0,
  FramebufferUpdateHead: 1,
  Rectangle: 2,
  NextRectangle: 3,
  RreHead: 4,
  HextileSubencoding: 5,
  HextileSubrectCount: 6,
  NextTile: 7,
  Length32: 8,
  TightControl: 9,
  TightFilter: 10,
  TightPaletteSize: 11,
  TightData: 12,
  TightLength: 13,
  ExtendedDesktopSizeHead: 14,
  ColourMapHead: 15,
  ServerCutTextHead: 16,
  ServerFenceHead: 17,
  QemuSubtype: 18,
  QemuAudioOperation: 19,
  QemuAudioLength: 20,
  MessageEnd: 21,
} as const;

export interface ServerMessagePolicy {
  /** ServerCutText is left out (the clipboard may not leave the VM). */
  readonly dropCutText: boolean;
}

export class ServerMessages extends MessageStream {
  /** Bytes per pixel of the format in force, and Tight's TPIXEL size (3 for 32-bit depth-24 true colour). */
  private bytesPerPixel = 4;
  private tightPixel = 3;
  private rectsLeft = 0;
  private width = 0;
  private height = 0;
  private tilesAcross = 0;
  private tilesLeft = 0;
  private tileIndex = 0;
  private tileSubencoding = 0;
  private palette = 0;
  private compactLength = 0;
  private compactBytes = 0;
  /** What a length read by `Length32` bounds and names, for the error. */
  private lengthBound = 0;
  private lengthName = '';
  private lengthNext: number = Step.NextRectangle;

  /** `serverFormat`: the 16-byte PIXEL_FORMAT of ServerInit. */
  constructor(private readonly policy: ServerMessagePolicy, serverFormat: Buffer) {
    super(16, Step.MessageType);
    this.setPixelFormat(serverFormat);
  }

  /** The client asked for `format` (SetPixelFormat's 16 bytes): updates use it from now on. */
  setPixelFormat(format: Buffer): void {
    const bpp = format[0]!;
    if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw unframeable('client', `pixel format of ${bpp} bits per pixel`);
    this.bytesPerPixel = bpp / 8;
    const is888 = bpp === 32 && format[1] === 24 && format[3] !== 0 && format.readUInt16BE(4) === 255 && format.readUInt16BE(6) === 255 && format.readUInt16BE(8) === 255;
    this.tightPixel = is888 ? 3 : this.bytesPerPixel;
  }

  protected step(state: number): void {
    const h = this.head;
    const bpp = this.bytesPerPixel;
    switch (state) {
      case Step.MessageType: return this.messageType(h[0]!);
      case Step.FramebufferUpdateHead:
        this.rectsLeft = h.readUInt16BE(1);
        return this.nextRectangle();
      case Step.NextRectangle: return this.nextRectangle();
      case Step.Rectangle: return this.rectangle(h.readUInt16BE(4), h.readUInt16BE(6), h.readInt32BE(8));
      case Step.RreHead: return this.skip(h.readUInt32BE(0) * (bpp + 8), Step.NextRectangle);
      case Step.HextileSubencoding: return this.hextileTile(h[0]!);
      case Step.HextileSubrectCount: {
        const count = h[this.hextileBackground()]!;
        return this.skip(count * (this.tileSubencoding & 16 ? bpp + 2 : 2), Step.NextTile);
      }
      case Step.NextTile:
        if (--this.tilesLeft === 0) return this.nextRectangle();
        this.tileIndex++;
        return this.read(1, Step.HextileSubencoding);
      case Step.Length32: {
        const length = h.readUInt32BE(0);
        if (length > this.lengthBound) throw unframeable('backend', `${this.lengthName} of ${length} bytes (at most ${this.lengthBound})`);
        return this.skip(length, this.lengthNext);
      }
      case Step.TightControl: return this.tightControl(h[0]!);
      case Step.TightFilter: {
        const filter = h[0]!;
        if (filter === 0 || filter === 2) return this.tightData(0); // copy, gradient
        if (filter === 1) return this.read(1, Step.TightPaletteSize);
        throw unframeable('backend', `Tight filter ${filter}`);
      }
      case Step.TightPaletteSize: {
        const colours = h[0]! + 1;
        this.palette = colours;
        return this.skip(colours * this.tightPixel, Step.TightData);
      }
      case Step.TightData: return this.tightData(this.palette);
      case Step.TightLength: {
        // compact length: 7 bits in each of the first two bytes while the top bit says more, 8 in the third
        const b = h[0]!;
        this.compactLength |= this.compactBytes === 2 ? b << 14 : (b & 0x7f) << (7 * this.compactBytes);
        this.compactBytes++;
        if (this.compactBytes < 3 && b & 0x80) return this.read(1, Step.TightLength);
        if (this.compactLength > MAX_ENCODED) throw unframeable('backend', `Tight data of ${this.compactLength} bytes`);
        return this.skip(this.compactLength, Step.NextRectangle);
      }
      case Step.ExtendedDesktopSizeHead: return this.skip(16 * h[0]!, Step.NextRectangle);
      case Step.ColourMapHead: return this.skip(6 * h.readUInt16BE(3), Step.MessageEnd);
      case Step.ServerCutTextHead: {
        const length = Math.abs(h.readInt32BE(3));
        if (length > MAX_CUT_TEXT) throw unframeable('backend', `ServerCutText of ${length} bytes (at most ${MAX_CUT_TEXT})`);
        return this.skip(length, Step.MessageEnd);
      }
      case Step.ServerFenceHead: {
        const length = h[7]!;
        if (length > MAX_FENCE) throw unframeable('backend', `ServerFence payload of ${length} bytes (at most ${MAX_FENCE})`);
        return this.skip(length, Step.MessageEnd);
      }
      case Step.QemuSubtype: {
        const sub = h[0]!;
        if (sub === 1) return this.read(2, Step.QemuAudioOperation);
        throw unframeable('backend', `QEMU server message subtype ${sub}`);
      }
      case Step.QemuAudioOperation: {
        const op = h.readUInt16BE(0);
        if (op === 0 || op === 1) return this.done(); // end, begin
        if (op === 2) return this.length32('QEMU audio data', MAX_ENCODED, Step.MessageEnd);
        throw unframeable('backend', `QEMU audio operation ${op}`);
      }
      case Step.MessageEnd: return this.done();
    }
  }

  private messageType(type: number): void {
    switch (type) {
      case 0: return this.read(3, Step.FramebufferUpdateHead);
      case 1: return this.read(5, Step.ColourMapHead); // SetColourMapEntries
      case 2: return this.done(); // Bell
      case 3:
        if (this.policy.dropCutText) this.leaveOut();
        return this.read(7, Step.ServerCutTextHead);
      case 150: return this.done(); // EndOfContinuousUpdates
      case 248: return this.read(8, Step.ServerFenceHead);
      case 250: return this.skip(3, Step.MessageEnd); // xvp
      case 255: return this.read(1, Step.QemuSubtype);
      default: throw unframeable('backend', `unknown message type ${type}`);
    }
  }

  private nextRectangle(): void {
    if (this.rectsLeft === 0) return this.done();
    this.rectsLeft--;
    this.read(12, Step.Rectangle);
  }

  private rectangle(w: number, h: number, encoding: number): void {
    this.width = w;
    this.height = h;
    const bpp = this.bytesPerPixel;
    switch (encoding) {
      case 0: return this.skip(w * h * bpp, Step.NextRectangle);
      case 1: return this.skip(4, Step.NextRectangle);
      case 2: return this.read(4 + bpp, Step.RreHead);
      case 5:
        this.tilesAcross = Math.ceil(w / 16);
        this.tilesLeft = this.tilesAcross * Math.ceil(h / 16);
        this.tileIndex = 0;
        if (this.tilesLeft === 0) return this.nextRectangle();
        return this.read(1, Step.HextileSubencoding);
      case 7: return this.read(1, Step.TightControl);
      case 16: return this.length32('ZRLE data', MAX_ENCODED);
      case -223: case -258: case -259: case -312: case -313: return this.nextRectangle();
      case -224: // LastRect: the update ends here whatever its count said
        this.rectsLeft = 0;
        return this.nextRectangle();
      case -239: return this.skip(w * h * bpp + Math.ceil(w / 8) * h, Step.NextRectangle);
      case -240: return this.skip(w * h > 0 ? 6 + 2 * Math.ceil(w / 8) * h : 0, Step.NextRectangle);
      case -261: return this.skip(1, Step.NextRectangle);
      case -307: return this.length32('DesktopName', MAX_DESKTOP_NAME);
      case -308: return this.read(4, Step.ExtendedDesktopSizeHead);
      case -309: return this.nextRectangle();
      default: throw unframeable('backend', `a rectangle in encoding ${encoding}, which the proxy did not let the client ask for`);
    }
  }

  private hextileTile(sub: number): void {
    this.tileSubencoding = sub;
    const col = this.tileIndex % this.tilesAcross;
    const row = Math.floor(this.tileIndex / this.tilesAcross);
    const tw = Math.min(16, this.width - 16 * col);
    const th = Math.min(16, this.height - 16 * row);
    if (sub & 1) return this.skip(tw * th * this.bytesPerPixel, Step.NextTile); // Raw tile: the other bits do not count
    const colours = this.hextileBackground();
    if (sub & 8) return this.read(colours + 1, Step.HextileSubrectCount); // AnySubrects: a count after the colours
    return this.skip(colours, Step.NextTile);
  }

  /** Bytes of the tile's BackgroundSpecified and ForegroundSpecified colours. */
  private hextileBackground(): number {
    const sub = this.tileSubencoding;
    return (sub & 2 ? this.bytesPerPixel : 0) + (sub & 4 ? this.bytesPerPixel : 0);
  }

  private tightControl(control: number): void {
    const kind = control >> 4;
    if (kind === 8) return this.skip(this.tightPixel, Step.NextRectangle); // fill
    if (kind === 9) return this.tightLength(); // JPEG
    if (kind > 9) throw unframeable('backend', `Tight compression control ${kind}`); // PNG is TightPNG's, not offered
    if (kind & 4) return this.read(1, Step.TightFilter); // explicit filter
    return this.tightData(0);
  }

  /** The basic compression's data, after the filter: raw below 12 bytes, else a compact length and zlib data. */
  private tightData(palette: number): void {
    this.palette = 0;
    const w = this.width;
    const row = palette === 0 ? w * this.tightPixel : palette <= 2 ? Math.ceil(w / 8) : w;
    const size = row * this.height;
    if (size < TIGHT_MIN_TO_COMPRESS) return this.skip(size, Step.NextRectangle);
    this.tightLength();
  }

  private tightLength(): void {
    this.compactLength = 0;
    this.compactBytes = 0;
    this.read(1, Step.TightLength);
  }

  private length32(name: string, bound: number, next: number = Step.NextRectangle): void {
    this.lengthName = name;
    this.lengthNext = next;
    this.lengthBound = bound;
    this.read(4, Step.Length32);
  }

  private done(): void {
    this.endMessage();
    this.read(1, Step.MessageType);
  }
}
