/**
 * @module demo/screen
 * The demo desktop: a framebuffer of 0x00RRGGBB words and the scene drawn on it (a marker block,
 * colour bars, a title, a UTC clock, the last key pressed, the pointer and a drawing pad). Every
 * change is reported through `onDirty` as a rectangle clipped to the screen; the screen knows
 * nothing of clients or RFB.
 */
import { glyphColumns } from './font.ts';
import { keysymName } from './keysym-name.ts';
import { intersectRect, type Rect } from './rect.ts';

/** Colour of the solid block at x 0..63, y 0..63, for tests that check a pixel. */
export const DEMO_MARKER_RGB: readonly [number, number, number] = Object.freeze([255, 102, 0] as const);

const MARKER_SIZE = 64;

const rgb = (r: number, g: number, b: number): number => (r << 16) | (g << 8) | b;
const BACKGROUND = rgb(0x1c, 0x24, 0x2e);
const PAD_BACKGROUND = rgb(0x10, 0x16, 0x1e);
const TEXT = rgb(0xe8, 0xec, 0xf0);
const DIM_TEXT = rgb(0x8a, 0x96, 0xa4);
const MARKER = rgb(...DEMO_MARKER_RGB);
/** SMPTE-like bars: white, yellow, cyan, green, magenta, red, blue, black. */
const BARS = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000];
/** Dot colour per button (mask bits 0..2), so a person sees which button arrived. */
const BUTTON_DOTS = [0xffd040, 0x40ff80, 0x40c0ff];

const SCALE_TITLE = 4, SCALE_LINE = 3, SCALE_SMALL = 2;
const CURSOR_ARM = 6;

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** The desktop: one 0x00RRGGBB word a pixel, plus the scene drawn on it. */
export class DemoScreen {
  readonly pixels: Uint32Array;
  private cursor: { x: number; y: number; saved: Uint32Array; rect: Rect } | null = null;
  private readonly pad: Rect;
  private readonly clockAt: Rect;
  private readonly keyAt: Rect;
  private readonly pointerAt: Rect;

  constructor(readonly width: number, readonly height: number,
              private readonly onDirty: (r: Rect) => void) {
    this.pixels = new Uint32Array(width * height);
    const lineH = 7 * SCALE_LINE + 10;
    this.clockAt = { x: 16, y: 224, w: width - 16, h: lineH };
    this.keyAt = { x: 16, y: 224 + lineH, w: width - 16, h: lineH };
    this.pointerAt = { x: 16, y: 224 + 2 * lineH, w: width - 16, h: 7 * SCALE_SMALL + 8 };
    const padY = this.pointerAt.y + this.pointerAt.h + 8;
    this.pad = { x: 16, y: padY, w: Math.max(0, width - 32), h: Math.max(0, height - padY - 16) };
    this.drawStatic();
    this.drawClock(new Date());
    this.drawKey(undefined);
    this.drawPointer(0, 0, 0);
  }

  /** Keeps the cursor's saved background true: every drawing hides it first, then shows it. */
  private paint(area: Rect, draw: () => void): void {
    const c = this.cursor;
    const overlaps = c !== null && intersectRect(c.rect, area) !== null;
    if (overlaps) this.hideCursor();
    draw();
    if (overlaps && c) this.showCursor(c.x, c.y);
    const clipped = intersectRect(area, { x: 0, y: 0, w: this.width, h: this.height });
    if (clipped) this.onDirty(clipped);
  }

  private fill(x: number, y: number, w: number, h: number, colour: number): void {
    const r = intersectRect({ x, y, w, h }, { x: 0, y: 0, w: this.width, h: this.height });
    if (!r) return;
    for (let row = r.y; row < r.y + r.h; row++) {
      this.pixels.fill(colour, row * this.width + r.x, row * this.width + r.x + r.w);
    }
  }

  private text(s: string, x: number, y: number, scale: number, colour: number): void {
    let cx = x;
    for (const ch of s) {
      const cols = glyphColumns(ch.codePointAt(0) ?? 0);
      cols.forEach((bits, c) => {
        for (let row = 0; row < 7; row++) {
          if ((bits >> row) & 1) this.fill(cx + c * scale, y + row * scale, scale, scale, colour);
        }
      });
      cx += 6 * scale;
    }
  }

