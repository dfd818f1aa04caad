/**
 * @module rfb/framebuffer/types
 * The contract of Porthole's RFB client core: the screen of a VM as Porthole keeps it (RGBA, one
 * byte per channel, row-major, alpha 255) and the decoder that turns the server-to-client RFB
 * stream after ServerInit (RFC 6143 §7.6) into it. Screenshots, recordings' playback and shared
 * consoles all read the screen through this; nothing here knows of sockets, the proxy or the API.
 * The decoders of each encoding are one file each beside this one.
 */

/** RFC 6143 §7.4 PIXEL_FORMAT. */
export interface PixelFormat {
  readonly bitsPerPixel: 8 | 16 | 32;
  readonly depth: number;
  readonly bigEndian: boolean;
  readonly trueColour: boolean;
  readonly redMax: number;
  readonly greenMax: number;
  readonly blueMax: number;
  readonly redShift: number;
  readonly greenShift: number;
  readonly blueShift: number;
}

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** The screen: `pixels` holds `width * height * 4` bytes, R G B A per pixel. */
export interface Framebuffer {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;
  /** ServerInit's desktop name (or the last DesktopName pseudo-rectangle's). */
  readonly name: string;
}

/** The cursor shape of the Cursor / X Cursor pseudo-encodings, as RGBA. */
export interface CursorShape {
  readonly hotX: number;
  readonly hotY: number;
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

/** What a decoder tells as it goes; every callback is optional. */
export interface DecoderEvents {
  /** After each whole FramebufferUpdate: the rectangles it changed (CopyRect's destination included). */
  update?(damage: readonly Rect[]): void;
  /** DesktopSize / ExtendedDesktopSize: the screen has a new size (and all of it is damaged). */
  resize?(width: number, height: number): void;
  cursor?(shape: CursorShape): void;
  bell?(): void;
  /** ServerCutText's bytes (Latin-1, or the Extended Clipboard form as it came). */
  cutText?(text: Buffer): void;
  /**
   * Each rectangle of pixels as soon as it is decoded (not the pseudo-rectangles), with its
   * encoding: for a caller that must know what of the screen has arrived, e.g. a whole-screen
   * request, before the update ends.
   */
  rect?(rect: Rect, encoding: number): void;
  /** DesktopName: the desktop has a new name (`Framebuffer.name`). */
  name?(name: string): void;
}

/**
 * Everything a decoder needs to go on decoding the same stream from a message boundary, in
 * another process (recordings' seek). `offset` is where in the stream after ServerInit that
 * boundary is: the restored decoder is fed the stream from there.
 */
export interface DecoderSnapshot {
  readonly offset: number;
  readonly width: number;
  readonly height: number;
  readonly name: string;
  /** `width * height * 4` bytes of RGBA. */
  readonly pixels: Uint8Array;
  /** The 16-byte PIXEL_FORMAT in force. */
  readonly pixelFormat: Uint8Array;
  /** Colour-map entries as RGBA, 4 bytes each (empty when none was ever set). */
  readonly colourMap: Uint8Array;
  readonly cursor: CursorShape | null;
  /** ZRLE's zlib stream, then Tight's streams 0 to 3: started, and the last 32 KiB inflated. */
  readonly zlib: readonly { readonly started: boolean; readonly window: Uint8Array }[];
}
