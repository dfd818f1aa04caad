/**
 * @module rfb/shared/dirty-region
 * What one viewer of a shared console has not been sent yet: the rectangles the backend changed
 * since that viewer's last update. A viewer that does not ask for a while (a slow browser, a
 * background tab) only lets this grow, never the backend wait: rectangles inside another are
 * dropped, and past `MAX_RECTS` the region becomes its bounding box, so it is bounded whatever
 * the backend sends and however long the viewer sleeps. Sending a little more than changed is
 * always right (the pixels sent are the current ones); sending less never happens.
 */
import type { Rect } from '../framebuffer/types.ts';

/** Rectangles kept before the region collapses into its bounding box. */
export const MAX_RECTS = 64;

export class DirtyRegion {
  private rects: Rect[] = [];

  get empty(): boolean {
    return this.rects.length === 0;
  }

  get size(): number {
    return this.rects.length;
  }

  /** Adds `r`, clipped to a `width` x `height` screen. */
  add(r: Rect, width: number, height: number): void {
    const c = clip(r, { x: 0, y: 0, width, height });
    if (!c) return;
    for (const have of this.rects) if (contains(have, c)) return;
    this.rects = this.rects.filter((have) => !contains(c, have));
    this.rects.push(c);
    if (this.rects.length > MAX_RECTS) this.rects = [bounds(this.rects)];
  }

  /** The whole screen is dirty (a late joiner, a new size). */
  all(width: number, height: number): void {
    this.rects = width > 0 && height > 0 ? [{ x: 0, y: 0, width, height }] : [];
  }

  /**
   * Takes what lies in `area` (the viewer's request): those parts are returned and forgotten; a
   * rectangle only partly inside stays dirty whole (its outside part goes with a later request).
   */
  take(area: Rect): Rect[] {
    const out: Rect[] = [];
    const keep: Rect[] = [];
    for (const r of this.rects) {
      const c = clip(r, area);
      if (!c) keep.push(r);
      else {
        out.push(c);
        if (c.width !== r.width || c.height !== r.height) keep.push(r);
      }
    }
    this.rects = keep;
    return out;
  }

  clear(): void {
    this.rects = [];
  }
}

export function clip(r: Rect, to: Rect): Rect | null {
  const x = Math.max(r.x, to.x);
  const y = Math.max(r.y, to.y);
  const right = Math.min(r.x + r.width, to.x + to.width);
  const bottom = Math.min(r.y + r.height, to.y + to.height);
  return right > x && bottom > y ? { x, y, width: right - x, height: bottom - y } : null;
}

function contains(outer: Rect, inner: Rect): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
}

function bounds(rects: readonly Rect[]): Rect {
  let x = Infinity, y = Infinity, right = 0, bottom = 0;
  for (const r of rects) {
    x = Math.min(x, r.x);
    y = Math.min(y, r.y);
    right = Math.max(right, r.x + r.width);
    bottom = Math.max(bottom, r.y + r.height);
  }
  return { x, y, width: right - x, height: bottom - y };
}
