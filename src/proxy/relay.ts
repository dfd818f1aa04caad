/**
 * @module proxy/relay
 * The byte path of a console session: WebSocket messages to the backend socket and backend
 * chunks to WebSocket binary frames, byte for byte, with backpressure both ways (a slow browser
 * pauses the backend socket, a slow backend pauses the WebSocket reader). One `ConsoleSession`
 * per open console; it ends once, with the reason and the byte counts.
 * A session may have a deadline (`closeAt`): its token's expiry (`[consoleauth]
 * enforce_session_timeout`) or `[porthole] max_console_duration`, the earlier winning with its own
 * reason; one timer per session, armed at relay start and cleared by `end()`, which every way of
 * ending passes through; nothing is checked per chunk on the byte path for it. With `[porthole]
 * console_idle_timeout` (`watchIdle`) the browser's messages go through a handler that counts
 * those that are input (`idle.ts` decides which), read by a coarse timer; without it the
 * handler is the plain one. With `filters` (the clipboard policy's RFB framers,
 * `src/rfb/clipboard-policy.ts`) a direction's bytes go through its filter, which may leave some
 * out; a stream the filter cannot frame closes the session with the filter's words. Without them
 * the byte path is the plain one, unchanged (handlers chosen once, at the start). A `tap` (a
 * recording, `recorder.ts`) sees each way's bytes as relayed, chosen at the start the same way.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { asGatewayError } from '../errors.ts';
import type { LiveSession, LiveSessionInfo } from '../sessions/types.ts';
import { releaseBackendBuffer, setBackendSink } from './backend.ts';

/** The registry's facts of a session (`LiveSessionInfo`) and how the proxy authenticated to the backend. */
export interface SessionInfo extends LiveSessionInfo {
  /** How the proxy authenticated to the backend (`VeNCrypt X509None`), when the RFB security proxy ran. */
  readonly backendAuth?: string | null;
}

/**
 * How a session is closed when its token expires (`[consoleauth] enforce_session_timeout`). Nova
 * 2024.1 shuts the backend socket at `expires`, which websockify reports as 1000 "Target closed",
 * the same as a VM that went away; Porthole says why, with the policy code its revocations use,
 * and the console page turns this reason into words (`src/web/static/console.js`).
 */
export const CLOSE_EXPIRED = { code: 1008, reason: 'console session expired' } as const;

/** `[porthole] max_console_duration` reached; the console page turns this reason into words. */
export const CLOSE_MAX_DURATION = { code: 1008, reason: 'console session reached its maximum duration' } as const;

/** `[porthole] console_idle_timeout`: no input from the browser for that long; the page says it in words. */
export const CLOSE_IDLE = { code: 1008, reason: 'console idle timeout' } as const;

/** How a deadline closes a session: a policy close code and the reason the page recognises. */
export interface CloseHow {
  readonly code: number;
  readonly reason: string;
}

/** What of one direction's bytes goes on; throws a `GatewayError` on a stream it cannot frame. */
export interface StreamFilter {
  filter(chunk: Buffer): Buffer;
}

/** The filters of a session's directions, each optional. */
export interface RelayFilters {
  readonly toBackend?: StreamFilter;
  readonly fromBackend?: StreamFilter;
  /** Sees what is relayed each way without changing it (a recording, `recorder.ts`). */
  readonly tap?: RelayTap;
}

/**
 * What watches a session's bytes as they pass, after the filters; `end` once when the session
 * ends. `fromBackend` with `keep`: the tap may hold `chunk` as it is (no copy) and calls `keep`
 * once when it no longer needs it (at once if it did not hold it); without: the relay may reuse
 * the chunk once the call returns, so what is kept is copied. `toBackend`'s data is copied.
 */
export interface RelayTap {
  fromBackend(chunk: Buffer, keep?: () => void): void;
  toBackend(data: Buffer): void;
  end(): void;
}

/** Whether a message from the browser is input (keys, pointer, clipboard), for the idle timeout. */
export type InputTest = (data: Buffer) => boolean;

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SessionEnd {
  readonly reason: string;
  readonly bytesFromClient: number;
  readonly bytesFromBackend: number;
  readonly durationMs: number;
}

