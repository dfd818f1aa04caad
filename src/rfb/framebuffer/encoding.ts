/**
 * @module rfb/framebuffer/encoding
 * What every rectangle decoder (one file per encoding beside this one) implements and what it
 * is given. A decoder is resumable as noVNC's are: `decode` looks at the contiguous bytes it is
 * handed and either decodes a whole unit of its rectangle (a row run, a tile, the whole
 * rectangle for the length-prefixed encodings) and says how many bytes that took, or says how
 * many bytes it needs at least before it can go on; `RfbDecoder` then gathers that many and calls
 * again. A decoder keeps between calls only where it is in its rectangle.
 */
import type { ColourMap, PixelConverter } from './pixel-format.ts';
import type { Screen } from './screen.ts';
import type { CursorShape, Rect } from './types.ts';
import type { ZlibStream } from './zlib-stream.ts';

/** A rectangle's header (§7.6.1): where, how big, in which encoding. */
export interface RectHead extends Rect {
  readonly encoding: number;
}

/** What decoders work on: the screen, the converters of the pixel format in force, the zlib streams. */
export interface DecodeContext {
  readonly screen: Screen;
  /** A whole pixel of the format in force (`bytes` = bits per pixel / 8). */
  readonly pixel: PixelConverter;
  /** ZRLE's CPIXEL of the format in force. */
  readonly compactPixel: PixelConverter;
  /** Tight's TPIXEL of the format in force. */
  readonly tightPixel: PixelConverter;
  readonly colourMap: ColourMap;
  /** ZRLE's one zlib stream, then Tight's four. */
  readonly zlib: readonly ZlibStream[];
  /** A cursor pseudo-rectangle's shape. */
  setCursor(shape: CursorShape): void;
  /** A DesktopSize / ExtendedDesktopSize rectangle: the screen has a new size. */
  resize(width: number, height: number): void;
  /** A DesktopName rectangle. */
  rename(name: string): void;
}

/**
 * `decode` returns the bytes it used (then `done` says whether the rectangle is finished), or a
 * negative number: minus the bytes it needs from `at` before it can go on (more than `end - at`).
 */
export interface RectDecoder {
  done: boolean;
  begin(rect: RectHead): void;
  decode(b: Buffer, at: number, end: number): number;
}