  private drawStatic(): void {
    this.fill(0, 0, this.width, this.height, BACKGROUND);
    this.fill(0, 0, MARKER_SIZE, MARKER_SIZE, MARKER);
    this.text('Porthole demo', MARKER_SIZE + 16, 10, SCALE_TITLE, TEXT);
    this.text('built-in VNC server: type and move the pointer', MARKER_SIZE + 16, 10 + 8 * SCALE_TITLE,
      SCALE_SMALL, DIM_TEXT);
    const barW = Math.ceil(this.width / BARS.length);
    BARS.forEach((colour, i) => this.fill(i * barW, 80, barW, 128, colour));
    this.fill(this.pad.x, this.pad.y, this.pad.w, this.pad.h, PAD_BACKGROUND);
    this.text('hold a button here to draw', this.pad.x + 8, this.pad.y + 8, SCALE_SMALL, DIM_TEXT);
    this.onDirty({ x: 0, y: 0, w: this.width, h: this.height });
  }

  private line(at: Rect, s: string, scale: number, colour: number): void {
    this.paint(at, () => {
      this.fill(at.x, at.y, at.w, at.h, BACKGROUND);
      this.text(s, at.x, at.y + 4, scale, colour);
    });
  }

  drawClock(now: Date): void {
    const hms = `${pad2(now.getUTCHours())}:${pad2(now.getUTCMinutes())}:${pad2(now.getUTCSeconds())}`;
    this.line(this.clockAt, `${hms} UTC`, SCALE_LINE, TEXT);
  }

  drawKey(keysym: number | undefined): void {
    this.line(this.keyAt, keysym === undefined ? 'key: (none yet)' : `key: ${keysymName(keysym)}`,
      SCALE_LINE, TEXT);
  }

  drawPointer(x: number, y: number, buttons: number): void {
    this.line(this.pointerAt, `pointer: ${x},${y}  buttons: ${buttons}`, SCALE_SMALL, DIM_TEXT);
    const dotButton = BUTTON_DOTS.findIndex((_, i) => (buttons >> i) & 1);
    const dot = dotButton >= 0 ? intersectRect({ x: x - 2, y: y - 2, w: 5, h: 5 }, this.pad) : null;
    if (dot) this.paint(dot, () => this.fill(dot.x, dot.y, dot.w, dot.h, BUTTON_DOTS[dotButton] ?? TEXT));
    this.moveCursor(x, y);
  }

  private moveCursor(x: number, y: number): void {
    const old = this.cursor?.rect;
    if (old) this.hideCursor();
    this.showCursor(x, y);
    const now = this.cursor?.rect;
    if (old) this.onDirty(old);
    if (now) this.onDirty(now);
  }

  private hideCursor(): void {
    const c = this.cursor;
    if (!c) return;
    for (let row = 0; row < c.rect.h; row++) {
      this.pixels.set(c.saved.subarray(row * c.rect.w, (row + 1) * c.rect.w),
        (c.rect.y + row) * this.width + c.rect.x);
    }
    this.cursor = null;
  }

  private showCursor(x: number, y: number): void {
    const rect = intersectRect({ x: x - CURSOR_ARM, y: y - CURSOR_ARM, w: 2 * CURSOR_ARM + 1, h: 2 * CURSOR_ARM + 1 },
      { x: 0, y: 0, w: this.width, h: this.height });
    if (!rect) return;
    const saved = new Uint32Array(rect.w * rect.h);
    for (let row = 0; row < rect.h; row++) {
      const from = (rect.y + row) * this.width + rect.x;
      saved.set(this.pixels.subarray(from, from + rect.w), row * rect.w);
    }
    // Inverted rather than one colour, so the cross shows on the white bar and the black one.
    for (let i = -CURSOR_ARM; i <= CURSOR_ARM; i++) {
      this.invert(x + i, y);
      if (i !== 0) this.invert(x, y + i);
    }
    this.cursor = { x, y, saved, rect };
  }

  private invert(x: number, y: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = y * this.width + x;
    this.pixels[i] = (this.pixels[i] ?? 0) ^ 0xffffff;
  }
}
