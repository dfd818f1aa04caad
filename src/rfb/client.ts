/**
 * @module rfb/client
 * Porthole as an RFB client of a VM's VNC server (RFC 6143 §7): the security proxy's backend
 * negotiation (`negotiateBackend`: every backend auth scheme works), ClientInit with the shared
 * flag, ServerInit, then SetPixelFormat (`CLIENT_PIXEL_FORMAT`, the decoder's fast path) and
 * SetEncodings, and from then on every byte from the server goes to an `RfbDecoder`, which keeps
 * the framebuffer. Screenshots take one `frame()` of a short connection; a shared console's hub
 * holds one for all its viewers and forwards the input of the viewer in control (`write`).
 *
 * `RfbClient` owns the socket from the moment `openRfbClient` is called: it is destroyed on every
 * path (a failed handshake, the deadline, garbage from the server, `close()`), and `'end'` is
 * emitted exactly once, with the error that ended the connection (`BACKEND_CLOSED` when the
 * server closed it) or null after `close()`.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { GatewayError, isGatewayError } from '../errors.ts';
import { Encoding, RfbDecoder } from './framebuffer/decoder.ts';
import { CLIENT_PIXEL_FORMAT, encodePixelFormat } from './framebuffer/pixel-format.ts';
import type { CursorShape, DecoderEvents, Framebuffer, Rect } from './framebuffer/types.ts';
import { BACKEND_GONE_REASON, initBackend, negotiateBackend } from './security-proxy.ts';
import type { BackendAuthSettings } from './types.ts';

/** What Porthole asks for, best first (§7.5.2: the server picks, usually the first it supports). */
export const DEFAULT_ENCODINGS: readonly number[] = [
  Encoding.Tight, Encoding.ZRLE, Encoding.Hextile, Encoding.RRE, Encoding.CopyRect, Encoding.Raw,
  Encoding.DesktopSize, Encoding.ExtendedDesktopSize, Encoding.LastRect, Encoding.Cursor, Encoding.DesktopName,
];

export interface RfbClientOptions {
  /** Deadline of the whole handshake, up to and including ServerInit. */
  readonly timeoutMs: number;
  /** `host:port`, for log messages. */
  readonly address: string;
  /** ClientInit's shared flag: false asks the server to disconnect its other clients. */
  readonly shared: boolean;
  /** SetEncodings' list; default `DEFAULT_ENCODINGS`. */
  readonly encodings?: readonly number[];
  readonly events?: DecoderEvents;
}

/** Client-to-server message types a caller may not send through `write` (§7.5): they would change what the decoder must expect. */
const OWN_MESSAGES: ReadonlySet<number> = new Set([0 /* SetPixelFormat */, 2 /* SetEncodings */]);

export async function openRfbClient(socket: Socket, settings: BackendAuthSettings, opts: RfbClientOptions): Promise<RfbClient> {
  let serverInit: Buffer;
  let backendSocket: Socket;
  const started = Date.now();
  try {
    const backend = await negotiateBackend(socket, settings, { timeoutMs: opts.timeoutMs, address: opts.address });
    backendSocket = backend.socket;
    serverInit = await initBackend(backend, opts.shared, Math.max(1, opts.timeoutMs - (Date.now() - started)));
  } catch (err) {
    socket.destroy();
    throw err;
  }
  let decoder: RfbDecoder;
  // filled by the client, which exists only once the decoder does
  const events: DecoderEvents = {};
  try {
    decoder = new RfbDecoder(serverInit, events);
  } catch (err) {
    backendSocket.destroy();
    socket.destroy();
    throw err;
  }
  return new RfbClient(backendSocket, socket, serverInit, decoder, events, opts);
}

export interface RfbClientEvents {
  end: [err: GatewayError | null];
}

export class RfbClient extends EventEmitter<RfbClientEvents> {
  /** Settles once the connection has ended, with what `'end'` carried. */
  readonly ended: Promise<GatewayError | null>;
  private done = false;
  private settle!: (err: GatewayError | null) => void;
  private readonly frameWaiters = new Set<FrameWaiter>();

