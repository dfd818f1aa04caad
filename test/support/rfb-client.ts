/**
 * @module test/support/rfb-client
 * A minimal RFB (RFC 6143) client for tests, not for production: security type None only, Raw
 * encoding only, over TCP or over a `ws` WebSocket. Every read waits for an exact byte count
 * with a deadline and rejects with a plain Error on timeout or when the peer closes.
 */
import net from 'node:net';
import { WebSocket } from 'ws';

/** What the client writes to; received bytes are fed to `RfbClient.receive`. */
export interface RfbTransport { send(b: Buffer): void; close(): void }

export interface PixelFormat {
  bitsPerPixel: 8 | 16 | 32; depth: number; bigEndian: boolean;
  redMax: number; greenMax: number; blueMax: number;
  redShift: number; greenShift: number; blueShift: number;
}

export interface ServerInfo { version: string; securityTypes: number[]; width: number; height: number; name: string }
export interface Framebuffer { width: number; height: number; pixel(x: number, y: number): [number, number, number] }
export interface Rect { x: number; y: number; w: number; h: number }

export const RGB888_LE: PixelFormat = {
  bitsPerPixel: 32, depth: 24, bigEndian: false, redMax: 255, greenMax: 255, blueMax: 255,
  redShift: 16, greenShift: 8, blueShift: 0,
};

const DEFAULT_TIMEOUT_MS = 5000;
/** Bounds for lengths the server sends, so a broken server fails the test instead of hanging it. */
const MAX_STRING = 64 * 1024;

export class RfbClient {
  width = 0;
  height = 0;
  /** Last decoded picture, 3 bytes (R, G, B) a pixel; empty before `requestFramebuffer`. */
  rgb = new Uint8Array(0);
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private closedWith: Error | null = null;
  private readonly closeWaiters: Array<(why: string) => void> = [];
  private format: PixelFormat = RGB888_LE;

  constructor(private readonly transport: RfbTransport) {}

