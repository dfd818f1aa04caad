/**
 * @module test/support/raw-ws
 * A WebSocket client by hand on a raw `net` socket, for the tests that need a client to misbehave
 * in ways `ws`'s client never would: an upgrade request written byte by byte as the test says
 * (duplicate or broken headers, a body, an odd path), the socket dropped or half-closed at any
 * step, and client frames built field by field (any opcode, FIN and RSV bits, length in any of
 * the three encodings whatever the payload really is, mask or none). What comes back is parsed
 * just enough to drive a console: the HTTP status line, then the server's frames. Not a client to
 * trust: it checks nothing the server sends beyond framing.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** A valid `Sec-WebSocket-Key` (16 bytes, base64); the server's accept value is not checked here. */
export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/**
 * The request a browser's noVNC sends, with `extra` headers after the usual ones (a string: raw
 * lines); `protocol` replaces the `Sec-WebSocket-Protocol` value (null: no such header).
 */
export function upgradeRequest(port: number, target: string, extra: Record<string, string> | string = {}, opts: { protocol?: string | null } = {}): string {
  const lines = [
    `GET ${target} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${WS_KEY}`,
    'Sec-WebSocket-Version: 13',
  ];
  const protocol = opts.protocol === undefined ? 'binary' : opts.protocol;
  if (protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  if (typeof extra === 'string') {
    if (extra) lines.push(extra);
  } else for (const [k, v] of Object.entries(extra)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Buffer;
  /** Default true. */
  readonly fin?: boolean;
  /** RSV1..3 as a 3-bit number. */
  readonly rsv?: number;
  /** Default true (a client must mask); a Buffer is the masking key. */
  readonly mask?: boolean | Buffer;
  /** The length the header declares, when it is not the payload's (a lie the server must survive). */
  readonly declaredLength?: bigint;
  /** The header's length form: 7-bit, 16-bit or 64-bit (default: the smallest that fits). */
  readonly lengthForm?: 7 | 16 | 64;
}

/** One client frame, as the spec lays it out (RFC 6455 §5.2), with whatever the spec says it may not. */
export function clientFrame(f: FrameSpec): Buffer {
  const payload = f.payload ?? Buffer.alloc(0);
  const len = f.declaredLength ?? BigInt(payload.length);
  const form = f.lengthForm ?? (len < 126n ? 7 : len < 65536n ? 16 : 64);
  const maskKey = f.mask === false ? null : Buffer.isBuffer(f.mask) ? f.mask.subarray(0, 4) : randomBytes(4);
  const head: number[] = [((f.fin ?? true) ? 0x80 : 0) | (((f.rsv ?? 0) & 7) << 4) | (f.opcode & 0x0f)];
  const maskBit = maskKey ? 0x80 : 0;
  const ext = Buffer.alloc(form === 7 ? 0 : form === 16 ? 2 : 8);
  if (form === 7) head.push(maskBit | Number(len & 0x7fn));
  else if (form === 16) {
    head.push(maskBit | 126);
    ext.writeUInt16BE(Number(len & 0xffffn));
  } else {
    head.push(maskBit | 127);
    ext.writeBigUInt64BE(len & 0xffffffffffffffffn);
  }
  let body = payload;
  if (maskKey) {
    body = Buffer.allocUnsafe(payload.length);
    for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ maskKey[i & 3]!;
  }
  return Buffer.concat([Buffer.from(head), ext, maskKey ?? Buffer.alloc(0), body]);
}

/** A binary frame with `payload`, masked: what a well-behaved client sends. */
export function binaryFrame(payload: Buffer | number[] | string): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : Buffer.from(payload);
  return clientFrame({ opcode: OP.binary, payload: b });
}

/** A close frame with a code (and reason), masked. */
export function closeFrame(code = 1000, reason = ''): Buffer {
  const r = Buffer.from(reason);
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code);
  r.copy(p, 2);
  return clientFrame({ opcode: OP.close, payload: p });
}

export interface ServerFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** A raw client connection: its response head, then the server's frames as they come. */
export class RawClient {
  /** HTTP status of the response, once its head arrived (101 for an upgrade). */
  status: number | undefined;
  readonly frames: ServerFrame[] = [];
  /** The peer closed (or the socket failed). */
  ended = false;
  private buf: Buffer = Buffer.alloc(0);
  private headDone = false;
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.ended = true;
      this.wake();
      resolve();
    }));
  }

  /** Connects to 127.0.0.1:`port`. */
  static async open(port: number): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    const c = new RawClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return c;
  }

  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Waits until `cond` holds or the peer closed or `ms` passed; resolves with whether it holds. */
  async until(cond: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (this.ended || left <= 0) return cond();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** The `n`th frame from the server (0-based), or undefined if it did not come within `ms`. */
  async frame(n: number, ms = 5000): Promise<ServerFrame | undefined> {
    await this.until(() => this.frames.length > n, ms);
    return this.frames[n];
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (!this.headDone) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        // a status line is enough to know a refusal
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.buf.toString('latin1', 0, 16));
        if (m) this.status = Number(m[1]);
        if (this.buf.length > 64 * 1024) this.buf = Buffer.alloc(0);
        this.wake();
        return;
      }
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.buf.toString('latin1', 0, 16));
      this.status = m ? Number(m[1]) : 0;
      this.headDone = true;
      this.buf = this.buf.subarray(end + 4);
      if (this.status !== 101) this.buf = Buffer.alloc(0);
    }
    if (this.status === 101) this.parseFrames();
    this.wake();
  }

  private parseFrames(): void {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      // servers do not mask (§5.1)
      if (b.length < off + len) return;
      // the test only keeps the first frames of a console (its handshake); beyond that, counts
      if (this.frames.length < 64) this.frames.push({ opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(off, off + len)) });
      else this.extraFrames++;
      this.buf = b.subarray(off + len);
    }
  }

  /** Frames past the first 64, counted, not kept. */
  extraFrames = 0;

  destroy(): void {
    this.socket.destroy();
  }
}
