/**
 * @module demo/connection
 * One client of the demo VNC server: the server side of the RFB 3.3/3.7/3.8 handshake with
 * security type None, the client-to-server messages (RFC 6143 §7.5, every length bounded), and
 * Raw framebuffer updates sent when the client asked and its socket has room. The connection owns
 * its socket; a client that breaks the protocol or a limit is closed and reported to its host,
 * and nothing else is affected.
 */
import type net from 'node:net';
import { PixelEncoder } from './pixel-encoder.ts';
import { SERVER_PIXEL_FORMAT, pixelFormatProblem, readPixelFormat, writePixelFormat } from './pixel-format.ts';
import { containsRect, intersectRect, unionRect, type Rect } from './rect.ts';
import type { DemoScreen } from './screen.ts';

/** RFC 6143 §7.5.6 leaves ClientCutText unbounded; nothing in the demo needs more. */
const MAX_CUT_TEXT = 1024 * 1024;
/** A client that stops reading must not make us buffer frames without end. */
const MAX_UNSENT_BYTES = 8 * 1024 * 1024;

/** Server-side handshake and message states, named after RFC 6143 §7.1–7.5. */
type ClientState = 'ProtocolVersion' | 'Security' | 'ClientInit' | 'ClientToServerMessages' | 'Closed';

interface PendingRequest { incremental: boolean; area: Rect }

/** What a connection needs from the server that accepted it. */
export interface DemoConnectionHost {
  readonly name: string;
  readonly screen: DemoScreen;
  readonly handshakeTimeoutMs: number;
  onKey(keysym: number, down: boolean): void;
  onPointer(x: number, y: number, buttons: number): void;
  /** The connection closed its client for `reason` (for the log). */
  onClientError(reason: string): void;
  /** The socket is closed; the host forgets this connection. */
  onConnectionClosed(connection: DemoConnection): void;
}

