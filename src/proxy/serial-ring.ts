/**
 * @module proxy/serial-ring
 * The last `capacity` bytes of a serial console's output (`[porthole] serial_log_bytes`), as a
 * ring: a chunk is copied in once, and overwrites the oldest bytes when the ring is full. The
 * ring's memory grows by doubling up to `capacity`, so a console that printed a few lines since
 * the start holds a few KiB, not the whole capacity. `contents()` is the one copy a viewer's
 * scrollback and the serial-log API take.
 */

/** The smallest allocation: a login prompt and a few lines fit without a regrowth. */
const FIRST_SIZE = 4096;

export class SerialRing {
  private buffer: Buffer = Buffer.alloc(0);
  /** Where the next byte goes. */
  private head = 0;
  /** Bytes held (at most `capacity`). */
  private held = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, not ${capacity}`);
  }

  get length(): number {
    return this.held;
  }

  /** Copies `chunk` in; only its last `capacity` bytes stay when it is larger than the ring. */
  append(chunk: Uint8Array): void {
    let data = chunk;
    if (data.length >= this.capacity) {
      data = data.subarray(data.length - this.capacity);
      this.grow(this.capacity);
      this.buffer.set(data, 0);
      this.head = 0;
      this.held = this.capacity;
      return;
    }
    this.grow(this.held + data.length);
    const size = this.buffer.length;
    const first = Math.min(data.length, size - this.head);
    this.buffer.set(data.subarray(0, first), this.head);
    if (first < data.length) this.buffer.set(data.subarray(first), 0);
    this.head = (this.head + data.length) % size;
    this.held = Math.min(this.held + data.length, size);
  }

  /** The bytes held, oldest first, in a buffer of their own. */
  contents(): Buffer {
    const out = Buffer.allocUnsafe(this.held);
    const size = this.buffer.length;
    const start = (this.head - this.held + size) % (size || 1);
    const first = Math.min(this.held, size - start);
    this.buffer.copy(out, 0, start, start + first);
    if (first < this.held) this.buffer.copy(out, first, 0, this.held - first);
    return out;
  }

  /**
   * Makes room for `needed` bytes (up to `capacity`): a new buffer, doubled, with the bytes held
   * moved to its start. Full-size rings never move again.
   */
  private grow(needed: number): void {
    const size = this.buffer.length;
    if (size >= this.capacity || needed <= size) return;
    let next = Math.max(size * 2, FIRST_SIZE);
    while (next < needed) next *= 2;
    next = Math.min(next, this.capacity);
    const kept = this.contents();
    this.buffer = Buffer.allocUnsafe(next);
    kept.copy(this.buffer, 0);
    this.head = kept.length % next;
    this.held = kept.length;
  }
}
