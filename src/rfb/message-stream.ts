/**
 * @module rfb/message-stream
 * What the two framers of a relayed RFB stream share (`client-messages.ts`, `server-messages.ts`,
 * used by the clipboard policy, `clipboard-policy.ts`): a resumable state machine fed with the
 * chunks as they come, which hands on every byte except those of the messages it is told to
 * leave out (or the bytes that replace one). As noVNC's decoders, a short read is not an error:
 * a step waits for the bytes it needs and resumes on the next chunk.
 *
 * Only the bytes a step has to look at are gathered (a header, or a whole small message such as
 * SetEncodings, whose size its framer bounds); bodies (pixels, cut text) go by uncopied, counted
 * down. A chunk whose messages all go on is returned as it is, so a console that never uses its
 * clipboard pays one walk over the message headers and no copy.
 * A stream that cannot be framed (an unknown message type, a length over its bound) throws a
 * `GatewayError` whose client words say only that; the framer is unusable afterwards, and the
 * session closes: relaying on past a message it cannot delimit would let the rest through
 * unchecked.
 */
import { GatewayError } from '../errors.ts';

const EMPTY = Buffer.alloc(0);

export abstract class MessageStream {
  /** The bytes the current step looks at, gathered across chunks. */
  protected readonly head: Buffer;
  /** Which step runs once `want` bytes are in `head` (and `skipping` is done). */
  protected state: number;
  private have = 0;
  private want = 1;
  /** Bytes of the current step that go by unread. */
  private skipping = 0;
  /** The message under way is left out (or replaced at its end). */
  private leaving = false;
  private replacement: Buffer | null = null;
  // the chunk being filtered and what of it goes on, valid during `filter` only
  private cursor = 0;
  private keptFrom = 0;
  private pieces: Buffer[] = [];
  private chunk: Buffer = EMPTY;

  constructor(headCapacity: number, firstState: number) {
    this.head = Buffer.alloc(headCapacity);
    this.state = firstState;
  }

  /** What of `chunk` goes on, in order. Throws a `GatewayError` on a stream it cannot frame. */
  filter(chunk: Buffer): Buffer {
    const n = chunk.length;
    this.chunk = chunk;
    this.cursor = 0;
    this.keptFrom = 0;
    this.pieces.length = 0;
    for (;;) {
      if (this.skipping > 0) {
        if (this.cursor >= n) break;
        const k = Math.min(this.skipping, n - this.cursor);
        this.cursor += k;
        this.skipping -= k;
        if (this.skipping > 0) break;
      } else if (this.have < this.want) {
        if (this.cursor >= n) break;
        const k = Math.min(this.want - this.have, n - this.cursor);
        chunk.copy(this.head, this.have, this.cursor, this.cursor + k);
        this.have += k;
        this.cursor += k;
        if (this.have < this.want) break;
      }
      this.have = 0;
      this.want = 0;
      this.step(this.state);
    }
    this.chunk = EMPTY;
    if (!this.leaving) {
      if (this.keptFrom === 0 && this.pieces.length === 0) return chunk;
      if (this.keptFrom < n) this.pieces.push(chunk.subarray(this.keptFrom, n));
    }
    const out = this.pieces.length === 0 ? EMPTY : this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces);
    this.pieces.length = 0;
    return out;
  }

  /** Runs the step `state` with its bytes in `head` (none after a `skip`). */
  protected abstract step(state: number): void;

  /** The next step is `state`, once `n` bytes (at most the head's capacity) are in `head`. */
  protected read(n: number, state: number): void {
    this.want = n;
    this.state = state;
  }

  /** `n` bytes go by unread, then the step `state` runs. */
  protected skip(n: number, state: number): void {
    this.skipping = n;
    this.state = state;
  }

  /**
   * The message whose type byte was just read is left out. Only from the step that read the type
   * byte alone: that byte is the last one read, in this chunk.
   */
  protected leaveOut(): void {
    const start = this.cursor - 1;
    if (start > this.keptFrom) this.pieces.push(this.chunk.subarray(this.keptFrom, start));
    this.leaving = true;
  }

  /** The message left out goes on as `bytes` instead, at its end. */
  protected replaceWith(bytes: Buffer): void {
    this.replacement = bytes;
  }

  /** The message under way ended with the last byte read. */
  protected endMessage(): void {
    if (!this.leaving) return;
    this.leaving = false;
    this.keptFrom = this.cursor;
    if (this.replacement !== null) {
      this.pieces.push(this.replacement);
      this.replacement = null;
    }
  }
}

/** How a stream that cannot be framed ends the session: the log has `detail`, the browser a plain sentence. */
export function unframeable(side: 'client' | 'backend', detail: string): GatewayError {
  return side === 'client'
    ? new GatewayError('CLIENT_PROTOCOL', `RFB from the client cannot be checked for the clipboard policy: ${detail}`, { closeCode: 1002, clientMessage: 'the console client sent a message the proxy cannot check' })
    : new GatewayError('BACKEND_PROTOCOL', `RFB from the backend cannot be checked for the clipboard policy: ${detail}`, { status: 502, closeCode: 1011, clientMessage: 'the console sent a message the proxy cannot check' });
}