  static async overTcp(host: string, port: number): Promise<RfbClient> {
    const socket = net.connect(port, host);
    const client = new RfbClient({ send: (b) => socket.write(b), close: () => socket.destroy() });
    socket.on('data', (b: Buffer) => client.receive(b));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => client.closed('TCP connection closed'));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return client;
  }

  static overWebSocket(ws: WebSocket): RfbClient {
    ws.binaryType = 'nodebuffer';
    const early: Buffer[] = [];
    const client = new RfbClient({
      send: (b) => (ws.readyState === WebSocket.CONNECTING ? early.push(b) : ws.send(b)),
      close: () => ws.close(),
    });
    ws.on('open', () => early.splice(0).forEach((b) => ws.send(b)));
    ws.on('message', (data: Buffer) => client.receive(data));
    ws.on('error', () => ws.terminate());
    ws.on('close', (code, reason) => client.closed(`WebSocket closed ${code} ${reason.toString()}`));
    return client;
  }

  /** Called by the transport with each chunk received. */
  receive(b: Buffer): void {
    this.chunks.push(b);
    this.buffered += b.length;
    this.satisfy();
  }

  /** Called by the transport when the peer has gone; pending and later reads reject. */
  closed(why: string): void {
    this.closedWith ??= new Error(why);
    this.satisfy();
    this.closeWaiters.splice(0).forEach((f) => f(this.closedWith?.message ?? why));
  }

  /** Resolves with how the peer closed (for a WebSocket: code and reason); rejects after the deadline. */
  waitForClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    if (this.closedWith) return Promise.resolve(this.closedWith.message);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer did not close within ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push((why) => { clearTimeout(timer); resolve(why); });
    });
  }

  /** Exactly `n` bytes, or a rejection naming `what` on timeout or close. */
  read(n: number, what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('RfbClient: concurrent reads'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${n} bytes, have ${this.buffered})`));
      }, timeoutMs);
      this.waiter = {
        n,
        resolve: (b) => { clearTimeout(timer); resolve(b); },
        reject: (e) => { clearTimeout(timer); reject(new Error(`peer closed (${e.message}) while waiting for ${what}`)); },
      };
      this.satisfy();
    });
  }

  private satisfy(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.buffered >= w.n) {
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
      this.buffered -= w.n;
      this.waiter = null;
      w.resolve(all.subarray(0, w.n));
    } else if (this.closedWith) {
      this.waiter = null;
      w.reject(this.closedWith);
    }
  }

  send(b: Buffer | number[]): void {
    this.transport.send(Buffer.isBuffer(b) ? b : Buffer.from(b));
  }

  close(): void { this.transport.close() }

  async readVersion(timeoutMs?: number): Promise<string> {
    return (await this.read(12, 'ProtocolVersion', timeoutMs)).toString('latin1');
  }

  private async readReason(timeoutMs?: number): Promise<string> {
    const n = (await this.read(4, 'reason length', timeoutMs)).readUInt32BE(0);
    if (n > MAX_STRING) throw new Error(`reason length ${n} too long`);
    return (await this.read(n, 'reason', timeoutMs)).toString('utf8');
  }

  /** Runs the handshake up to ServerInit, answering with `version` (default: the server's, at most 3.8). */
  async handshake(opts: { shared?: boolean; timeoutMs?: number; version?: '3.3' | '3.7' | '3.8' } = {}): Promise<ServerInfo> {
    const t = opts.timeoutMs;
    const version = await this.readVersion(t);
    const m = /^RFB 003\.(\d{3})\n$/.exec(version);
    if (!m) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    const minor = opts.version ? Number(opts.version.slice(2)) : Math.min(Number(m[1]), 8);
    this.send(Buffer.from(`RFB 003.00${minor}\n`, 'latin1'));
    let securityTypes: number[];
    if (minor < 7) {
      const type = (await this.read(4, 'security type', t)).readUInt32BE(0);
      if (type === 0) throw new Error(`server refused: ${await this.readReason(t)}`);
      if (type !== 1) throw new Error(`server chose security type ${type}, not None`);
      securityTypes = [type];
    } else {
      const n = (await this.read(1, 'security type count', t)).readUInt8(0);
      if (n === 0) throw new Error(`server refused: ${await this.readReason(t)}`);
      securityTypes = [...(await this.read(n, 'security types', t))];
      if (!securityTypes.includes(1)) throw new Error(`no None security type in ${securityTypes}`);
      this.send([1]);
      if (minor === 8) {
        const result = (await this.read(4, 'SecurityResult', t)).readUInt32BE(0);
        if (result !== 0) throw new Error(`security failed: ${await this.readReason(t)}`);
      }
    }
    this.send([opts.shared === false ? 0 : 1]);
    const init = await this.read(24, 'ServerInit', t);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    const nameLength = init.readUInt32BE(20);
    if (nameLength > MAX_STRING) throw new Error(`desktop name length ${nameLength} too long`);
    const name = (await this.read(nameLength, 'desktop name', t)).toString('utf8');
    return { version, securityTypes, width: this.width, height: this.height, name };
  }

  /** Always true-colour: the client decodes no colour maps. */
  setPixelFormat(pf: PixelFormat): void {
    this.send(message(20, [0, 0, 0, 0, pf.bitsPerPixel, pf.depth, pf.bigEndian ? 1 : 0, 1], (b) => {
      b.writeUInt16BE(pf.redMax, 8); b.writeUInt16BE(pf.greenMax, 10); b.writeUInt16BE(pf.blueMax, 12);
      b.set([pf.redShift, pf.greenShift, pf.blueShift], 14);
    }));
    this.format = pf;
  }

  setEncodings(encodings: number[]): void {
    this.send(message(4 + 4 * encodings.length, [2, 0], (b) => {
      b.writeUInt16BE(encodings.length, 2);
      encodings.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
    }));
  }

  updateRequest(incremental: boolean, r: Rect = { x: 0, y: 0, w: this.width, h: this.height }): void {
    this.send(message(10, [3, incremental ? 1 : 0], (b) => {
      [r.x, r.y, r.w, r.h].forEach((v, i) => b.writeUInt16BE(v, 2 + 2 * i));
    }));
  }

  /** Sets `format` and Raw, asks for the whole screen and decodes until every pixel is covered. */
  async requestFramebuffer(format: PixelFormat = RGB888_LE, timeoutMs?: number): Promise<Framebuffer> {
    this.setPixelFormat(format);
    this.setEncodings([0]);
    this.updateRequest(false);
    this.rgb = new Uint8Array(this.width * this.height * 3);
    const covered = new Uint8Array(this.width * this.height);
    let missing = covered.length;
    while (missing > 0) {
      for (const r of await this.readUpdate(timeoutMs)) {
        for (let y = r.y; y < r.y + r.h; y++) {
          for (let i = y * this.width + r.x; i < y * this.width + r.x + r.w; i++) if (!covered[i]) { covered[i] = 1; missing--; }
        }
      }
    }
    const { width, height, rgb } = this;
    const at = (x: number, y: number, c: number): number => rgb[(y * width + x) * 3 + c] ?? 0;
    return { width, height, pixel: (x, y) => [at(x, y, 0), at(x, y, 1), at(x, y, 2)] };
  }

  /** Reads server messages until a FramebufferUpdate, applies it to `rgb` and returns its rectangles. */
  async readUpdate(timeoutMs?: number): Promise<Rect[]> {
    for (;;) {
      const type = (await this.read(1, 'server message type', timeoutMs)).readUInt8(0);
      if (type === 2) continue; // Bell
      if (type === 3) { // ServerCutText
        const n = (await this.read(7, 'ServerCutText header', timeoutMs)).readUInt32BE(3);
        if (n > MAX_STRING) throw new Error(`ServerCutText length ${n} too long`);
        await this.read(n, 'ServerCutText', timeoutMs);
        continue;
      }
      if (type !== 0) throw new Error(`unexpected server message type ${type}`);
      const count = (await this.read(3, 'FramebufferUpdate header', timeoutMs)).readUInt16BE(1);
      const rects: Rect[] = [];
      for (let i = 0; i < count; i++) {
        const h = await this.read(12, 'rectangle header', timeoutMs);
        const r = { x: h.readUInt16BE(0), y: h.readUInt16BE(2), w: h.readUInt16BE(4), h: h.readUInt16BE(6) };
        const encoding = h.readInt32BE(8);
        if (encoding !== 0) throw new Error(`unsupported encoding ${encoding}`);
        if (r.x + r.w > this.width || r.y + r.h > this.height) throw new Error(`rectangle outside screen: ${JSON.stringify(r)}`);
        this.decodeRaw(r, await this.read(r.w * r.h * (this.format.bitsPerPixel / 8), 'raw pixels', timeoutMs));
        rects.push(r);
      }
      return rects;
    }
  }

  private decodeRaw(r: Rect, data: Buffer): void {
    const pf = this.format;
    const bpp = pf.bitsPerPixel / 8;
    const channel = (v: number, shift: number, max: number): number =>
      Math.round(((Math.floor(v / 2 ** shift) % (max + 1)) * 255) / max);
    let o = 0;
    for (let y = r.y; y < r.y + r.h; y++) {
      for (let x = r.x; x < r.x + r.w; x++, o += bpp) {
        const v = bpp === 4 ? (pf.bigEndian ? data.readUInt32BE(o) : data.readUInt32LE(o))
          : bpp === 2 ? (pf.bigEndian ? data.readUInt16BE(o) : data.readUInt16LE(o)) : data.readUInt8(o);
        const i = (y * this.width + x) * 3;
        this.rgb[i] = channel(v, pf.redShift, pf.redMax);
        this.rgb[i + 1] = channel(v, pf.greenShift, pf.greenMax);
        this.rgb[i + 2] = channel(v, pf.blueShift, pf.blueMax);
      }
    }
  }

  /** KeyEvent down, then up. */
  key(keysym: number): void {
    for (const down of [1, 0]) this.send(message(8, [4, down], (b) => b.writeUInt32BE(keysym >>> 0, 4)));
  }

  pointer(x: number, y: number, buttons = 0): void {
    this.send(message(6, [5, buttons], (b) => { b.writeUInt16BE(x, 2); b.writeUInt16BE(y, 4); }));
  }
}

/** A client message of `size` bytes starting with `head`, the rest written by `fill`. */
function message(size: number, head: number[], fill: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(size);
  b.set(head);
  fill(b);
  return b;
}