export class ConsoleSession implements LiveSession {
  bytesFromClient = 0;
  bytesFromBackend = 0;
  readonly startedAt = Date.now();
  private ended = false;
  private expiry: NodeJS.Timeout | undefined;
  /** The deadline `expiry` is armed for (epoch ms), and how it closes. */
  private deadline: { atMs: number; how: CloseHow } | undefined;
  private idle: NodeJS.Timeout | undefined;
  /** Input messages seen since the relay started, when the idle timeout is on. */
  private inputs = 0;
  /** What relays one message from the browser: the plain handler, or through its filter. */
  private readonly onMessage: (data: Buffer) => void;
  private readonly tap: RelayTap | undefined;

  constructor(
    readonly info: SessionInfo,
    private readonly ws: WebSocket,
    private readonly clientSocket: Duplex,
    /** The backend socket, or a viewer's stream on a kept serial console (`serial-viewer.ts`). */
    private readonly backend: Duplex,
    private readonly onEnd: (session: ConsoleSession, end: SessionEnd) => void,
    filters?: RelayFilters,
  ) {
    const toBackend = filters?.toBackend;
    const fromBackend = filters?.fromBackend;
    const tap = filters?.tap;
    this.tap = tap;
    // a tap is chosen here once, like the filters: a session without one runs the plain handlers
    const toBackendSink = tap ? (data: Buffer) => (tap.toBackend(data), wsOnMessage(this, data)) : (data: Buffer) => wsOnMessage(this, data);
    this.onMessage = toBackend ? (data: Buffer) => wsOnFilteredMessage(this, toBackend, data, toBackendSink) : toBackendSink;
    ws.on('message', this.onMessage);
    ws.on('close', (code: number) => this.end(`client closed (${code})`));
    ws.on('error', (err: Error) => this.end(`client error: ${err.message}`));
    if (fromBackend) {
      // a filter may hand on parts of a chunk after the read returned: chunks of their own, not the shared buffer
      const toClient = clientSink(this, tap);
      backend.on('data', (chunk: Buffer) => backendOnFilteredData(this, fromBackend, chunk, toClient));
    } else if (setBackendSink(backend, tap ? (buffer, n, owned) => backendOnTappedRead(this, tap, buffer, n, owned) : ws.extensions === '' ? (buffer, n, owned) => backendOnRead(this, buffer, n, owned) : (buffer, n, owned) => backendOnReadViaWs(this, buffer, n, owned))) {
      // bytes that came with the end of a handshake wait in the stream: they go first
      const toClient = clientSink(this, tap);
      for (let chunk: Buffer | null; (chunk = backend.read() as Buffer | null) !== null; ) toClient(chunk);
    } else {
      backend.on('data', clientSink(this, tap));
    }
    // one listener for both: a closure less per live console
    const backendClosed = () => this.end('backend closed');
    backend.on('end', backendClosed);
    backend.on('close', backendClosed);
    backend.on('error', (err: NodeJS.ErrnoException) => this.end(`backend error: ${err.code ?? err.message}`));
    backend.resume();
  }

  /** @internal used by the handlers below */
  get _ws(): WebSocket { return this.ws; }
  /** @internal */
  get _clientSocket(): Duplex { return this.clientSocket; }
  /** @internal */
  get _backend(): Duplex { return this.backend; }

  /**
   * Closes the session with `how` (`CLOSE_EXPIRED` by default: its token's expiry) at `atMs`
   * (epoch milliseconds), at once if that is past. Of several deadlines the earliest wins, with
   * its own reason. The timer does not keep the process alive.
   */
  closeAt(atMs: number, how: CloseHow = CLOSE_EXPIRED): void {
    if (this.ended) return;
    if (this.deadline !== undefined && this.deadline.atMs <= atMs && this.deadline.how !== how) return;
    this.deadline = { atMs, how };
    clearTimeout(this.expiry);
    const ms = atMs - Date.now();
    if (ms <= 0) {
      this.close(how.code, how.reason);
      return;
    }
    // a deadline further away than a timer can wait is looked at again when the timer fires
    this.expiry = setTimeout(() => {
      this.deadline = undefined;
      this.closeAt(atMs, how);
    }, Math.min(ms, MAX_TIMER_MS));
    this.expiry.unref();
  }