  /** @internal use `openRfbClient` */
  constructor(
    /** The connection to the server (a TLS socket with VeNCrypt). */
    readonly socket: Socket,
    private readonly tcp: Socket,
    /** The whole ServerInit message (24-byte head and the name). */
    readonly serverInit: Buffer,
    readonly decoder: RfbDecoder,
    decoderEvents: DecoderEvents,
    private readonly opts: RfbClientOptions,
  ) {
    super();
    this.ended = new Promise((resolve) => (this.settle = resolve));
    this.hookEvents(decoderEvents);
    const pf = encodePixelFormat(CLIENT_PIXEL_FORMAT);
    const setPixelFormat = Buffer.alloc(20);
    pf.copy(setPixelFormat, 4);
    decoder.setPixelFormat(pf);
    const encodings = opts.encodings ?? DEFAULT_ENCODINGS;
    const setEncodings = Buffer.alloc(4 + 4 * encodings.length);
    setEncodings[0] = 2;
    setEncodings.writeUInt16BE(encodings.length, 2);
    encodings.forEach((e, i) => setEncodings.writeInt32BE(e, 4 + 4 * i));
    socket.on('data', (chunk: Buffer) => socketOnData(this, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.finish(closed(`backend ${opts.address}: ${err.code ?? err.message}`, err)));
    socket.on('close', () => this.finish(closed(`backend ${opts.address} closed the RFB connection`)));
    tcp.on('error', () => {});
    socket.write(Buffer.concat([setPixelFormat, setEncodings]));
    socket.resume();
  }

  get framebuffer(): Framebuffer {
    return this.decoder.framebuffer;
  }

  /** FramebufferUpdateRequest (§7.5.3) for `rect`, the whole screen by default. */
  requestUpdate(incremental: boolean, rect?: Rect): void {
    const r = rect ?? { x: 0, y: 0, width: this.decoder.framebuffer.width, height: this.decoder.framebuffer.height };
    const m = Buffer.alloc(10);
    m[0] = 3;
    m[1] = incremental ? 1 : 0;
    m.writeUInt16BE(r.x, 2);
    m.writeUInt16BE(r.y, 4);
    m.writeUInt16BE(r.width, 6);
    m.writeUInt16BE(r.height, 8);
    this.send(m);
  }

  /**
   * Whole client messages to the server: KeyEvent, PointerEvent, ClientCutText of a viewer in
   * control, update requests. SetPixelFormat and SetEncodings are refused (the decoder must know
   * the format and encodings the server uses): a hub translates a viewer's own.
   */
  write(clientMessage: Buffer): void {
    if (clientMessage.length === 0) return;
    if (OWN_MESSAGES.has(clientMessage[0]!)) throw new GatewayError('INTERNAL', `RfbClient.write: message type ${clientMessage[0]} is the client core's own`);
    this.send(clientMessage);
  }

  /**
   * The whole screen, fresh: asks a non-incremental update of all of it and resolves with a copy
   * of the framebuffer once every pixel has arrived since the request (across as many updates
   * as the server takes, asking incremental updates after each; a resize asks again for the
   * whole new size).
   */
  frame(timeoutMs: number): Promise<Framebuffer> {
    if (this.done) return Promise.reject(closed(`backend ${this.opts.address}: the RFB connection has ended`));
    return new Promise((resolve, reject) => {
      const w: FrameWaiter = {
        coverage: new Coverage(this.decoder.framebuffer.width, this.decoder.framebuffer.height),
        resolve, reject,
        timer: setTimeout(() => {
          this.frameWaiters.delete(w);
          reject(new GatewayError('BACKEND_TIMEOUT', `backend ${this.opts.address}: no whole frame within ${timeoutMs} ms`, { status: 504, closeCode: 1011, clientMessage: 'The console did not send its screen in time' }));
        }, timeoutMs),
      };
      this.frameWaiters.add(w);
      this.requestUpdate(false);
    });
  }

  /** Ends the connection (`'end'` with null). */
  close(): void {
    this.finish(null);
  }

  /** @internal */
  receive(chunk: Buffer): void {
    if (this.done) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      const e = isGatewayError(err) ? err : new GatewayError('INTERNAL', `RFB client: ${(err as Error)?.message ?? err}`, { cause: err });
      this.finish(new GatewayError(e.code, `backend ${this.opts.address}: ${e.message}`, { status: e.status, closeCode: e.closeCode, clientMessage: e.clientMessage, cause: e }));
    }
  }