export class DemoConnection {
  private state: ClientState = 'ProtocolVersion';
  private minor = 8;
  private pending: Buffer | null = null;
  private encoder = new PixelEncoder(SERVER_PIXEL_FORMAT);
  /** Changes this client has not been sent yet. */
  private dirty: Rect | null = null;
  /** A request answered as soon as there is something to send (and the socket has room). */
  private request: PendingRequest | null = null;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(private readonly server: DemoConnectionHost, private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.flush());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.state = 'Closed';
      clearTimeout(this.handshakeTimer);
      server.onConnectionClosed(this);
    });
    this.handshakeTimer = setTimeout(() => this.fail('handshake timeout'), server.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    socket.write('RFB 003.008\n');
  }

  markDirty(r: Rect): void {
    this.dirty = unionRect(this.dirty, r);
  }

  /**
   * One funnel for failure. The client just sees the connection end (after ServerInit RFB has no
   * message to say why); the reason goes to `client-error` for the log.
   */
  fail(reason: string): void {
    if (this.state === 'Closed') return;
    this.server.onClientError(reason);
    this.state = 'Closed';
    this.pending = null;
    this.request = null;
    this.socket.end();
    // end() waits for the client's FIN; a client that never sends one must not hold the socket.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.state = 'Closed';
    this.socket.destroy();
  }

  /** A method, not an inline test, so TypeScript does not keep `state` narrowed across calls. */
  private isClosed(): boolean {
    return this.state === 'Closed';
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'Closed') return;
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    for (;;) {
      const used = this.step(buf);
      if (used === 0 || this.isClosed()) break;
      buf = buf.subarray(used);
    }
    if (!this.isClosed() && buf.length > 0) this.pending = Buffer.from(buf);
    this.flush();
  }

  /** Handles at most one message from the front of `b`; returns the bytes used, 0 for a short read. */
  private step(b: Buffer): number {
    switch (this.state) {
      case 'ProtocolVersion': return this.onProtocolVersion(b);
      case 'Security': return this.onSecurity(b);
      case 'ClientInit': return this.onClientInit(b);
      case 'ClientToServerMessages': return this.onMessage(b);
      default: return 0;
    }
  }

  /** §7.1.1: a client may answer 3.3, 3.7 or 3.8; other 3.x versions are treated as 3.3. */
  private onProtocolVersion(b: Buffer): number {
    if (b.length < 12) return 0;
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(b.toString('latin1', 0, 12));
    if (!m || Number(m[1]) !== 3) {
      this.fail('bad ProtocolVersion');
      return 12;
    }
    const minor = Number(m[2]);
    this.minor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
    if (this.minor === 3) {
      // §7.1.2 (3.3): the server decides and sends the type as a U32; None skips SecurityResult.
      this.socket.write(u32(1));
      this.state = 'ClientInit';
    } else {
      this.socket.write(Buffer.from([1, 1]));
      this.state = 'Security';
    }
    return 12;
  }

  private onSecurity(b: Buffer): number {
    if (b.length < 1) return 0;
    if (b[0] !== 1) {
      if (this.minor === 8) {
        const reason = Buffer.from('security type not offered');
        this.socket.write(Buffer.concat([u32(1), u32(reason.length), reason]));
      }
      this.fail('unsupported security type');
      return 1;
    }
    // §7.1.3: 3.7 sends no SecurityResult for None; 3.8 always does.
    if (this.minor === 8) this.socket.write(u32(0));
    this.state = 'ClientInit';
    return 1;
  }

  private onClientInit(b: Buffer): number {
    if (b.length < 1) return 0;
    // The shared flag is ignored: every client sees the same desktop, none is disconnected.
    clearTimeout(this.handshakeTimer);
    const name = Buffer.from(this.server.name, 'utf8');
    const init = Buffer.alloc(24 + name.length);
    init.writeUInt16BE(this.server.screen.width, 0);
    init.writeUInt16BE(this.server.screen.height, 2);
    writePixelFormat(SERVER_PIXEL_FORMAT, init, 4);
    init.writeUInt32BE(name.length, 20);
    name.copy(init, 24);
    this.socket.write(init);
    this.state = 'ClientToServerMessages';
    return 1;
  }

  /** §7.5 client-to-server messages; every variable length has a bound before it is waited for. */
  private onMessage(b: Buffer): number {
    if (b.length < 1) return 0;
    switch (b[0]) {
      case 0: { // SetPixelFormat
        if (b.length < 20) return 0;
        const pf = readPixelFormat(b, 4);
        const problem = pixelFormatProblem(pf);
        if (problem) this.fail(`SetPixelFormat: ${problem}`);
        else this.encoder = new PixelEncoder(pf);
        return 20;
      }
      case 2: { // SetEncodings: Raw is always allowed (§7.7.1), so the list changes nothing here.
        if (b.length < 4) return 0;
        const size = 4 + 4 * b.readUInt16BE(2); // a U16 count: at most 256 KiB
        return b.length < size ? 0 : size;
      }
      case 3: { // FramebufferUpdateRequest
        if (b.length < 10) return 0;
        const area = { x: b.readUInt16BE(2), y: b.readUInt16BE(4), w: b.readUInt16BE(6), h: b.readUInt16BE(8) };
        this.onUpdateRequest(b[1] !== 0, area);
        return 10;
      }
      case 4: { // KeyEvent
        if (b.length < 8) return 0;
        this.server.onKey(b.readUInt32BE(4), b[1] !== 0);
        return 8;
      }
      case 5: { // PointerEvent
        if (b.length < 6) return 0;
        this.server.onPointer(b.readUInt16BE(2), b.readUInt16BE(4), b.readUInt8(1));
        return 6;
      }
      case 6: { // ClientCutText; a negative (extended clipboard) length reads as > 2^31 and fails.
        if (b.length < 8) return 0;
        const length = b.readUInt32BE(4);
        if (length > MAX_CUT_TEXT) {
          this.fail(`ClientCutText of ${length} bytes`);
          return 8;
        }
        return b.length < 8 + length ? 0 : 8 + length;
      }
      default:
        // §7.5: message lengths are implied by type, so an unknown type leaves no way to resync.
        this.fail(`unknown message type ${b[0]}`);
        return 1;
    }
  }

  /** §7.5.3: incremental requests with nothing new are held until something changes. */
  private onUpdateRequest(incremental: boolean, area: Rect): void {
    const screen = this.server.screen;
    const clipped = intersectRect(area, { x: 0, y: 0, w: screen.width, h: screen.height });
    if (!clipped) return;
    const prev = this.request;
    this.request = prev
      ? { incremental: prev.incremental && incremental, area: unionRect(prev.area, clipped) }
      : { incremental, area: clipped };
  }

  /** Answers the held request if there is something to send and the socket is not backed up. */
  flush(): void {
    const req = this.request;
    if (!req || this.state !== 'ClientToServerMessages') return;
    if (this.socket.writableLength > MAX_UNSENT_BYTES) return; // resumed by 'drain'
    let rect: Rect | null;
    if (!req.incremental) {
      rect = req.area;
    } else {
      rect = this.dirty ? intersectRect(this.dirty, req.area) : null;
      if (!rect) return;
    }
    if (this.dirty && containsRect(rect, this.dirty)) this.dirty = null;
    this.request = null;
    this.socket.write(this.rawUpdate(rect));
  }

  private rawUpdate(r: Rect): Buffer {
    const bpp = this.encoder.bytesPerPixel;
    const out = Buffer.allocUnsafe(4 + 12 + r.w * r.h * bpp);
    out.writeUInt8(0, 0); // FramebufferUpdate
    out.writeUInt8(0, 1);
    out.writeUInt16BE(1, 2);
    out.writeUInt16BE(r.x, 4);
    out.writeUInt16BE(r.y, 6);
    out.writeUInt16BE(r.w, 8);
    out.writeUInt16BE(r.h, 10);
    out.writeInt32BE(0, 12); // Raw
    this.encoder.encode(this.server.screen.pixels, this.server.screen.width, r, out, 16);
    return out;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