  /**
   * Closes the session with `CLOSE_IDLE` once no message that `isInput` calls input came from
   * the browser for `ms`. Each message costs one test and a counter; a timer reads the counter
   * every tenth of `ms` (100 ms to 10 s), so the close comes between `ms` and `ms` plus a tick
   * after the last input.
   */
  watchIdle(ms: number, isInput: InputTest): void {
    if (this.ended || this.idle !== undefined) return;
    const relay = this.onMessage;
    this.ws.off('message', relay);
    this.ws.on('message', (data: Buffer) => {
      if (isInput(data)) this.inputs++;
      relay(data);
    });
    const tick = Math.min(10_000, Math.max(100, Math.floor(ms / 10)));
    let seen = this.inputs;
    let quietSince = Date.now();
    this.idle = setInterval(() => {
      const now = Date.now();
      if (this.inputs !== seen) {
        seen = this.inputs;
        quietSince = now;
      } else if (now - quietSince >= ms) {
        this.close(CLOSE_IDLE.code, CLOSE_IDLE.reason);
      }
    }, tick);
    this.idle.unref();
  }

  /** Closes the session from the proxy's side (shutdown, revocation, kill). */
  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ws.close(code, reason);
    this.end(reason);
  }

  /** @internal a filter could not frame a stream: the browser gets its words, the log its detail. */
  _refuse(err: unknown): void {
    if (this.ended) return;
    const e = asGatewayError(err);
    // a close reason is at most 123 bytes (RFC 6455 5.5); the filters' words are well under it
    this.ws.close(e.closeCode, e.clientMessage.slice(0, 120));
    this.end(e.message);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.expiry);
    this.expiry = undefined;
    clearInterval(this.idle);
    this.backend.destroy();
    try {
      this.tap?.end();
    } catch {
      // a tap's trouble is its own (a recorder logs it); the session's end goes on
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000, 'console closed');
    // a client that never answers the close frame must not hold the socket
    setTimeout(() => this.clientSocket.destroy(), 2000).unref();
    this.onEnd(this, {
      reason,
      bytesFromClient: this.bytesFromClient,
      bytesFromBackend: this.bytesFromBackend,
      durationMs: Date.now() - this.startedAt,
    });
  }
}

/**
 * What relays a chunk of a 'data' event or of a filter to the browser (the session's own chunk:
 * a tap may hold it). Made where a path needs it, not in the constructor's scope, whose context
 * every listener keeps: a session on the plain path (reads into the sink) holds no such closure.
 */
function clientSink(s: ConsoleSession, tap: RelayTap | undefined): (chunk: Buffer) => void {
  return tap ? (chunk: Buffer) => (tap.fromBackend(chunk, noop), backendOnData(s, chunk)) : (chunk: Buffer) => backendOnData(s, chunk);
}

function wsOnMessage(s: ConsoleSession, data: Buffer): void {
  s.bytesFromClient += data.length;
  const backend = s._backend;
  if (!backend.write(data) && !s._ws.isPaused) {
    s._ws.pause();
    backend.once('drain', () => s._ws.resume());
  }
}

/** A message through the filter: only what it hands on goes to the backend (the counter counts what came). */
function wsOnFilteredMessage(s: ConsoleSession, f: StreamFilter, data: Buffer, relay: (data: Buffer) => void): void {
  let out: Buffer;
  try {
    out = f.filter(data);
  } catch (err) {
    s._refuse(err);
    return;
  }
  s.bytesFromClient += data.length - out.length;
  if (out.length > 0) relay(out);
}

function backendOnFilteredData(s: ConsoleSession, f: StreamFilter, chunk: Buffer, relay: (chunk: Buffer) => void): void {
  let out: Buffer;
  try {
    out = f.filter(chunk);
  } catch (err) {
    s._refuse(err);
    return;
  }
  s.bytesFromBackend += chunk.length - out.length;
  if (out.length > 0) relay(out);
}

/** `sent`: called once the browser's socket has taken the frame (or the session is gone). */
function backendOnData(s: ConsoleSession, chunk: Buffer, sent?: () => void): void {
  s.bytesFromBackend += chunk.length;
  s._ws.send(chunk, BINARY, sent);
  pauseBackendWhileClientFull(s);
}