  private send(m: Buffer): void {
    if (this.done) return;
    this.socket.write(m);
  }

  private hookEvents(own: DecoderEvents): void {
    const user = this.opts.events ?? {};
    Object.assign(own, {
      update: (damage: readonly Rect[]) => {
        user.update?.(damage);
        for (const w of [...this.frameWaiters]) {
          if (!w.coverage.complete) continue;
          this.frameWaiters.delete(w);
          clearTimeout(w.timer);
          w.resolve(copyOf(this.decoder.framebuffer));
        }
        // a server may answer with part of the screen, or with only an ExtendedDesktopSize
        // (TigerVNC does, first): the rest of what was asked comes on the next request
        if (this.frameWaiters.size > 0) this.requestUpdate(true);
      },
      rect: (rect: Rect, encoding: number) => {
        for (const w of this.frameWaiters) w.coverage.add(rect);
        user.rect?.(rect, encoding);
      },
      resize: (width: number, height: number) => {
        for (const w of this.frameWaiters) w.coverage = new Coverage(width, height);
        user.resize?.(width, height);
        if (this.frameWaiters.size > 0) this.requestUpdate(false, { x: 0, y: 0, width, height });
      },
      cursor: (shape: CursorShape) => user.cursor?.(shape),
      bell: () => user.bell?.(),
      cutText: (text: Buffer) => user.cutText?.(text),
      name: (name: string) => user.name?.(name),
    } satisfies DecoderEvents);
  }

  private finish(err: GatewayError | null): void {
    if (this.done) return;
    this.done = true;
    this.socket.destroy();
    this.tcp.destroy();
    const why = err ?? closed(`backend ${this.opts.address}: the RFB connection has ended`);
    for (const w of this.frameWaiters) {
      clearTimeout(w.timer);
      w.reject(why);
    }
    this.frameWaiters.clear();
    this.settle(err);
    this.emit('end', err);
  }
}

/** The backend is gone; the client is told only that (the address and errno are the log's). */
function closed(logMessage: string, cause?: unknown): GatewayError {
  return new GatewayError('BACKEND_CLOSED', logMessage, { status: 502, closeCode: 1011, clientMessage: BACKEND_GONE_REASON, cause });
}

function socketOnData(client: RfbClient, chunk: Buffer): void {
  client.receive(chunk);
}

interface FrameWaiter {
  coverage: Coverage;
  readonly timer: NodeJS.Timeout;
  resolve(f: Framebuffer): void;
  reject(e: GatewayError): void;
}

/** Which pixels of the screen have arrived since a whole-screen request: one byte each. */
class Coverage {
  private readonly seen: Uint8Array;
  private missing: number;

  constructor(private readonly width: number, private readonly height: number) {
    this.seen = new Uint8Array(width * height);
    this.missing = width * height;
  }

  get complete(): boolean {
    return this.missing === 0;
  }

  add(r: Rect): void {
    if (this.missing === 0) return;
    const x1 = Math.min(r.x + r.width, this.width);
    const y1 = Math.min(r.y + r.height, this.height);
    for (let y = r.y; y < y1; y++) {
      const row = y * this.width;
      for (let i = row + r.x; i < row + x1; i++) {
        if (this.seen[i] === 0) {
          this.seen[i] = 1;
          this.missing--;
        }
      }
    }
  }
}

function copyOf(f: Framebuffer): Framebuffer {
  return { width: f.width, height: f.height, pixels: f.pixels.slice(), name: f.name };
}
