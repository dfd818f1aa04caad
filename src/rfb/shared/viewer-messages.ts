/**
 * @module rfb/shared/viewer-messages
 * Reads what a browser sends to the server role of a shared console (`viewer-stream.ts`): the
 * handshake's answers (ProtocolVersion, the security type, ClientInit), then the client-to-server
 * messages of RFC 6143 §7.5 and the community extensions `client-messages.ts` frames. A resumable
 * state machine fed with chunks as they come: a short read waits for the next chunk. Each whole
 * message goes to the stream's handlers; input (KeyEvent, PointerEvent, ClientCutText, QEMU
 * extended key) goes whole, so that a change of control between two chunks never hands the
 * backend half a message. Extensions the server role never announced (fences, continuous
 * updates, SetDesktopSize, xvp, gii, QEMU audio) are read and left alone.
 *
 * Every length is bounded: SetEncodings at `MAX_ENCODINGS`, a fence's payload at 64 bytes, cut
 * text at `MAX_VIEWER_CUT_TEXT` (longer text is counted down unread and goes nowhere: a whole
 * message must be held to be handed on, and a clipboard larger than this is no one's typing). A
 * stream that cannot be read (an unknown message type) throws: its next bytes cannot be delimited.
 */
import { GatewayError } from '../../errors.ts';
import { MAX_ENCODINGS } from '../client-messages.ts';

/** Cut text held whole before it is handed on; longer is dropped. */
export const MAX_VIEWER_CUT_TEXT = 1024 * 1024;
const MAX_FENCE = 64;

export type HandshakeStep = 'ProtocolVersion' | 'Security' | 'ClientInit';

export interface ViewerMessageHandlers {
  /** A handshake answer: the 12 bytes of ProtocolVersion, the 1 byte of the security type or ClientInit. */
  handshake(step: HandshakeStep, bytes: Buffer): void;
  setPixelFormat(message: Buffer): void;
  setEncodings(encodings: number[]): void;
  updateRequest(incremental: boolean, x: number, y: number, width: number, height: number): void;
  /** A whole input message, as the client sent it. */
  input(message: Buffer): void;
}

export class ViewerMessages {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of an over-long cut text still to go by unread. */
  private skipping = 0;
  /** The handshake step whose answer comes next; null: past ClientInit. */
  private step: HandshakeStep | null = 'ProtocolVersion';

  constructor(private readonly on: ViewerMessageHandlers) {}

  /** The handshake waits for `step`'s answer next (the stream decides the order, by version). */
  expect(step: HandshakeStep | null): void {
    this.step = step;
  }

  /** Feeds a chunk; every message it completes is handled before this returns. Throws on a stream that cannot be read. */
  push(chunk: Buffer): void {
    if (this.skipping > 0) {
      const k = Math.min(this.skipping, chunk.length);
      this.skipping -= k;
      chunk = chunk.subarray(k);
    }
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.next()) { /* one message a turn */ }
  }

  /** Reads one message when it is all here; false when it waits for more bytes. */
  private next(): boolean {
    if (this.skipping > 0) {
      const k = Math.min(this.skipping, this.buffered);
      this.consume(k);
      this.skipping -= k;
      if (this.skipping > 0) return false;
    }
    if (this.buffered === 0) return false;
    if (this.step !== null) {
      const n = this.step === 'ProtocolVersion' ? 12 : 1;
      if (this.buffered < n) return false;
      const step = this.step;
      // the stream says which answer comes next, from within this call
      this.step = null;
      this.on.handshake(step, this.take(n));
      return true;
    }
    const type = this.peek(1)[0]!;
    switch (type) {
      case 0: return this.whole(20, (m) => this.on.setPixelFormat(m));
      case 2: {
        if (this.buffered < 4) return false;
        const n = this.peek(4).readUInt16BE(2);
        if (n > MAX_ENCODINGS) throw unreadable(`SetEncodings with ${n} encodings (at most ${MAX_ENCODINGS})`);
        return this.whole(4 + 4 * n, (m) => {
          const list: number[] = [];
          for (let i = 0; i < n; i++) list.push(m.readInt32BE(4 + 4 * i));
          this.on.setEncodings(list);
        });
      }
      case 3: return this.whole(10, (m) => this.on.updateRequest(m[1] !== 0, m.readUInt16BE(2), m.readUInt16BE(4), m.readUInt16BE(6), m.readUInt16BE(8)));
      case 4: return this.whole(8, (m) => this.on.input(m));
      case 5: return this.whole(6, (m) => this.on.input(m));
      case 6: {
        if (this.buffered < 8) return false;
        // the Extended Clipboard form carries a negative length: its absolute value
        const length = Math.abs(this.peek(8).readInt32BE(4));
        if (length > MAX_VIEWER_CUT_TEXT) {
          this.consume(8);
          this.skipping = length;
          return true;
        }
        return this.whole(8 + length, (m) => this.on.input(m));
      }
      case 150: return this.whole(10, ignore); // EnableContinuousUpdates: never announced
      case 248: {
        if (this.buffered < 9) return false;
        const length = this.peek(9)[8]!;
        if (length > MAX_FENCE) throw unreadable(`ClientFence payload of ${length} bytes (at most ${MAX_FENCE})`);
        return this.whole(9 + length, ignore);
      }
      case 250: return this.whole(4, ignore); // xvp
      case 251: {
        // SetDesktopSize: a shared screen is not one viewer's to resize
        if (this.buffered < 8) return false;
        return this.whole(8 + 16 * this.peek(8)[6]!, ignore);
      }
      case 253: {
        if (this.buffered < 4) return false;
        const h = this.peek(4);
        // bit 7 of the endian-and-sub-type byte: big endian
        const length = h[1]! & 0x80 ? h.readUInt16BE(2) : h.readUInt16LE(2);
        return this.whole(4 + length, ignore);
      }
      case 255: {
        if (this.buffered < 2) return false;
        const sub = this.peek(2)[1]!;
        if (sub === 0) return this.whole(12, (m) => this.on.input(m)); // QEMU extended key event
        if (sub !== 1) throw unreadable(`QEMU client message subtype ${sub}`);
        if (this.buffered < 4) return false;
        const op = this.peek(4).readUInt16BE(2);
        if (op === 0 || op === 1) return this.whole(4, ignore);
        if (op === 2) return this.whole(10, ignore);
        throw unreadable(`QEMU audio operation ${op}`);
      }
      default: throw unreadable(`unknown message type ${type}`);
    }
  }

  private whole(n: number, handle: (message: Buffer) => void): boolean {
    if (this.buffered < n) return false;
    handle(this.take(n));
    return true;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const all = this.peek(n);
    const out = all.subarray(0, n);
    this.consume(n);
    return out;
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      if (first.length <= n) {
        this.chunks.shift();
        n -= first.length;
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}

function ignore(): void {}

function unreadable(detail: string): GatewayError {
  return new GatewayError('CLIENT_PROTOCOL', `RFB from a shared console's viewer cannot be read: ${detail}`, { closeCode: 1002, clientMessage: 'the console client sent a message the proxy cannot read' });
}