/** A slow browser pauses the backend until its socket has taken what is queued (`CLIENT_HIGH_WATER`). */
function pauseBackendWhileClientFull(s: ConsoleSession): void {
  const client = s._clientSocket;
  if (client.writableLength > CLIENT_HIGH_WATER && !s._backend.isPaused()) {
    s._backend.pause();
    client.once('drain', () => s._backend.resume());
  }
}

/**
 * A read with `onread` (`src/proxy/backend.ts`) on a WebSocket without extensions: a read into
 * the shared buffer is copied once, into a whole binary frame (RFC 6455 5.2: FIN and opcode 2,
 * the length, no mask from a server) written to the browser's socket as one buffer; a buffer the
 * socket owns is sent as it is, behind ws's header, and given back once written. Framing here
 * rather than in ws's `send` takes, for a keystroke's echo, one allocation and one `write` where
 * ws's sender made the header, its options and a two-buffer `writev`: a third less garbage per
 * echo (1-byte echoes on a serial console with a 1 MiB semi-space: 45-46 scavenges per 18 600
 * echoes against 65), so a third fewer collection pauses on a typing session; its CPU per echo
 * was within the noise of a loaded 2-CPU machine. Without extensions ws's sender writes every frame
 * of its own (close, pong) to the socket at once, in call order, so the frames stay in order; a
 * WebSocket that is closing takes no data frame, as ws's `send` drops them then.
 */
function backendOnRead(s: ConsoleSession, buffer: Buffer, n: number, owned: boolean): boolean {
  if (owned) {
    backendOnData(s, buffer.subarray(0, n), () => releaseBackendBuffer(buffer));
    return true;
  }
  s.bytesFromBackend += n;
  const ws = s._ws;
  if (ws.readyState !== ws.OPEN) return true;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x82;
  if (n < 126) {
    frame[1] = n;
  } else if (n < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(n, 6);
  }
  buffer.copy(frame, head, 0, n);
  s._clientSocket.write(frame);
  pauseBackendWhileClientFull(s);
  return true;
}

/** `backendOnRead` through ws's `send`, for a WebSocket with an extension, whose frames ws must make. */
function backendOnReadViaWs(s: ConsoleSession, buffer: Buffer, n: number, owned: boolean): boolean {
  if (owned) {
    backendOnData(s, buffer.subarray(0, n), () => releaseBackendBuffer(buffer));
  } else {
    const chunk = Buffer.allocUnsafe(n);
    buffer.copy(chunk, 0, 0, n);
    backendOnData(s, chunk);
  }
  return true;
}

/**
 * `backendOnRead` with a tap that may hold the chunk instead of copying it (a recording): a
 * buffer of the socket's own goes back once both the browser's socket and the tap are done with
 * it; a read into the shared buffer is copied once, as without a tap, and that copy is the tap's
 * to hold. Measured: copying each chunk for the tap cost a recorded download about as much CPU as
 * the relay itself.
 */
function backendOnTappedRead(s: ConsoleSession, tap: RelayTap, buffer: Buffer, n: number, owned: boolean): boolean {
  if (owned) {
    let holders = 2;
    const done = () => --holders === 0 && releaseBackendBuffer(buffer);
    const chunk = buffer.subarray(0, n);
    tap.fromBackend(chunk, done);
    backendOnData(s, chunk, done);
  } else {
    const chunk = Buffer.allocUnsafe(n);
    buffer.copy(chunk, 0, 0, n);
    tap.fromBackend(chunk, noop);
    backendOnData(s, chunk);
  }
  return true;
}

function noop(): void {}

const BINARY = { binary: true } as const;

/**
 * Bytes queued towards the browser before the backend is paused. The socket's own mark (16 KiB)
 * is below one backend read, so `writableNeedDrain` paused the backend after every chunk
 * (4097 pauses in a 256 MiB download of 64 KiB reads). Reads are now up to 1 MiB
 * (`BACKEND_READ_SIZE`): at 256 KiB the part of a read the kernel had not yet taken paused the
 * backend once every 2.7 MiB (each pause and resume two epoll_ctl calls, a 'drain' listener
 * and a tick); one read of headroom halves the pauses (171 a GiB against 373-409; 2 MiB: 135-243)
 * while a slow browser still makes the proxy hold at most this plus one read.
 */
const CLIENT_HIGH_WATER = 1024 * 1024;
